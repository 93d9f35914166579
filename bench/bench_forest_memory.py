"""Memory of the family forest per model, as `load_forest` builds it at start: N models as
ClickHouse returns them (every row its own datetime and string objects), two in three lone
(no base, no derivative), half with a size. Prints the traced bytes held per model and the
figure at the Hub's 2.2 M models.

    .venv/bin/python bench/bench_forest_memory.py [N]      # default 200,000
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from processors.families import FamilyForest

HUB_MODELS = 2_200_000
_START = datetime(2024, 1, 1, tzinfo=UTC)


def rows(n: int) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        # Distinct objects per row, as a driver hands them over.
        created = _START + timedelta(seconds=i)
        as_of = _START + timedelta(seconds=i, milliseconds=1)
        parent = f"org{i % 5000}/base-{i % 5000}" if i % 3 == 0 else ""
        sized = i % 2 == 1
        yield (
            f"org{i % 50000}/model-{i}",
            parent,
            "finetune" if parent else "",
            created,
            False,
            as_of,
            7_000_000_000 + i if sized else None,
            14_000_000_000 + i if sized else None,
            "".join(["Llama", "ForCausalLM"]) if sized else "",  # a fresh str per row
        )


def main(n: int) -> None:
    gc.collect()
    tracemalloc.start()
    started = time.perf_counter()
    forest = FamilyForest()
    forest.load(rows(n))
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    per_model = held / len(forest)
    print(
        f"{len(forest):,} models ({n:,} rows): {held / 2**20:.0f} MiB held, "
        f"{per_model:.0f} B/model; at {HUB_MODELS:,} models ~"
        f"{per_model * HUB_MODELS / 2**30:.2f} GiB ({time.perf_counter() - started:.0f} s traced)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
