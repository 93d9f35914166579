"""Realistic data for the panels, through the processors' own functions: the Mistral-Small
crawl as ``model.created`` (families, lineage), snapshots of every model over the last 30
hours (live windows, hourly engagement), Hub commits and discussions, GitHub issues and
releases, the shared v2 leaderboard sample, alerts in each delivery state, a dead letter."""

from __future__ import annotations

import csv
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hubwatch.clickhouse import connect
from hubwatch.events import DeadLetter
from hubwatch.summaries import refresh
from processors.engagement import RollingEngagement
from processors.families import FamilyForest
from processors.pipeline import plan_batch
from processors.sinks import ClickHouseWriter
from producers.github import issue_from_api, release_from_api
from producers.hub import model_commit_from_api, model_created_from_api, model_snapshot_from_api
from tests.conftest import FIXTURE, ImportBoard

V2 = FIXTURE.parent / "open_llm_leaderboard_v2_sample1000_2025-03-21.csv"
BASE = "mistralai/Mistral-Small-24B-Base-2501"
SNAPSHOT_HOURS = (30, 26, 20, 6, 3, 2, 1)


def load_panel_data(
    clickhouse_url: str,
    database: str,
    items: list[dict[str, Any]],
    import_board: ImportBoard,
    now: datetime,
) -> None:
    writer = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    forest = FamilyForest()
    engagement = RollingEngagement({})
    ordered = sorted(items, key=lambda i: i["createdAt"])
    created = [model_created_from_api(i, now - timedelta(hours=31)) for i in ordered]
    writer.write(plan_batch(created, forest=forest).plans())
    # Counters that grow at a different pace per model, so some derivatives outgrow their
    # base and their siblings (breakouts) and every window has gains.
    for hours_ago in SNAPSHOT_HOURS:
        at = now - timedelta(hours=hours_ago)
        grown = 30 - hours_ago
        snapshots = [
            model_snapshot_from_api(
                {
                    "id": item["id"],
                    "downloads": 100 + n * 3,
                    "downloadsAllTime": 1000 + n * 10 + grown * (n % 7) * 50,
                    "likes": n % 11 + grown * (n % 3),
                    "trendingScore": float(n % 5),
                },
                at,
            )
            for n, item in enumerate(ordered)
        ]
        writer.write(plan_batch(snapshots, engagement=engagement).plans())
    community: list[Any] = []
    for n, item in enumerate(ordered[:20]):
        community.append(
            model_commit_from_api(
                item["id"],
                {
                    "id": uuid.uuid5(uuid.NAMESPACE_URL, item["id"]).hex,
                    "date": (now - timedelta(hours=n + 1)).isoformat(),
                    "title": "Upload model",
                    "authors": [{"user": "someone"}],
                },
            )
        )
    for n in range(6):
        when = (now - timedelta(hours=2 * n + 1)).isoformat()
        community.append(
            issue_from_api(
                "mistralai/mistral-inference",
                {"number": n + 1, "title": f"issue {n}", "state": "open", "created_at": when,
                 "updated_at": when, "user": {"login": "dev"}},
            )
        )  # fmt: skip
        community.append(
            release_from_api(
                "mistralai/mistral-inference",
                {"id": 100 + n, "tag_name": f"v1.{n}", "published_at": when, "name": f"v1.{n}"},
            )
        )
    community.append(
        DeadLetter(
            stage="processor.model.created",
            reason="missing_field",
            detail="id",
            source="hub.models.created",
            key=None,
            payload='{"author": "nobody"}',
            payload_bytes=20,
            at=now - timedelta(hours=1),
        )
    )
    writer.write(plan_batch(community).plans())
    writer.close()
    import_board(_board_naming_the_crawl(ordered))
    _alerts(connect(clickhouse_url, database=database), ordered, now)
    client = connect(clickhouse_url, database=database)
    refresh(client)  # the summaries, as a running deployment keeps them
    client.close()


def _board_naming_the_crawl(items: list[dict[str, Any]]) -> Path:
    """The shared v2 sample (it scores the crawl's root) plus rows for a few of the crawl's
    finetunes, as the board would list them, so accuracy changes have pairs."""
    csv.field_size_limit(1 << 30)
    with V2.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = list(reader.fieldnames or []), list(reader)
    root = next(r for r in rows if r["model_name"] == BASE)
    finetunes = [i["id"] for i in items if f"base_model:finetune:{BASE}" in i.get("tags", [])]
    for n, model in enumerate(finetunes[:5]):
        row = dict(root)
        score = float(root["model_average_score"]) + (n - 1) * 1.5
        row.update(
            id=f"{model}_bfloat16_{'0' * 40}_False",
            model_name=model,
            model_sha="0" * 40,
            model_type="fine-tunedondomain-specificdatasets",
            model_average_score=str(score),
            metadata_generation="1",
            metadata_base_model=BASE,
        )
        rows.append(row)
    path = Path(tempfile.mkdtemp()) / "open_llm_leaderboard_v2.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _alerts(client: Any, items: list[dict[str, Any]], now: datetime) -> None:
    """Alerts as the alerts writer keeps them (migration 0043's columns): one per target,
    a later version for each delivery attempt."""
    base = BASE
    rows = []
    for n, item in enumerate(items[:9]):
        fired = now - timedelta(hours=n + 1)
        for target, state in (("terminal", "delivered"), ("webhook", ("queued", "failed")[n % 2])):
            for version, current in ((1, "queued"), (2, state)):
                rows.append(
                    [
                        f"alert-{n}", ("new_quantization", "breakout")[n % 2], item["id"], base,
                        "quantized", f"https://huggingface.co/{item['id']}", [item["id"]], 1,
                        fired, target, current,
                        fired + timedelta(seconds=5) if current == "delivered" else None,
                        version, "", fired, "{}", int(fired.timestamp() * 1000) + version,
                    ]
                )  # fmt: skip
    client.insert(
        "alerts",
        rows,
        column_names=[
            "alert_id", "rule", "model_id", "base_model", "relation", "link", "models", "count",
            "fired_at", "target", "state", "delivered_at", "attempts", "last_error",
            "next_attempt_at", "payload", "version",
        ],
    )  # fmt: skip
    client.close()


def panel_now() -> datetime:
    """The data's "now", to the second (snapshots are relative to it)."""
    return datetime.now(UTC).replace(microsecond=0)
