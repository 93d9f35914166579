"""The processors' in-memory state, rebuilt from ClickHouse when a processor starts: what
was written is all a restart needs (rows are written before their events are acknowledged).
"""

from __future__ import annotations

import contextlib
import gc

from hubwatch.clickhouse import as_utc, connect
from processors.aliases import Aliases
from processors.engagement import HORIZON_HOURS, RollingEngagement
from processors.families import FamilyForest

__all__ = ["load_aliases", "load_engagement", "load_forest"]


def load_forest(clickhouse_url: str, database: str) -> FamilyForest:
    """The family trees as ``model_families`` holds them (empty on a fresh database)."""
    forest = FamilyForest()
    with (
        contextlib.closing(connect(clickhouse_url, database=database)) as client,
        client.query_row_block_stream(
            "SELECT model_id, parent_id, relation, created_at, cycle, as_of, parameters,"
            " size_bytes, architecture FROM model_families FINAL"
        ) as stream,
    ):
        forest.load(row for block in stream for row in block)
    # It lives as long as the process: keep the cyclic collector from rescanning it.
    gc.freeze()
    return forest


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
