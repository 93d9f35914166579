"""Every stream through the real Kafka: `hubwatch poll all` against the replay while the
world changes, under a fault script, killed with SIGKILL and restarted. Each topic then
holds every expected event (nothing missed), duplicates only of the same event id, and one
key's events in order."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

from hubwatch.replay import Fault, GithubWorld, HubWorld, ListSource, ReplayServer
from tests.conftest import kcat, spawn, wait_until

BASE = "mistralai/Mistral-Small-24B-Base-2501"
CHILD = "allura-org/Mistral-Small-24b-Sertraline-0304"
REPO = "octo/inference"


def _topic(bootstrap: str, prefix: str, kind: str) -> list[dict[str, Any]]:
    return kcat(bootstrap, f"{prefix}{kind}")


def _ids(messages: list[dict[str, Any]]) -> set[str]:
    return {m["event_id"] for m in messages}


async def _until(check: Any, what: str) -> None:
    await asyncio.to_thread(wait_until, check, what, 120.0)


async def test_all_streams_arrive_once_in_order_across_kill_and_faults(
    fixture_items: list[dict[str, Any]],
    kafka_bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    github = GithubWorld()
    github.add_repo(REPO)
    # A quota large enough that pacing at 80 % of it does not make the test slow.
    server = ReplayServer(
        HubWorld(ListSource(fixture_items), start=67), github=github, api_quota=60_000
    )
    server.faults = [
        Fault("429", count=2, path="/api/models", seconds=1),
        Fault("500", count=2, path="/api/models"),
        Fault("truncate", count=1, path="/api/models"),
        Fault("reset", count=1, path="/api/models/"),
        Fault("429", count=1, path="/repos/", seconds=1),
        Fault("503", count=1, path="/repos/"),
    ]
    async with server:
        env = {
            "HUBWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "HUBWATCH_TOPIC_PREFIX": topic_prefix,
            "HUBWATCH_HUB_URL": server.url,
            "HUBWATCH_GITHUB_URL": server.url,
            "HUBWATCH_GITHUB_REPOS": REPO,
            "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
            "HUBWATCH_INITIAL_LOOKBACK_SECONDS": "",
            "HUBWATCH_WATCHED_BASE_MODELS": BASE,
            "HUBWATCH_COMMUNITY_REPO_INTERVAL": "1",
            "HUBWATCH_PAGE_LIMIT": "25",
            "HUBWATCH_GITHUB_REPO_INTERVAL": "0",  # the one repo every round
        }
        for name in ("POLL", "EDITS", "ENGAGEMENT", "COMMUNITY", "GITHUB"):
            env[f"HUBWATCH_{name}_INTERVAL"] = "0.5"
        bootstrap, prefix = kafka_bootstrap, topic_prefix

        def seen(kind: str) -> list[dict[str, Any]]:
            try:
                return _topic(bootstrap, prefix, kind)
            except subprocess.CalledProcessError:
                return []  # the poller has not created its topics yet

        first = spawn("poll", "all", env=env, log=tmp_path / "poll-1.log")
        await _until(lambda: len(_ids(seen("model.created"))) == 67, "67 uploads")
        await _until(
            lambda: len({m["key"] for m in seen("model.commit")}) == 67,
            "the whole family's commits",
        )
        hub = server.hub
        hub.discussion(CHILD, title="GGUF please?")
        hub.commit(CHILD, "Add GGUF")
        item = hub.view(hub.find(CHILD))  # type: ignore[arg-type]
        hub.edit(CHILD, {"tags": [*item["tags"], "base_model:adapter:org/extra"]})
        github.commit(REPO, "Fix the tokenizer")
        await _until(
            lambda: any(m["data"]["title"] == "Add GGUF" for m in seen("model.commit")),
            "the new commit",
        )

        first.send_signal(signal.SIGKILL)  # no goodbye: state is whatever was on disk
        first.wait(10)
        hub.discussion(CHILD, num=1, status="closed")
        github.issue(REPO, "", number=1, state="closed")
        github.release(REPO, "v0.2.0")
        hub.engage(CHILD, likes=50)

        second = spawn("poll", "all", env=env, log=tmp_path / "poll-2.log")
        try:
            await _until(
                lambda: any(m["data"]["status"] == "closed" for m in seen("model.discussion")),
                "the closed discussion",
            )
            await _until(
                lambda: any(m["data"]["tag_name"] == "v0.2.0" for m in seen("github.release")),
                "the new release",
            )
            await _until(
                lambda: any(m["data"]["state"] == "closed" for m in seen("github.issue")),
                "the closed issue",
            )
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0, (tmp_path / "poll-2.log").read_text()[-3000:]
        assert sum(f.count for f in server.faults) == 0  # the whole fault script was served

    every = {
        kind: seen(kind)
        for kind in (
            "model.created",
            "model.updated",
            "model.commit",
            "model.discussion",
            "model.snapshot",
            "github.commit",
            "github.issue",
            "github.release",
            "github.repo",
        )
    }
    # Nothing missed.
    assert len(_ids(every["model.created"])) == 67
    commits = {(m["key"], m["data"]["commit_id"]) for m in every["model.commit"]}
    expected = {(v["id"], c["id"]) for v in hub.released_views() for c in hub.commits(v["id"])}
    assert commits == expected
    assert [(m["data"]["num"], m["data"]["status"]) for m in _dedup(every["model.discussion"])] == [
        (1, "open"),
        (1, "closed"),
    ]
    [update] = _dedup(every["model.updated"])
    assert update["key"] == CHILD and "tags" in update["data"]["changed"]
    assert {m["data"]["sha"] for m in every["github.commit"]} == {
        c["sha"] for c in github.repos[REPO].commits
    }
    assert {m["data"]["tag_name"] for m in every["github.release"]} == {"v0.1.0", "v0.2.0"}
    assert any(m["key"] == CHILD and m["data"]["likes"] == 53 for m in every["model.snapshot"])
    # Once: a repeat is only ever the same event id again (a re-poll after SIGKILL), and
    # never of something already reported before the last saved state.
    for kind, messages in every.items():
        assert len(messages) - len(_ids(messages)) <= 67, kind
    # In order per key: each key's commits by time, GitHub issues by updated_at.
    for kind, field in (
        ("model.commit", "committed_at"),
        ("github.commit", "committed_at"),
        ("github.issue", "updated_at"),
    ):
        by_key: dict[str, list[str]] = defaultdict(list)
        for m in _dedup(every[kind]):
            by_key[m["key"]].append(m["data"][field] or "")
        for key, times in by_key.items():
            assert times == sorted(times), (kind, key)


def _dedup(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for m in messages:
        if m["event_id"] not in seen:
            seen.add(m["event_id"])
            out.append(m)
    return out
