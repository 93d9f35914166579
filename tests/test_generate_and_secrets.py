"""The Hub-sized generator's lineage, and tokens that never leak."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from hubwatch.replay import (
    RELATION_MIX,
    Fault,
    GeneratedSource,
    GithubWorld,
    HubWorld,
    ReplayServer,
)
from processors.lineage import lineage_edges
from producers.hub import model_created_from_api
from tests.conftest import hubwatch, kcat


def test_generated_lineage_follows_the_hub() -> None:
    source = GeneratedSource(200_000, seed=7)
    relations = Counter(source.relation[i] for i in range(source.n) if source.parent[i] >= 0)
    total = sum(relations.values())
    assert 0.25 < total / source.n < 0.31  # ~28 % of Hub models name a base
    names = ("", "adapter", "finetune", "quantized", "merge")
    for name, share in RELATION_MIX:
        assert abs(relations[names.index(name)] / total - share) < 0.01, name
    quantized = {i for i in range(source.n) if source.relation[i] == 3}
    parents = {source.parent[i] for i in range(source.n)} | {
        source.second_parent[i] for i in range(source.n)
    }
    assert not quantized & parents  # quantized models are leaves
    # Items carry the relation where hubwatch reads it, and ids resolve back.
    for index in (1, 99_999, 199_999):
        item = source.item(index)
        assert source.index_of(item["id"]) == index
        edges = lineage_edges(model_created_from_api(item, _now()))
        if source.parent[index] >= 0:
            assert {e.relation for e in edges} == {names[source.relation[index]]}
            assert edges[0].base_model_id == source.repo_id(source.parent[index])
        else:
            assert edges == []


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_tokens_are_used_but_never_shown(
    fixture_items: list[dict[str, Any]], kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    from hubwatch.replay import ListSource

    github = GithubWorld()
    github.add_repo("octo/inference")
    server = ReplayServer(HubWorld(ListSource(fixture_items), start=67), github=github)
    # Failures on the way, so errors and retries get logged too.
    server.faults = [
        Fault("500", count=1, path="/api/models"),
        Fault("reset", count=1, path="/repos/"),
    ]
    hf, gh = "hf_TopSecretToken123", "ghp_TopSecretToken456"
    async with server:
        done = await asyncio.to_thread(
            hubwatch,
            "--log-level",
            "DEBUG",
            "poll",
            "all",
            "--once",
            "--since",
            "all",
            env={
                "HF_TOKEN": hf,
                "GITHUB_TOKEN": gh,
                "HUBWATCH_HUB_URL": server.url,
                "HUBWATCH_GITHUB_URL": server.url,
                "HUBWATCH_GITHUB_REPOS": "octo/inference",
                "HUBWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "HUBWATCH_TOPIC_PREFIX": topic_prefix,
                "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
            },
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert server.authorized > 0  # the tokens were sent...
    shown = done.stdout + done.stderr
    for kind in ("model.created", "model.commit", "github.commit", "deadletter"):
        with contextlib.suppress(subprocess.CalledProcessError):  # a topic not created yet
            shown += str(kcat(kafka_bootstrap, f"{topic_prefix}{kind}"))
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            shown += path.read_bytes().decode("utf-8", "replace")
    assert hf not in shown and gh not in shown  # ...and appear nowhere
    assert "hub.uploads: published 67" in done.stdout
