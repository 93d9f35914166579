"""Activity counted as activity: the same history of discussions and issues, polled at
different cadences, gives the same counts in community_activity, and those counts are
what a plain-Python count of the true transitions says."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hubwatch.events import GithubIssue, ModelCreated, ModelDiscussion
from hubwatch.queries import load
from processors.pipeline import plan_batch
from processors.sinks import ClickHouseWriter
from producers.hub import discussion_transitions

T0 = datetime(2026, 3, 1, tzinfo=UTC)
AT = T0 + timedelta(days=10)
HOUR = timedelta(hours=1)


def history(seed: int) -> list[tuple[str, int, bool, list[tuple[datetime, str]]]]:
    """(source, number, is_pull_request, [(when, status)…]): random opens, closes, merges,
    reopens over ten days; each item's first status is open at its creation. Changes are
    more than a day apart (a listing shows only the current status, so a close and a reopen
    between two polls leave no trace there), and a GitHub item changes at most once (its
    list shows only the latest close; test_analysis covers its reopen)."""
    rng = random.Random(seed)
    items = []
    for number in range(1, 41):
        source = "hub" if number % 2 else "github"
        pr = number % 3 == 0
        when = T0 + timedelta(minutes=rng.randrange(0, 10 * 24 * 60 - 600))
        steps = [(when, "open")]
        status = "open"
        for _ in range(rng.randrange(0, 4 if source == "hub" else 2)):
            when += timedelta(minutes=rng.randrange(24 * 60 + 1, 3 * 24 * 60))
            if status == "open":
                status = "merged" if pr and rng.random() < 0.5 else "closed"
            elif status == "closed":
                status = "open"
            else:
                break
            steps.append((when, status))
        items.append((source, number, pr, steps))
    return items


def polled(items: list[Any], every: timedelta) -> list[Any]:
    """The events hubwatch makes polling every ``every`` (and once more at AT)."""
    events: list[Any] = []
    known: dict[int, str] = {}
    at = T0 + every
    while True:
        at = min(at, AT)
        for source, number, pr, steps in items:
            seen = [(w, s) for w, s in steps if w <= at]
            if not seen:
                continue
            created, status = seen[0][0], seen[-1][1]
            if source == "hub":
                if known.get(number) == status:
                    continue
                known[number] = status
                listed = ModelDiscussion("o/m", number, "t", status, pr, created)
                detail = {
                    "events": [
                        {"type": "status-change", "createdAt": w.isoformat(), "data": {"status": s}}
                        for w, s in seen[1:]
                    ]
                }
                events += discussion_transitions(listed, detail, at)
            else:
                # GitHub's list shows the latest state; a reopen clears closed_at.
                last = seen[-1][0]
                reopened = status == "open" and len(seen) > 1
                events.append(
                    GithubIssue(
                        "gh/r",
                        number,
                        "t",
                        "open" if status == "open" else "closed",
                        pr,
                        created,
                        last,
                        closed_at=last if status != "open" else None,
                        merged_at=last if status == "merged" else None,
                        state_reason="reopened" if reopened else None,
                    )
                )
        if at == AT:
            return events
        at += every


def expected(items: list[Any], start: datetime) -> dict[str, int]:
    """Distinct items per transition in [start, AT), counted from the true history."""
    counts: dict[str, set[int]] = {}
    for source, number, pr, steps in items:
        for i, (when, status) in enumerate(steps):
            if not start <= when < AT:
                continue
            transition = "opened" if i == 0 else "reopened" if status == "open" else status
            key = f"{source}.{'pr' if pr else 'item'}.{transition}"
            counts.setdefault(key, set()).add(number)
    return {k: len(v) for k, v in counts.items()}


@pytest.mark.parametrize(
    "every", [timedelta(minutes=5), HOUR, timedelta(days=1), timedelta(days=30)]
)
def test_counts_do_not_depend_on_the_poll_cadence(
    ch: Any, clickhouse_url: str, database: str, every: timedelta
) -> None:
    items = history(seed=8)
    model = ModelCreated("o/m", T0, T0, github_repos=("gh/r",))
    writer = ClickHouseWriter(
        lambda: __import__("hubwatch.clickhouse").clickhouse.connect(
            clickhouse_url, database=database
        ),
        database,
    )
    writer.write(plan_batch([model, *polled(items, every)]).plans())
    writer.close()
    query = load("community_activity")
    [row] = ch.query(
        query.sql, parameters=query.bind({"at": AT.strftime("%Y-%m-%d %H:%M:%S")})
    ).named_results()
    want = expected(items, AT - timedelta(days=7))
    got = {
        "hub.item.opened": row["discussions_opened_7d"],
        "hub.item.closed": row["discussions_closed_7d"],
        "hub.pr.opened": row["hub_pull_requests_opened_7d"],
        "hub.pr.merged": row["hub_pull_requests_merged_7d"],
        "github.item.opened": row["github_issues_opened_7d"],
        "github.item.closed": row["github_issues_closed_7d"],
        "github.pr.opened": row["github_pull_requests_opened_7d"],
        "github.pr.merged": row["github_pull_requests_merged_7d"],
    }
    reopened = row["hub_reopened_7d"] + row["github_reopened_7d"]
    assert got == {k: want.get(k, 0) for k in got}
    assert reopened == sum(v for k, v in want.items() if k.endswith(".reopened"))
    assert sum(got.values()) > 20  # the history is not trivially empty
