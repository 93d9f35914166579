"""Canonical ids of the bases models name: a base id the Hub does not list under that exact
name is an old name (the repo was renamed or transferred) or another casing (the Hub
resolves ids without regard to case), or a repo gone.

Each round takes base ids that tracked models name and that are neither tracked nor
resolved. One that differs from a known id (tracked, or an answer of the Hub's) in case only
is resolved without a request. Any other is looked up once through the Hub's model endpoint,
``/api/models/{id}``: a renamed repo's old name redirects to the new one, and the body's
``id`` is the name the Hub lists it under. Every answer is kept in the state store, so an id
costs one request across rounds and restarts. A name that is not canonical becomes a
``model.alias`` event; the processors keep lineage and families at the canonical id.
Not urgent: lookups wait for the budget behind new-upload detection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import httpx

from hubwatch.errors import NotFound, SchemaError, SourceError
from hubwatch.events import ModelAlias, check_repo_id
from producers._http import request
from producers._ratelimit import RequestBudget
from producers.hub import now_utc
from producers.publish import EventPublisher
from producers.state import StateStore

__all__ = ["AliasPoller"]

log = logging.getLogger(__name__)


class AliasPoller:
    name = "hub.aliases"

    def __init__(
        self,
        client: httpx.AsyncClient,
        publisher: EventPublisher,
        store: StateStore,
        *,
        lookups_per_round: int = 100,
        budget: RequestBudget | None = None,
    ) -> None:
        self._client = client
        self._publisher = publisher
        self._store = store
        self._lookups = max(1, lookups_per_round)
        self._budget = budget

    async def poll_once(self) -> int:
        """One round over the bases tracked models name; returns how many aliases it
        published."""
        return len(await self.resolve(self._store.unresolved_bases(self._lookups * 4)))

    async def resolve(self, names: Iterable[str]) -> list[ModelAlias]:
        """Resolve ``names`` not resolved before (at most ``lookups_per_round`` requests;
        the rest wait for another call), publish their aliases, then remember every answer.
        Any caller with repo ids to map (a leaderboard's names) shares the same cache."""
        resolved_at = now_utc()
        answers: dict[str, tuple[str, str]] = {}
        "name -> (canonical id, how), this call's; stored once the events are durable."
        folded: dict[str, str] = {}
        "Lower-cased canonical ids this call learned -> the id."
        failure: SourceError | None = None
        requests = 0
        for base in dict.fromkeys(names):
            if base in answers or self._store.alias(base) is not None:
                continue
            canonical = folded.get(base.lower()) or self._store.known_casing(base)
            if canonical is not None:
                answers[base] = (canonical, "exact" if canonical == base else "case")
                continue
            if requests >= self._lookups:
                break
            requests += 1
            try:
                canonical = await self._look_up(base)
            except SourceError as exc:
                failure = exc  # keep what this call resolved; the rest waits
                break
            if canonical is None:
                answers[base] = ("", "gone")
                continue
            if canonical == base:
                how = "exact"
            elif canonical.lower() == base.lower():
                how = "case"
            else:
                how = "redirect"
            answers[base] = (canonical, how)
            folded[canonical.lower()] = canonical

        events = [
            ModelAlias(base, canonical, how, resolved_at)
            for base, (canonical, how) in answers.items()
            if how in ("case", "redirect")
        ]
        for event in events:
            await self._publisher.publish(event)
        await self._publisher.flush()
        with self._store.transaction():
            for base, (canonical, how) in answers.items():
                self._store.resolve_alias(base, canonical, how, time.time())
        if events:
            log.info("hub aliases: %d names are another id's", len(events))
        if failure is not None:
            raise failure
        return events

    async def _look_up(self, repo_id: str) -> str | None:
        """The id the Hub shows ``repo_id`` under, or None if it shows none."""
        try:
            body, _ = await request(
                self._client,
                f"/api/models/{repo_id}",
                params=[("expand", "createdAt")],
                budget=self._budget,
            )
        except NotFound:
            return None  # deleted, private or gated: nothing to resolve it to
        try:
            return check_repo_id(body.get("id") if isinstance(body, dict) else None)
        except SchemaError as exc:
            log.warning("hub aliases: %s answered without a usable id (%s)", repo_id, exc)
            return None
