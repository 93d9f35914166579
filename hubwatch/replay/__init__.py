"""A local double of the Hub's and GitHub's HTTP APIs for tests, demos and benchmarks."""

from hubwatch.replay.fixture import (
    FIXTURE_NAME,
    api_item_from_client_metadata,
    default_fixture,
    load_fixture_csv,
    load_jsonl,
)
from hubwatch.replay.generate import RELATION_MIX, GeneratedSource
from hubwatch.replay.server import Fault, ReplayServer
from hubwatch.replay.setup import ReplayOptions, build_replay
from hubwatch.replay.world import GithubWorld, HubWorld, ListSource

__all__ = [
    "FIXTURE_NAME",
    "RELATION_MIX",
    "Fault",
    "GeneratedSource",
    "GithubWorld",
    "HubWorld",
    "ListSource",
    "ReplayOptions",
    "ReplayServer",
    "api_item_from_client_metadata",
    "build_replay",
    "default_fixture",
    "load_fixture_csv",
    "load_jsonl",
]
