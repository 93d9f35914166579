"""Canned queries that answer the seed study's questions; ``hubwatch query NAME``.

Each ``NAME.sql`` starts with ``--`` comment lines that say what it answers and which
``{param:Type}`` parameters it takes (ClickHouse binds them server-side).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

__all__ = ["CannedQuery", "canned_queries", "load"]

_PARAM = re.compile(r"\{(\w+):(\w+)\}")


@dataclass(frozen=True, slots=True)
class CannedQuery:
    name: str
    sql: str

    @property
    def description(self) -> str:
        lines = [line[2:].strip() for line in self.sql.splitlines() if line.startswith("--")]
        return " ".join(lines)

    @property
    def params(self) -> dict[str, str]:
        return dict(_PARAM.findall(self.sql))


def canned_queries() -> dict[str, CannedQuery]:
    return {
        entry.name.removesuffix(".sql"): CannedQuery(
            entry.name.removesuffix(".sql"), entry.read_text()
        )
        for entry in sorted(resources.files("hubwatch.queries").iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".sql")
    }


def load(name: str) -> CannedQuery:
    queries = canned_queries()
    if name not in queries:
        raise KeyError(f"no canned query {name!r}; there are: {', '.join(queries)}")
    return queries[name]
