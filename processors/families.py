"""Family trees, maintained incrementally as models arrive in any order.

Each model in a family hangs under one *primary* base model: the first base its metadata
names (the Hub's resolved ``baseModels`` first, then the relation tags, then the card), so
a family is a tree with one root, and a merge sits in the tree of its first base
(``lineage_edges`` keeps every base). Per model the forest knows its root, its depth and
how many descendants it has by relation; ``model_families`` in ClickHouse holds it all,
one row per (root, model), so "the tree of X" reads one key range.

Arrival order does not matter: a child seen before its parent starts as the root of its own
family and moves, with its whole subtree, when the parent's own base arrives; a base seen
before its derivatives (the live order: the poller publishes oldest first) keeps its own
facts (created_at, architecture, size) for when they come. So every model seen is a member:
one with no base and no derivative is the root of a family of one (``descendants = 0``,
which ``family_growth`` leaves out), and its row is what a restart reloads its facts from. A
base that would close a cycle (bad metadata) is refused and the model flagged. An event
older than the metadata the model is already placed by is ignored, so a late
``model.created`` cannot undo a newer ``model.updated``.

The forest also keeps which bases (and which disputed card claims) each model's newest
metadata names, so that :meth:`FamilyForest.observe` can say which earlier ones it no
longer names: the pipeline retracts those from ``lineage_edges`` and ``lineage_disputes``.
Only models whose bases are not just their primary base cost memory for it (merges, cycles).

Rows are versioned by the data, not the wall clock: each drain's version is the newest
``observed_at`` the forest has seen (in ns), and at least one more than the previous drain's,
so one forest's rows always replace its older ones and a restarted forest (which resumes
from the highest stored version) replaces what it reloaded. The forest lives in the
processor's memory and is reloaded from ``model_families`` at start, so it needs all lineage
in one place: one processor worker (see the README). A backfill is the other writer: it
records an epoch when it is done, and a running processor reloads before its next batch
(:class:`processors.restore.ForestKeeper`).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from hubwatch import metrics
from hubwatch.clickhouse import as_utc
from hubwatch.events import ModelCreated, ModelUpdated
from processors.lineage import RELATIONS, LineageEdge, ModelRow, nanoseconds

__all__ = ["FamilyForest", "FamilyRow", "Observed", "Size"]

_NO_PARENT = -1
_CODE = {relation: code for code, relation in enumerate(RELATIONS)}


class Size(NamedTuple):
    """What a model weighs, as ``models`` has it: kept per member so each row can carry its
    own size and its base's (size change per edge without a join)."""

    parameters: int | None
    size_bytes: int | None
    architecture: str


_NO_SIZE = Size(None, None, "")
_NO_TIME = -(2**63)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _ns(at: datetime | None) -> int:
    """:func:`nanoseconds` for the bulk of a load: the float timestamp is exact to the
    microsecond until the year 2255, and twice as fast as timedelta arithmetic."""
    if at is None:
        return _NO_TIME
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return round(at.timestamp() * 1_000_000) * 1000


