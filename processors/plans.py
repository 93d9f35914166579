"""Insert plans: the rows a batch becomes, table by table, before anything is written.

Apart from :mod:`processors.sinks` (which writes them) so that the processors that make plans
of their own (aliases, leaderboard imports, partitions) need not import the writer, which
imports their row types.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hubwatch.events import DeadLetter, Event

__all__ = ["InsertPlan", "Origin", "plan_dead_letters", "plan_rows"]


@dataclass(frozen=True, slots=True)
class Origin:
    """The input a row came from, so that a row the server refuses is dead-lettered as the
    record that made it."""

    source: str
    "The topic it was read from, or the event kind in process."
    key: str | None
    payload: bytes | Event
    "The record's value as read, or the event itself (encoded only if it is refused)."


@dataclass(frozen=True, slots=True)
class InsertPlan:
    table: str
    columns: tuple[str, ...]
    rows: list[list[Any]]
    origins: Sequence[Origin | None] = field(default=())
    "Per row, where it came from; empty when nobody asked (imports, family rows)."
    select: str = ""
    """Instead of ``rows``: the rows are this SELECT's, made on the server (``{database}``
    stands for the quoted database name; ``parameters`` bind its ``{name:Type}``s)."""
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def part(self, start: int, stop: int) -> InsertPlan:
        origins = self.origins[start:stop] if self.origins else ()
        return InsertPlan(self.table, self.columns, self.rows[start:stop], origins)


def plan_rows(table: str, rows: Sequence[Any], origins: Sequence[Origin | None] = ()) -> InsertPlan:
    columns = tuple(f.name for f in dataclasses.fields(rows[0])) if rows else ()
    return InsertPlan(table, columns, [[getattr(r, c) for c in columns] for r in rows], origins)


_DEAD_LETTER_COLUMNS = (
    "at",
    "stage",
    "reason",
    "detail",
    "source",
    "key",
    "payload",
    "payload_bytes",
    "truncated",
)


def plan_dead_letters(letters: Sequence[DeadLetter]) -> InsertPlan:
    return InsertPlan(
        "dead_letters",
        _DEAD_LETTER_COLUMNS,
        [[getattr(d, c) for c in _DEAD_LETTER_COLUMNS] for d in letters],
    )
