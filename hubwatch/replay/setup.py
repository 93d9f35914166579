"""Build a replay server from command-line style options (``hubwatch replay``, ``run``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hubwatch.replay.fixture import default_fixture, load_fixture_csv, load_jsonl
from hubwatch.replay.generate import GeneratedSource
from hubwatch.replay.server import ReplayServer
from hubwatch.replay.world import GithubWorld, HubWorld, ListSource, ModelSource

__all__ = ["ReplayOptions", "build_replay"]


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    fixture: str | None = None
    "CSV crawl to replay (default: the shared Mistral tree)."
    extra: str | None = None
    "A JSONL file of further raw API items (malformed ones too)."
    generate: int = 0
    "Replay a generated catalog of this many models instead of a fixture."
    seed: int = 0
    start: int = 0
    "Models released at start."
    rate: float = 20.0
    "Models released per second."
    activity_rate: float = 0.0
    "Likes, downloads, commits, discussions (and GitHub activity) per second."
    github_repos: tuple[str, ...] = ()
    api_quota: int = 1000
    github_quota: int = 5000
    webhook_url: str | None = None
    webhook_secret: str | None = None


def build_replay(options: ReplayOptions, *, port: int = 0, progress: Any = None) -> ReplayServer:
    source: ModelSource
    if options.generate:
        source = GeneratedSource(options.generate, seed=options.seed, progress=progress)
    else:
        items: list[Any] = load_fixture_csv(
            Path(options.fixture) if options.fixture else default_fixture()
        )
        if options.extra:
            items += load_jsonl(Path(options.extra))
        source = ListSource(items)
    hub = HubWorld(
        source,
        start=options.start,
        rate=options.rate,
        activity_rate=options.activity_rate,
        seed=options.seed,
    )
    github = GithubWorld(seed=options.seed, activity_rate=options.activity_rate / 10)
    for repo in options.github_repos:
        github.add_repo(repo)
    return ReplayServer(
        hub,
        github=github,
        port=port,
        api_quota=options.api_quota,
        github_quota=options.github_quota,
        webhook_url=options.webhook_url,
        webhook_secret=options.webhook_secret,
    )