def _time(ns: int) -> datetime | None:
    return None if ns == _NO_TIME else _EPOCH + timedelta(microseconds=ns // 1000)


class Observed(NamedTuple):
    """What one event changed beyond the tree: the bases and disputed card claims that
    earlier metadata named and this model's newest metadata does not, to retract at
    ``version`` (the newest metadata's time in ns)."""

    retracted: tuple[str, ...]
    undisputed: tuple[str, ...]
    version: int


_NOTHING = Observed((), (), 0)


@dataclass(frozen=True, slots=True)
class FamilyRow:
    """A row of ``model_families`` (see hubwatch/migrations/0009_model_families.sql)."""

    root_id: str
    model_id: str
    parent_id: str
    relation: str
    depth: int
    created_at: datetime | None
    descendants: int
    finetunes: int
    quantized: int
    adapters: int
    merges: int
    children: int
    cycle: bool
    architecture: str
    parameters: int | None
    size_bytes: int | None
    base_parameters: int | None
    base_size_bytes: int | None
    as_of: datetime | None
    version: int
    "The forest's data time when written (see the module's docstring)."
    is_deleted: int


class FamilyForest:
    """Every model seen or named as a base, with its primary base; descendant counts by
    relation are kept up to date along the path to the root on every change."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._names: list[str] = []
        # One slot per model in flat arrays (4 + 1 + 8 + 8 bytes), not a Python object per
        # fact: at 2.2 M models most are lone, and a datetime costs 48 bytes.
        self._parent = array("i")
        self._relation = array("b")
        self._created = array("q")
        "createdAt in ns (:func:`nanoseconds`), _NO_TIME when unknown."
        self._size: list[Size | None] = []
        self._as_of = array("q")
        "The time of the metadata the model is placed by, in ns; _NO_TIME when unknown."
        self._children: dict[int, set[int]] = {}
        self._counts: dict[int, list[int]] = {}
        "Descendants by relation code, only for models that have any."
        self._cycle: set[int] = set()
        self._bases: dict[int, tuple[str, ...]] = {}
        "Every base the newest metadata names, only where that is not just the parent."
        self._disputed: dict[int, tuple[str, ...]] = {}
        "Bases the card claims and the Hub does not share (lineage_disputes), where any."
        self._dirty: dict[int, int] = {}
        "Models changed since the last drain, with the root each had before (-1: new)."
        self._clock = 0
        "The newest observed_at seen, in ns: what the next drain's rows are as of."
        self.version = 0
        "The version of the last rows drained (or the highest loaded)."
        self._retired: set[int] = set()
        "Nodes of names that turned out to be aliases (:meth:`rename`): rows to delete."
        self._stale_roots: dict[int, set[str]] = {}
        "Roots a stored row files a model under that its tree does not (:meth:`reconcile`)."

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._index

    # -- reading --

    def place(self, model_id: str) -> tuple[str, int]:
        """(root, depth) of a model in the forest."""
        root, depth = self._place(self._index[model_id])
        return self._names[root], depth

    def descendants(self, model_id: str) -> dict[str, int]:
        counts = self._counts.get(self._index[model_id], [0] * len(RELATIONS))
        return dict(zip(RELATIONS, counts, strict=True))

    def parent(self, model_id: str) -> str | None:
        parent = self._parent[self._index[model_id]]
        return None if parent == _NO_PARENT else self._names[parent]

    def created_at(self, model_id: str) -> datetime | None:
        """The model's createdAt, None when no event has given it."""
        return _time(self._created[self._index[model_id]])

    def size(self, model_id: str) -> Size:
        """What the model weighs, as its last ``model.created`` said."""
        return self._size[self._index[model_id]] or _NO_SIZE

    def bases(self, model_id: str) -> tuple[str, ...]:
        """Every base the model's newest metadata names (its lineage edges)."""
        return self._base_set(self._index[model_id])

    # -- changing --

    def observe_event(
        self,
        event: ModelCreated | ModelUpdated,
        edges: list[LineageEdge],
        model: ModelRow | None = None,
        disputed: Sequence[str] = (),
    ) -> Observed:
        """Place a model by one event's metadata; ``edges`` are the event's lineage edges,
        primary base first, ``model`` its ``models`` row when the event has one,
        ``disputed`` the bases of its ``lineage_disputes`` rows."""
        created = event.created_at if isinstance(event, ModelCreated) else None
        as_of = event.last_modified or event.observed_at
        size = None
        if model is not None:
            architecture = model.architectures[0] if model.architectures else model.model_type
            size = Size(model.parameters, model.size_bytes, sys.intern(architecture or ""))
        bases = [(e.base_model_id, e.relation) for e in edges]
        return self.observe(
            event.repo_id,
            bases,
            created,
            as_of,
            size,
            observed_at=event.observed_at,
            disputed=disputed,
        )

    def observe(
        self,
        model_id: str,
        bases: list[tuple[str, str]],
        created_at: datetime | None = None,
        as_of: datetime | None = None,
        size: Size | None = None,
        *,
        observed_at: datetime | None = None,
        disputed: Sequence[str] = (),
    ) -> Observed:
        """The model's bases are now ``bases`` (primary first), as of ``as_of``; returns
        what earlier metadata named that this does not (or, for metadata older than what
        the model is placed by, what this names that the newer does not)."""
        # Times are compared with what was loaded: both sides aware UTC, whatever the caller.
        created_at, as_of = as_utc(created_at), as_utc(as_of)
        seen = observed_at or as_of
        if seen is not None:
            self._clock = max(self._clock, nanoseconds(seen))
        # Every model is kept with its facts, a base seen before its derivatives too.
        node = self._node(model_id)
        if created_at is not None and self._created[node] != nanoseconds(created_at):
            self._mark(node)
            self._created[node] = nanoseconds(created_at)
        if size is not None and self._size[node] != size:
            self._size[node] = size
            for child in (node, *self._children.get(node, ())):
                self._mark(child)  # their rows carry this size as their base's
        named = tuple(base for base, _ in bases)
        previous = self._as_of[node]
        if as_of is not None and previous != _NO_TIME and nanoseconds(as_of) < previous:
            # Older metadata than the placement we have: its edges are written (they are
            # this event's rows) but must not stand where the newer metadata differs.
            current, claims = set(self._base_set(node)), set(self._disputed.get(node, ()))
            return Observed(
                tuple(b for b in named if b not in current),
                tuple(b for b in disputed if b not in claims),
                previous,
            )
        observed = _NOTHING
        if as_of is not None:
            self._as_of[node] = nanoseconds(as_of)
            was, claimed = self._base_set(node), self._disputed.get(node, ())
            observed = Observed(
                tuple(b for b in was if b not in named),
                tuple(b for b in claimed if b not in disputed),
                nanoseconds(as_of),
            )
        if disputed:
            self._disputed[node] = tuple(disputed)
        else:
            self._disputed.pop(node, None)
        self._place_under(node, bases)
        parent = self._parent[node]
        if named == (() if parent == _NO_PARENT else (self._names[parent],)):
            self._bases.pop(node, None)
        else:
            self._bases[node] = named
        return observed

    def _place_under(self, node: int, bases: list[tuple[str, str]]) -> None:
        parent, code = _NO_PARENT, _NO_PARENT
        if bases:
            parent, code = self._node(bases[0][0]), _CODE[bases[0][1]]
        if parent == self._parent[node] and code == self._relation[node]:
            return
        if parent != _NO_PARENT and self._is_ancestor(node, parent):
            self._mark(node)
            self._cycle.add(node)
            metrics.LINEAGE_CYCLES.inc()
            return
        if node in self._cycle:
            self._mark(node)
            self._cycle.discard(node)
        self._move(node, parent, code)

    def load(
        self,
        rows: Iterable[tuple[Any, ...]],
        *,
        version: int = 0,
        bases: Iterable[tuple[str, Sequence[str]]] = (),
        disputed: Iterable[tuple[str, Sequence[str]]] = (),
    ) -> None:
        """Rebuild from ``model_families`` rows: (model, parent, relation, created_at, cycle,
        as_of, parameters, size_bytes, architecture); ``version`` is the highest stored,
        ``bases`` every base of the models whose bases are not just their parent, and
        ``disputed`` the disputed claims per model. Loading marks nothing as changed."""
        # One place per model: a model stored under two roots (another writer's stale row)
        # takes its last row's, so it is counted once (the caller orders rows by version).
        parents: dict[int, tuple[str, str]] = {}
        for model_id, parent_id, relation, created_at, cycle, as_of, *size in rows:
            node = self._index.get(model_id)
            if node is None:
                node = self._add(model_id)
            self._created[node], self._as_of[node] = _ns(created_at), _ns(as_of)
            if size[0] is not None or size[1] is not None or size[2]:
                self._size[node] = Size(size[0], size[1], sys.intern(size[2] or ""))
            if cycle:
                self._cycle.add(node)
            if parent_id:
                parents[node] = (parent_id, relation)
            else:
                parents.pop(node, None)
        for node, (parent_id, relation) in parents.items():
            parent = self._index.get(parent_id)
            if parent is None:
                parent = self._add(parent_id)
            self._parent[node], self._relation[node] = parent, _CODE[relation]
            self._children.setdefault(parent, set()).add(node)
        for node in parents:
            self._add_to_ancestors(self._parent[node], self._unit(self._relation[node]), [])
        for model_id, named in bases:
            node = self._index.get(model_id)
            if node is None:
                node = self._add(model_id)
            self._bases[node] = tuple(named)
        for model_id, claims in disputed:
            node = self._index.get(model_id)
            if node is None:
                node = self._add(model_id)
            self._disputed[node] = tuple(claims)
        self.version = max(self.version, version)
        self._dirty.clear()

    def drain(self, version: int | None = None) -> list[FamilyRow]:
        """Rows for every model changed since the last drain: its place now, and a deletion
        of its row under the root it had before when that root changed. Their version is
        the newest ``observed_at`` seen and above every earlier drain's (or ``version``)."""
        if not self._dirty:
            return []
        if version is None:
            version = max(self._clock, self.version + 1)
        self.version = max(self.version, version)
        rows: list[FamilyRow] = []
        for node, old_root in self._dirty.items():
            root, depth = self._place(node)
            for stale in sorted(self._stale_roots.pop(node, ())):
                if node in self._retired or stale != self._names[root]:
                    rows.append(self._deletion(stale, node, version))
            if node in self._retired:
                if old_root != _NO_PARENT:
                    rows.append(self._deletion(self._names[old_root], node, version))
                continue
            if old_root not in (_NO_PARENT, root):
                rows.append(self._deletion(self._names[old_root], node, version))
            rows.append(self._row(node, root, depth, version))
        self._dirty.clear()
        return rows

    def reconcile(self, stored: Iterable[tuple[str, str, str, int, int, int]]) -> int:
        """Compare ``model_families`` as stored, (model, parent, root, depth, descendants,
        children) for every live row, with the trees just loaded from it: a row another
        writer's stale forest wrote (under a root the tree does not give the model, or with
        other counts, e.g. a processor that wrote while a backfill rebuilt the families) is
        written again at the next drain, above every stored version, and a row under a
        wrong root is deleted. Returns how many models will be rewritten."""
        changed: set[int] = set()
        for model_id, parent_id, root_id, depth, descendants, children in stored:
            node = self._index.get(model_id)
            if node is None:
                continue
            root, at = self._place(node)
            if self._names[root] != root_id:
                self._stale_roots.setdefault(node, set()).add(root_id)
            elif (
                at == depth
                and (self.parent(model_id) or "") == parent_id
                and sum(self._counts.get(node, ())) == descendants
                and len(self._children.get(node, ())) == children
            ):
                continue
            self._mark(node)
            changed.add(node)
        return len(changed)

    def _base_set(self, node: int) -> tuple[str, ...]:
        named = self._bases.get(node)
        if named is not None:
            return named
        parent = self._parent[node]
        return () if parent == _NO_PARENT else (self._names[parent],)

    # -- other names of a model (processors/aliases.py) --

    def rename(self, alias_id: str, canonical_id: str) -> None:
        """``alias_id`` is another name of ``canonical_id``: what hangs under the alias moves
        under the canonical model, which takes the facts it lacks from the alias, and the
        alias leaves the forest (its row is deleted at the next drain)."""
        old = self._index.get(alias_id)
        if old is None or alias_id == canonical_id:
            return
        new = self._node(canonical_id)
        for child in sorted(self._children.get(old, ())):
            if child == new:  # it named itself by its old name: no base at all
                self._move(child, _NO_PARENT, _NO_PARENT)
            elif self._is_ancestor(child, new):  # the canonical model hangs under this child
                self._move(child, _NO_PARENT, _NO_PARENT)
                self._cycle.add(child)
                metrics.LINEAGE_CYCLES.inc()
            else:
                self._move(child, new, self._relation[child])
        if self._created[new] == _NO_TIME and self._created[old] != _NO_TIME:
            self._mark(new)
            self._created[new] = self._created[old]
        if self._size[new] is None and self._size[old] is not None:
            self._size[new] = self._size[old]
            for child in (new, *self._children.get(new, ())):
                self._mark(child)
        parent, code = self._parent[old], self._relation[old]
        if parent != _NO_PARENT:
            self._move(old, _NO_PARENT, _NO_PARENT)
            if self._parent[new] == _NO_PARENT and not self._is_ancestor(new, parent):
                self._move(new, parent, code)
        self._mark(old)
        self._retired.add(old)
        self._cycle.discard(old)
        del self._index[alias_id]

    # -- internals --

    def _add(self, model_id: str) -> int:
        node = len(self._names)
        self._index[model_id] = node
        self._names.append(model_id)
        self._parent.append(_NO_PARENT)
        self._relation.append(_NO_PARENT)
        self._created.append(_NO_TIME)
        self._size.append(None)
        self._as_of.append(_NO_TIME)
        return node

    def _node(self, model_id: str) -> int:
        node = self._index.get(model_id)
        if node is None:
            node = self._add(model_id)
            self._dirty[node] = _NO_PARENT
        return node

    def _mark(self, node: int) -> None:
        if node not in self._dirty:
            self._dirty[node] = self._place(node)[0]

    def _place(self, node: int) -> tuple[int, int]:
        depth = 0
        while (parent := self._parent[node]) != _NO_PARENT:
            node, depth = parent, depth + 1
        return node, depth

    def _ancestors(self, node: int) -> Iterator[int]:
        while node != _NO_PARENT:
            yield node
            node = self._parent[node]

    def _is_ancestor(self, node: int, of: int) -> bool:
        return any(a == node for a in self._ancestors(of))

    def _subtree(self, node: int) -> list[int]:
        out, pending = [], [node]
        while pending:
            n = pending.pop()
            out.append(n)
            pending.extend(self._children.get(n, ()))
        return out

    def _unit(self, code: int) -> list[int]:
        unit = [0] * len(RELATIONS)
        unit[code] = 1
        return unit

    def _add_to_ancestors(self, node: int, delta: list[int], touched: list[int]) -> None:
        for ancestor in self._ancestors(node):
            counts = self._counts.setdefault(ancestor, [0] * len(RELATIONS))
            for i, d in enumerate(delta):
                counts[i] += d
            if not any(counts):
                del self._counts[ancestor]
            touched.append(ancestor)

    def _move(self, node: int, parent: int, code: int) -> None:
        """Hang ``node`` and its subtree under ``parent`` (or make it a root)."""
        for n in self._subtree(node):
            self._mark(n)  # their root may change: remember the one they had
        carried = list(self._counts.get(node, [0] * len(RELATIONS)))
        touched: list[int] = []
        old_parent = self._parent[node]
        if old_parent != _NO_PARENT:
            self._children[old_parent].discard(node)
            if not self._children[old_parent]:
                del self._children[old_parent]
            leaving = [-c for c in carried]
            leaving[self._relation[node]] -= 1
            self._add_to_ancestors(old_parent, leaving, touched)
        self._parent[node], self._relation[node] = parent, code
        if parent != _NO_PARENT:
            self._children.setdefault(parent, set()).add(node)
            carried[code] += 1
            self._add_to_ancestors(parent, carried, touched)
        for ancestor in touched:
            self._mark(ancestor)

    def _row(self, node: int, root: int, depth: int, version: int) -> FamilyRow:
        counts = self._counts.get(node, [0] * len(RELATIONS))
        parent = self._parent[node]
        size = self._size[node] or _NO_SIZE
        base = (self._size[parent] if parent != _NO_PARENT else None) or _NO_SIZE
        return FamilyRow(
            root_id=self._names[root],
            model_id=self._names[node],
            parent_id="" if parent == _NO_PARENT else self._names[parent],
            relation="" if parent == _NO_PARENT else RELATIONS[self._relation[node]],
            depth=depth,
            created_at=_time(self._created[node]),
            descendants=sum(counts),
            finetunes=counts[_CODE["finetune"]],
            quantized=counts[_CODE["quantized"]],
            adapters=counts[_CODE["adapter"]],
            merges=counts[_CODE["merge"]],
            children=len(self._children.get(node, ())),
            cycle=node in self._cycle,
            architecture=size.architecture,
            parameters=size.parameters,
            size_bytes=size.size_bytes,
            base_parameters=base.parameters,
            base_size_bytes=base.size_bytes,
            as_of=_time(self._as_of[node]),
            version=version,
            is_deleted=0,
        )

    def _deletion(self, root_id: str, node: int, version: int) -> FamilyRow:
        return FamilyRow(
            root_id=root_id,
            model_id=self._names[node],
            parent_id="",
            relation="",
            depth=0,
            created_at=None,
            descendants=0,
            finetunes=0,
            quantized=0,
            adapters=0,
            merges=0,
            children=0,
            cycle=False,
            architecture="",
            parameters=None,
            size_bytes=None,
            base_parameters=None,
            base_size_bytes=None,
            as_of=None,
            version=version,
            is_deleted=1,
        )
