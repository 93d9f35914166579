"""A leaderboard's names at their canonical ids: a board names bases (and sometimes itself)
by old names of renamed repos (``meta-llama/Meta-Llama-3.1-8B`` is now
``meta-llama/Llama-3.1-8B``) or in other letters, so its pairs join the scores only once
those names are mapped.

A name that differs from a known id in case only (a model hubwatch tracks, or, for a base,
one the board itself scores) is mapped without a request. Every other name goes through
:meth:`producers.hub_aliases.AliasPoller.resolve`, the aliases stream's own cache (one
request per unknown id, ever, within the Hub budget; bases first). The answers are written
to ``model_aliases`` straight away, as the processors write ``model.alias`` events, because
an import writes to ClickHouse directly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hubwatch.errors import SourceError
from hubwatch.events import DeadLetter, Event, ModelAlias
from hubwatch.settings import Settings
from processors.pipeline import plan_batch
from processors.plans import InsertPlan
from processors.restore import load_aliases
from producers._http import make_client, request
from producers._ratelimit import RequestBudget
from producers.hub import now_utc
from producers.hub_aliases import AliasPoller
from producers.state import StateStore

__all__ = ["BoardAliases", "case_aliases", "resolve_board_names"]


@dataclass(frozen=True, slots=True)
class BoardAliases:
    aliases: list[ModelAlias]
    "What was learned (written to ``model_aliases``)."
    unresolved: str | None = None
    "Why the Hub could not be asked (the import goes on without its answers)."


def case_aliases(
    models: Iterable[str], bases: Iterable[str], tracked: Iterable[str]
) -> list[ModelAlias]:
    """Names that are a known id in other letters: a board's model names against the ids
    hubwatch tracks, its base names against those and the models the board scores."""
    tracked_ids = set(tracked)
    model_ids = set(models)
    by_case = {repo_id.lower(): repo_id for repo_id in sorted(model_ids)}
    by_case.update({repo_id.lower(): repo_id for repo_id in sorted(tracked_ids)})  # Hub's first
    tracked_by_case = {repo_id.lower(): repo_id for repo_id in sorted(tracked_ids)}
    at = now_utc()
    out: dict[str, ModelAlias] = {}
    for name in sorted(model_ids):
        known = tracked_by_case.get(name.lower())
        if name not in tracked_ids and known is not None:
            out[name] = ModelAlias(name, known, "case", at)
    for name in sorted(set(bases)):
        known = by_case.get(name.lower())
        if name not in tracked_ids and name not in model_ids and known is not None:
            out.setdefault(name, ModelAlias(name, known, "case", at))
    return list(out.values())


class _ClickHousePublisher:
    """The alias stream's publisher for an import: ``flush`` writes what was published to
    ``model_aliases`` the way the processors do (chains kept one hop deep)."""

    def __init__(self, write: Callable[[list[InsertPlan]], None], aliases: Any) -> None:
        self._write = write
        self._aliases = aliases
        self._pending: list[Event | DeadLetter] = []
        self.written: list[ModelAlias] = []

    async def publish(self, event: Event) -> None:
        self._pending.append(event)

    async def dead_letter(self, letter: DeadLetter) -> None:
        self._pending.append(letter)

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            self._write(plan_batch(pending, aliases=self._aliases).plans())
            self.written += [e for e in pending if isinstance(e, ModelAlias)]


async def resolve_board_names(
    settings: Settings,
    models: Iterable[str],
    bases: Iterable[str],
    write: Callable[[list[InsertPlan]], None],
    say: Callable[[str], None] = lambda line: None,
) -> BoardAliases:
    """Map a board's names to canonical ids and write the aliases; ask the Hub only if it
    answers now (one quick probe), else say why it was not asked."""
    from hubwatch.clickhouse import connect

    model_ids, base_ids = set(models), set(bases)
    names = model_ids | base_ids
    with contextlib.closing(
        connect(settings.clickhouse_url, database=settings.clickhouse_database)
    ) as client:
        folded = sorted({n.lower() for n in names})
        tracked = [
            row[0]
            for start in range(0, len(folded), 500)  # a query's parameters have a size limit
            for row in client.query(
                "SELECT DISTINCT repo_id FROM models WHERE lower(repo_id) IN {names:Array(String)}",
                parameters={"names": folded[start : start + 500]},
            ).result_rows
        ]
    aliases = await asyncio.to_thread(
        load_aliases, settings.clickhouse_url, settings.clickhouse_database
    )
    publisher = _ClickHousePublisher(write, aliases)
    for event in case_aliases(model_ids, base_ids, tracked):
        await publisher.publish(event)
    await publisher.flush()
    known = set(tracked) | {e.alias_id for e in publisher.written}
    # Bases first: a board's pairs hang on them; its own names are asked for as budget allows.
    ask = sorted(base_ids - model_ids - known) + sorted(model_ids - known)
    if not ask:
        return BoardAliases(publisher.written)
    budget = RequestBudget(
        "hub", limit=settings.hub_requests_per_window, window=300.0, share=settings.rate_share
    )
    async with make_client(base_url=settings.hub_url, token=settings.hf_token) as hub:
        try:
            # The Hub may be out of reach (offline): one try, not the retry loop's minutes.
            await request(
                hub, "/api/models", params=[("limit", "1")], budget=budget, max_attempts=1
            )
        except SourceError as exc:
            return BoardAliases(publisher.written, f"the Hub at {settings.hub_url}: {exc}")
        say(
            f"resolving {len(ask)} names through the Hub at {settings.hub_url} "
            f"(at most {settings.alias_lookups} new requests, within its rate budget)"
        )
        store = StateStore(settings.state_dir / "producers.sqlite")
        try:
            poller = AliasPoller(
                hub, publisher, store, lookups_per_round=settings.alias_lookups, budget=budget
            )
            try:
                await poller.resolve(ask)
            except SourceError as exc:
                return BoardAliases(publisher.written, f"the Hub at {settings.hub_url}: {exc}")
        finally:
            store.close()
    return BoardAliases(publisher.written)
