"""Canonical identity: the other names of model repos (the old name of a renamed or
transferred repo, another casing of its id), learned from ``model.alias`` events.

The mapping is applied to an event's rows before lineage's consumers (the family trees, the
tables) see them, so an edge that names an old id is kept at the id the Hub lists now. Edges
written before an alias was learned keep the name they had; the family trees move them when
the alias arrives (:meth:`processors.families.FamilyForest.rename`), and so do their
``lineage_edges`` and ``lineage_disputes`` rows (:func:`moved_lineage_plans`: written again
at the canonical id, the old-name rows retracted); the canned queries also map every id
through ``model_aliases``. Chains (a name renamed twice) are kept one hop deep:
each alias row names the current canonical id, so one lookup maps any name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from hubwatch.events import ModelAlias
from processors.lineage import LineageDispute, LineageEdge
from processors.plans import InsertPlan

__all__ = ["AliasRow", "Aliases", "alias_row", "moved_lineage_plans"]

# The rows of a lineage table that name an alias (as derivative or base), read on the server
# (the processor keeps no copy of them): {ends} rewrites both ends to canonical ids.
_NAMING = """
SELECT {columns}
FROM {{database}}.{table} FINAL
WHERE is_deleted = 0
    AND (has({{aliases:Array(String)}}, derivative_id)
         OR has({{aliases:Array(String)}}, base_model_id))
"""
_MAP = "transform({c}, {{aliases:Array(String)}}, {{canonical:Array(String)}}, {c})"
_LINEAGE_COLUMNS = {
    "lineage_edges": ("relation", "source", "inferred", "observed_at", "event_id"),
    "lineage_disputes": (
        "claimed_by",
        "claimed_relation",
        "resolved_relation",
        "observed_at",
        "event_id",
    ),
}


@dataclass(frozen=True, slots=True)
class AliasRow:
    """A row of ``model_aliases`` (see hubwatch/migrations/0033_model_aliases.sql)."""

    alias_id: str
    canonical_id: str
    resolved_by: str
    resolved_at: datetime
    event_id: str


def alias_row(event: ModelAlias) -> AliasRow:
    return AliasRow(
        alias_id=event.alias_id,
        canonical_id=event.canonical_id,
        resolved_by=event.resolved_by,
        resolved_at=event.resolved_at,
        event_id=event.event_id,
    )


class Aliases:
    """alias id -> canonical id, as ``model_aliases`` holds it."""

    def __init__(self) -> None:
        self._canonical: dict[str, str] = {}
        self._named: dict[str, set[str]] = {}
        "canonical id -> its aliases (to re-point them when it is renamed in turn)."

    def __len__(self) -> int:
        return len(self._canonical)

    def canonical(self, repo_id: str) -> str:
        return self._canonical.get(repo_id, repo_id)

    def load(self, rows: Iterable[tuple[str, str]]) -> None:
        """(alias, canonical) pairs, as ``model_aliases`` has them."""
        for alias, canonical in rows:
            self._set(alias, canonical)

    def learn(self, row: AliasRow) -> list[AliasRow]:
        """Take ``row`` (already mapped by :meth:`canonical_rows`); returns the rows of older
        aliases that named its alias id and now name its canonical id."""
        if row.canonical_id == row.alias_id:
            return []
        self._set(row.alias_id, row.canonical_id)
        moved = sorted(self._named.pop(row.alias_id, set()))
        for alias in moved:
            self._set(alias, row.canonical_id)
        return [replace(row, alias_id=alias) for alias in moved]

    def _set(self, alias: str, canonical: str) -> None:
        previous = self._canonical.get(alias)
        if previous is not None:
            self._named.get(previous, set()).discard(alias)
        self._canonical[alias] = canonical
        self._named.setdefault(canonical, set()).add(alias)

    def canonical_rows(self, rows: list[Any]) -> list[Any]:
        """``rows`` with every base id (and an alias row's canonical id) canonical; an edge
        that now names its own derivative, or repeats another, is dropped."""
        if not self._canonical:
            return rows
        out: list[Any] = []
        seen: set[tuple[str, ...]] = set()
        for row in rows:
            if isinstance(row, LineageEdge | LineageDispute):
                base = self.canonical(row.base_model_id)
                key = (type(row).__name__, row.derivative_id, base)
                if base == row.derivative_id or key in seen:
                    continue
                seen.add(key)
                if base != row.base_model_id:
                    row = replace(row, base_model_id=base)
            elif isinstance(row, AliasRow):
                canonical = self.canonical(row.canonical_id)
                if canonical == row.alias_id:
                    continue  # would make a name an alias of itself
                if canonical != row.canonical_id:
                    row = replace(row, canonical_id=canonical)
            out.append(row)
        return out


def _final(renamed: Mapping[str, str], alias: str) -> str:
    """Where ``alias`` ends when a batch renamed it and then its new name in turn."""
    seen = {alias}
    name = renamed[alias]
    while name in renamed and name not in seen:
        seen.add(name)
        name = renamed[name]
    return name


def moved_lineage_plans(renamed: Mapping[str, str]) -> list[InsertPlan]:
    """Plans that move what ``lineage_edges`` and ``lineage_disputes`` hold under old names
    (``renamed``: alias -> canonical id) to the canonical ids: each row naming an alias is
    written again with both ends canonical at its own version (an edge the derivative's
    newer metadata gave since still wins), then retracted under the old name one ns above
    its version (so it cannot tie with the row it deletes). Run in this order, after the
    batch's own rows: a crash between them redoes both, and both are idempotent."""
    if not renamed:
        return []
    aliases = sorted(renamed)
    parameters = {"aliases": aliases, "canonical": [_final(renamed, a) for a in aliases]}
    plans = []
    for table, rest in _LINEAGE_COLUMNS.items():
        columns = ("derivative_id", "base_model_id", *rest, "version", "is_deleted")
        # Aliased d and b: an alias named like its column would shadow it in the WHERE.
        canonical = (
            f"{_MAP.format(c='derivative_id')} AS d, {_MAP.format(c='base_model_id')} AS b, "
            f"{', '.join(rest)}, version, 0"
        )
        moved = _NAMING.format(columns=canonical, table=table)
        retracted = _NAMING.format(
            columns=f"derivative_id, base_model_id, {', '.join(rest)}, version + 1, 1",
            table=table,
        )
        plans += [
            InsertPlan(
                table,
                columns,
                [],
                select=f"SELECT * FROM ({moved}) WHERE d != b",
                parameters=parameters,
            ),
            InsertPlan(table, columns, [], select=retracted, parameters=parameters),
        ]
    return plans
