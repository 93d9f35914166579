"""The processors' in-memory state, rebuilt from ClickHouse when a processor starts: what
was written is all a restart needs (rows are written before their events are acknowledged).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging

from hubwatch.clickhouse import as_utc, connect
from hubwatch.errors import SinkError
from processors.aliases import Aliases
from processors.engagement import HORIZON_HOURS, RollingEngagement
from processors.families import FamilyForest

__all__ = [
    "ForestKeeper",
    "family_epoch",
    "load_aliases",
    "load_engagement",
    "load_forest",
    "record_epoch",
]

log = logging.getLogger(__name__)


def load_forest(clickhouse_url: str, database: str, *, reconcile: bool = False) -> FamilyForest:
    """The family trees as ``model_families`` holds them (empty on a fresh database), with
    the base sets ``lineage_edges`` holds where they are not just the primary base (merges,
    refused cycles) and the open ``lineage_disputes``, so newer metadata can retract them.

    With ``reconcile`` (a reload after another writer rebuilt the families), a model stored
    under two roots takes its newest row's place, and every stored row that disagrees with
    the trees (what a processor wrote from its stale forest while a backfill ran) is
    rewritten at the next drain (:meth:`FamilyForest.reconcile`)."""
    forest = FamilyForest()
    with contextlib.closing(connect(clickhouse_url, database=database)) as client:
        version = client.query("SELECT max(version) FROM model_families").result_rows[0][0]
        bases = client.query(
            "SELECT derivative_id, groupArray(base_model_id) FROM lineage_edges FINAL"
            " GROUP BY derivative_id HAVING count() > 1 OR derivative_id IN"
            " (SELECT model_id FROM model_families FINAL WHERE cycle)"
        ).result_rows
        disputed = client.query(
            "SELECT derivative_id, groupArray(base_model_id) FROM lineage_disputes FINAL"
            " GROUP BY derivative_id"
        ).result_rows
        with client.query_row_block_stream(
            "SELECT model_id, parent_id, relation, created_at, cycle, as_of, parameters,"
            " size_bytes, architecture FROM model_families FINAL"
            + (" ORDER BY version, root_id, model_id" if reconcile else "")
        ) as stream:
            forest.load(
                (row for block in stream for row in block),
                version=version or 0,
                bases=bases,
                disputed=disputed,
            )
        if reconcile:
            with client.query_row_block_stream(
                "SELECT model_id, parent_id, root_id, depth, descendants, children"
                " FROM model_families FINAL"
            ) as stream:
                stale = forest.reconcile(row for block in stream for row in block)
            if stale:
                log.info("%d family rows disagree with the reloaded trees: rewriting", stale)
    # It lives as long as the process: keep the cyclic collector from rescanning it.
    gc.freeze()
    return forest


def family_epoch(clickhouse_url: str, database: str) -> int:
    """The newest epoch a writer other than the processor recorded (0: none)."""
    with contextlib.closing(connect(clickhouse_url, database=database)) as client:
        epoch = client.query("SELECT max(epoch) FROM family_epochs").result_rows[0][0]
    return int(epoch or 0)


def record_epoch(clickhouse_url: str, database: str, epoch: int, writer: str) -> None:
    """Say that ``writer`` rebuilt families up to version ``epoch``: processors reload."""
    with contextlib.closing(connect(clickhouse_url, database=database)) as client:
        client.insert("family_epochs", [[epoch, writer]], column_names=["epoch", "writer"])


class ForestKeeper:
    """The processor's forest, reloaded when a backfill has rebuilt the families since it
    was loaded: the processor owns the forest, and a backfill hands it back by recording
    an epoch (one short query per batch to check)."""

    def __init__(self, clickhouse_url: str, database: str) -> None:
        self._url, self._database = clickhouse_url, database
        self._epoch = -1
        self.forest = FamilyForest()

    async def current(self) -> FamilyForest:
        """The forest to plan the next batch with, reloaded first if it is stale."""
        from clickhouse_connect.driver.exceptions import OperationalError

        try:
            epoch = await asyncio.to_thread(family_epoch, self._url, self._database)
        except (SinkError, OperationalError, OSError) as exc:
            if self._epoch < 0 or not getattr(exc, "retriable", True):
                raise  # nothing loaded yet, or not an outage
            # ClickHouse is unreachable: the writer waits the outage out with this batch,
            # and the epoch is checked again before the next one.
            return self.forest
        if epoch != self._epoch:
            if self._epoch >= 0:
                log.info("families were rebuilt (epoch %d): reloading the forest", epoch)
            # A reload reconciles: what this processor wrote while the other writer ran is
            # rewritten from the trees now, not left until the model's next change.
            self.forest = await asyncio.to_thread(
                functools.partial(load_forest, reconcile=self._epoch >= 0),
                self._url,
                self._database,
            )
            self._epoch = epoch
        return self.forest


def load_aliases(clickhouse_url: str, database: str) -> Aliases:
    """The other names of models, as ``model_aliases`` holds them."""
    aliases = Aliases()
    with (
        contextlib.closing(connect(clickhouse_url, database=database)) as client,
        client.query_row_block_stream(
            "SELECT alias_id, canonical_id FROM model_aliases FINAL"
        ) as stream,
    ):
        aliases.load(row for block in stream for row in block)
    return aliases


def load_engagement(
    clickhouse_url: str, database: str, *, prune_every: int = 50_000
) -> RollingEngagement:
    """Embedded-mode windows over a dict, refilled with the horizon's snapshots (on Kafka
    the faust table recovers from its changelog instead)."""
    engagement = RollingEngagement({}, prune_every=prune_every)
    with (
        contextlib.closing(connect(clickhouse_url, database=database)) as client,
        client.query_row_block_stream(
            "SELECT repo_id, observed_at, downloads, downloads_all_time, likes"
            " FROM model_snapshots"
            " WHERE observed_at >= (SELECT max(observed_at) FROM model_snapshots)"
            f" - INTERVAL {HORIZON_HOURS} HOUR"
        ) as stream,
    ):
        for block in stream:
            for repo_id, at, downloads, all_time, likes in block:
                # A naive value would be read in the host's zone by timestamp().
                engagement.fold(repo_id, as_utc(at).timestamp(), all_time, downloads, likes)
    return engagement
