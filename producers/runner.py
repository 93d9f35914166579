"""Assembles the producers from settings: one HTTP client and one request budget per API,
the shared state store, every poller, and the webhook receiver; runs them until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta
from typing import Protocol, Self

import httpx

from hubwatch import metrics
from hubwatch.errors import SchemaError, SinkError, SourceError
from hubwatch.settings import Settings, split_list
from producers._http import make_client
from producers._ratelimit import RequestBudget, StreamBudget
from producers.checkpoint import CheckpointStore
from producers.github import GITHUB_HEADERS, REPO_COST, GithubPoller
from producers.hub_aliases import AliasPoller
from producers.hub_community import CommunityPoller
from producers.hub_edits import HubEditsPoller
from producers.hub_engagement import EngagementPoller
from producers.hub_reconcile import ReconcilePoller
from producers.hub_uploads import HubUploadsPoller
from producers.outage import Outage
from producers.publish import Publisher
from producers.state import StateStore
from producers.tracking import SnapshotSchedule, Tracker, TrackingPolicy
from producers.webhooks import WebhookReceiver

__all__ = ["Outage", "Poller", "Producers", "run_every"]

log = logging.getLogger(__name__)


class Poller(Protocol):
    name: str

    async def poll_once(self) -> int: ...


async def run_every(
    poller: Poller,
    interval: float,
    stop: asyncio.Event,
    grace: float = 5.0,
    *,
    outage: Outage | None = None,
    retry_max: float = 60.0,
) -> None:
    """Poll until ``stop``; an upstream failure is logged and retried next round, so a
    poller never loses its place (its state moves only after a successful round).

    A sink that cannot take the round's events (Kafka down, a delivery that failed) is
    waited out: the round is retried from the saved state after a backoff that doubles up
    to ``retry_max`` seconds, and ``outage`` reports it once for all pollers.

    On ``stop`` a round in flight gets ``grace`` seconds to finish, then is cancelled:
    safe, because nothing it did counts until its events are flushed and its state saved.
    """
    outage = outage or Outage()
    failures = 0
    # A stream that never completes a round after a start shows as stalled too.
    metrics.POLL_INTERVAL.labels(poller.name).set(interval)
    metrics.LAST_POLL.labels(poller.name).set(time.time())
    rounds = metrics.POLL_ROUNDS
    while not stop.is_set():
        round_ = asyncio.ensure_future(poller.poll_once())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({round_, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not round_.done():
            await asyncio.wait({round_}, timeout=grace)
            round_.cancel()
        stopping.cancel()
        wait = interval
        try:
            await round_
        except asyncio.CancelledError:
            log.info("%s: round cancelled on stop", poller.name)
            return
        except (SourceError, SchemaError) as exc:
            rounds.labels(poller.name, "failed").inc()
            log.warning("%s: poll failed, will retry: %s", poller.name, exc)
        except SinkError as exc:
            rounds.labels(poller.name, "failed").inc()
            if not exc.retriable:
                log.warning("%s: Kafka refused the round, will retry: %s", poller.name, exc)
            else:
                failures += 1
                outage.failed(poller.name, exc)
                wait = min(retry_max, interval, 2.0 ** (failures - 1))
        else:
            rounds.labels(poller.name, "ok").inc()
            metrics.LAST_POLL.labels(poller.name).set(time.time())
            if failures:
                failures = 0
                outage.recovered(poller.name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)


class Producers:
    """Every stream the settings ask for, over one publisher."""

    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        *,
        hub: bool = True,
        github: bool = True,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.want_hub = hub
        self.want_github = github
        self.hub_budget = RequestBudget(
            "hub", limit=settings.hub_requests_per_window, window=300.0, share=settings.rate_share
        )
        github_limit = settings.github_requests_per_hour if settings.github_token else 60
        self.github_budget = RequestBudget(
            "github", limit=github_limit, window=3600.0, share=settings.rate_share
        )
        self.hub_shares: dict[str, StreamBudget] = {
            stream: self.hub_budget.reserve(stream, share)
            for stream, share in settings.hub_share_map().items()
        }
        "Each Hub stream's reserved share of the Hub budget (HUBWATCH_HUB_SHARES)."
        self.store: StateStore | None = None
        self.tracker: Tracker | None = None
        self.pollers: list[tuple[Poller, float]] = []
        self.outage = Outage()
        "Kafka outages, reported once for every poller and the webhook receiver."
        self.webhooks: WebhookReceiver | None = None
        self._clients: list[httpx.AsyncClient] = []

    async def start(self) -> None:
        s = self.settings
        self.store = store = StateStore(s.state_dir / "producers.sqlite")
        self.tracker = tracker = Tracker(
            store,
            TrackingPolicy(
                community_min_likes=s.community_min_likes,
                community_every=s.community_repo_interval,
                watched_orgs=frozenset(split_list(s.watched_orgs)),
                watched_base_models=frozenset(split_list(s.watched_base_models)),
                webhook_orgs=frozenset(split_list(s.watched_orgs))
                if s.webhook_port
                else frozenset(),
            ),
            SnapshotSchedule(calls_per_day=s.snapshot_calls_per_day),
            bulk_every=s.engagement_bulk_every,
            calls_per_day=self._snapshot_calls_per_day,
        )
        overlap = timedelta(seconds=s.overlap_seconds)
        lookback = (
            None
            if s.initial_lookback_seconds is None
            else timedelta(seconds=s.initial_lookback_seconds)
        )
        if self.want_hub:
            hub = make_client(base_url=s.hub_url, token=s.hf_token)
            self._clients.append(hub)
            streams = split_list(s.hub_streams)
            if "uploads" in streams:
                self.pollers.append(
                    (
                        HubUploadsPoller(
                            hub,
                            self.publisher.session(),
                            CheckpointStore(s.checkpoint_dir / "hub_uploads.json"),
                            overlap=overlap,
                            initial_lookback=lookback,
                            page_limit=s.page_limit,
                            budget=self.hub_shares["uploads"],
                            tracker=tracker,
                        ),
                        s.poll_interval,
                    )
                )
            if "edits" in streams:
                self.pollers.append(
                    (
                        HubEditsPoller(
                            hub,
                            self.publisher.session(),
                            tracker,
                            overlap=overlap,
                            initial_lookback=lookback,
                            page_limit=s.page_limit,
                            budget=self.hub_shares["edits"],
                        ),
                        s.edits_interval,
                    )
                )
            if "engagement" in streams:
                per_round = round(s.snapshot_requests_per_window * s.engagement_interval / 300)
                self.pollers.append(
                    (
                        EngagementPoller(
                            hub,
                            self.publisher.session(),
                            tracker,
                            requests_per_round=per_round,
                            bulk_every=s.engagement_bulk_every,
                            bulk_sorts=split_list(s.engagement_bulk_sorts),
                            budget=self.hub_shares["engagement"],
                        ),
                        s.engagement_interval,
                    )
                )
            if "reconcile" in streams:
                self.pollers.append(
                    (
                        ReconcilePoller(
                            hub,
                            self.publisher.session(),
                            tracker,
                            days=s.reconcile_days,
                            overlap=overlap,
                            initial_lookback=lookback,
                            lookups_per_round=s.reconcile_lookups,
                            budget=self.hub_shares["reconcile"],
                        ),
                        s.reconcile_interval,
                    )
                )
                if s.deep_reconcile_days > s.reconcile_days:
                    self.pollers.append(
                        (
                            ReconcilePoller(
                                hub,
                                self.publisher.session(),
                                tracker,
                                days=s.deep_reconcile_days,
                                overlap=overlap,
                                initial_lookback=lookback,
                                lookups_per_round=s.reconcile_lookups,
                                budget=self.hub_shares["reconcile"],
                                name="hub.reconcile.deep",
                                max_pages=s.deep_reconcile_pages,
                            ),
                            s.deep_reconcile_interval,
                        )
                    )
                self.pollers.append(
                    (
                        ReconcilePoller(
                            hub,
                            self.publisher.session(),
                            tracker,
                            days=0,
                            overlap=overlap,
                            initial_lookback=lookback,
                            lookups_per_round=s.first_seen_lookups,
                            budget=self.hub_shares["first_seen"],
                            name="hub.first_seen",
                            listing=False,
                        ),
                        s.first_seen_interval,
                    )
                )
            if "aliases" in streams:
                self.pollers.append(
                    (
                        AliasPoller(
                            hub,
                            self.publisher.session(),
                            store,
                            lookups_per_round=s.alias_lookups,
                            budget=self.hub_shares["aliases"],
                        ),
                        s.alias_interval,
                    )
                )
            if "community" in streams:
                self.pollers.append(
                    (
                        CommunityPoller(
                            hub,
                            self.publisher.session(),
                            tracker,
                            budget=self.hub_shares["community"],
                        ),
                        s.community_interval,
                    )
                )
            if s.webhook_port is not None and s.webhook_secret:
                self.webhooks = WebhookReceiver(
                    self.publisher,
                    store,
                    s.webhook_secret,
                    port=s.webhook_port,
                    outage=self.outage,
                )
                await self.webhooks.start()
                log.info("receiving Hub webhooks at %s%s", self.webhooks.url, WebhookReceiver.path)
        if self.want_github:
            github = make_client(
                base_url=s.github_url, token=s.github_token, headers=GITHUB_HEADERS
            )
            self._clients.append(github)
            self.pollers.append(
                (
                    GithubPoller(
                        github,
                        self.publisher.session(),
                        store,
                        repos=split_list(s.github_repos),
                        budget=self.github_budget,
                        lookback=None
                        if s.github_lookback_days is None
                        else timedelta(days=s.github_lookback_days),
                        repo_interval=s.github_repo_interval,
                        round_seconds=s.github_interval,
                        max_repos=self._github_max_repos(),
                    ),
                    s.github_interval,
                )
            )

    def _github_max_repos(self) -> int:
        """The followed set's cap: as set, else the repos the budget polls once per repo
        interval at their least cost."""
        s = self.settings
        if s.github_max_repos is not None:
            return s.github_max_repos
        every = max(s.github_repo_interval, s.github_interval)
        return max(1, int(self.github_budget.rate * every / REPO_COST))

    def _snapshot_calls_per_day(self) -> float:
        """Per-model snapshot calls a day: what the engagement share buys at the Hub's
        current limit, less the bulk calls."""
        s = self.settings
        bulk = len(split_list(s.engagement_bulk_sorts)) * 86_400 / s.engagement_bulk_every
        return self.hub_shares["engagement"].calls_per_day - bulk

    async def stop(self) -> None:
        if self.webhooks is not None:
            await self.webhooks.stop()
            self.webhooks = None
        for client in self._clients:
            await client.aclose()
        self._clients.clear()
        self.pollers.clear()
        if self.store is not None:
            self.store.close()
            self.store = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def poll_once(self) -> dict[str, int]:
        """Each poller once, in order; returns events published per stream."""
        return {poller.name: await poller.poll_once() for poller, _ in self.pollers}

    async def run(self, stop: asyncio.Event) -> None:
        outage = self.outage
        retry_max = self.settings.sink_retry_max
        await asyncio.gather(
            *(
                run_every(p, interval, stop, outage=outage, retry_max=retry_max)
                for p, interval in self.pollers
            )
        )
