"""The producers under outages and odd input, on the real stack: Kafka stopped under a
running poller, one poller's failed delivery beside another's good one, a repo the Hub
answers 401 for, optional fields of odd shapes, and a model.created too large for a record."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from prometheus_client import REGISTRY

from hubwatch.errors import SinkError
from hubwatch.events import (
    MAX_RECORD_BYTES,
    DeadLetter,
    ModelSnapshot,
    encode,
    topics,
)
from hubwatch.replay import HubWorld, ListSource, ReplayServer
from producers._http import make_client
from producers.checkpoint import CheckpointStore
from producers.github import commit_from_api, issue_from_api, release_from_api
from producers.hub import (
    model_commit_from_api,
    model_created_from_api,
    model_discussion_from_api,
    model_snapshot_from_api,
)
from producers.hub_engagement import EngagementPoller
from producers.hub_uploads import HubUploadsPoller
from producers.publish import KafkaPublisher, QueuePublisher, sink_error
from producers.state import StateStore
from producers.topics import ensure_topics
from producers.tracking import SnapshotSchedule, Tracker
from tests.conftest import ROOT, StackPart, kcat, poll_draining, spawn, wait_until

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def _until(check: Callable[[], bool], what: str, limit: float = 120.0) -> None:
    """wait_until off the event loop, so the in-process replay server keeps answering."""
    await asyncio.to_thread(wait_until, check, what, limit)


def _on_topic(bootstrap: str, topic: str) -> dict[str, list[dict[str, Any]]]:
    by_key: dict[str, list[dict[str, Any]]] = {}
    for record in kcat(bootstrap, topic):
        by_key.setdefault(record["key"], []).append(record)
    return by_key


def _released_ids(replay: ReplayServer) -> set[str]:
    return {v["id"] for v in replay.hub.released_views() if isinstance(v, dict)}


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- (a) Kafka stopped under a running poller ---------------------------------------------


def _seen(bootstrap: str, topic: str) -> set[str]:
    """Keys on the topic so far; none while the topic or the broker is not there yet."""
    try:
        return set(_on_topic(bootstrap, topic))
    except subprocess.CalledProcessError:
        return set()


async def test_poller_waits_out_a_kafka_outage(
    own_kafka: StackPart, replay: ReplayServer, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}model.created"
    env = {
        "HUBWATCH_KAFKA_BOOTSTRAP": own_kafka.bootstrap,
        "HUBWATCH_HUB_URL": replay.url,
        "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
        "HUBWATCH_TOPIC_PREFIX": topic_prefix,
        "HUBWATCH_HUB_STREAMS": "uploads",
        "HUBWATCH_POLL_INTERVAL": "1",
        "HUBWATCH_PAGE_LIMIT": "20",
        # Shorter than the defaults (40 s, 30 s) so the test is shorter; the outage below
        # still lasts several times longer than both.
        "HUBWATCH_KAFKA_REQUEST_TIMEOUT": "5",
        "HUBWATCH_KAFKA_DELIVERY_TIMEOUT": "5",
        "HUBWATCH_SINK_RETRY_MAX": "2",
    }
    log = tmp_path / "poll.log"
    replay.hub.release(20)
    poller = spawn("poll", "hub", "--since", "all", env=env, log=log)
    try:
        await _until(
            lambda: len(_seen(own_kafka.bootstrap, topic)) == 20,
            "the first 20 uploads on the topic",
        )
        before_outage = len(log.read_text().splitlines())

        await asyncio.to_thread(own_kafka.down)
        for _ in range(4):  # uploads keep arriving while Kafka is away (~30 s)
            replay.hub.release(5)
            await asyncio.sleep(7.5)
        assert poller.poll() is None, log.read_text()
        await asyncio.to_thread(own_kafka.up)
        replay.hub.release(len(replay.hub))

        released = _released_ids(replay)
        assert len(released) == 67
        await _until(
            lambda: _seen(own_kafka.bootstrap, topic) == released,
            "every released model on the topic after the outage",
            limit=180,
        )
        assert poller.poll() is None, log.read_text()
    finally:
        poller.send_signal(signal.SIGTERM)
        try:
            poller.wait(60)
        except subprocess.TimeoutExpired:
            poller.kill()
    text = log.read_text()
    assert "Traceback" not in text, text
    about_outage = [
        line
        for line in text.splitlines()[before_outage:]
        if re.search(r"kafka|error|warning", line, re.IGNORECASE)
    ]
    assert 1 <= len(about_outage) <= 4, text
    assert poller.returncode == 0, text


# -- (b) each poller waits for its own deliveries ------------------------------------------


async def _create_small_created_topic(bootstrap: str, prefix: str) -> None:
    """model.created taking records of 300 bytes at most: every model the uploads poller
    sends is refused by the broker, while other topics take theirs."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(f"{prefix}model.created", 1, 1, topic_configs={"max.message.bytes": "300"})]
        )
    finally:
        await admin.close()
    await ensure_topics(bootstrap, topics(prefix))


async def test_each_poller_flushes_only_its_own_deliveries(
    kafka_bootstrap: str, topic_prefix: str, replay: ReplayServer, tmp_path: Path
) -> None:
    await _create_small_created_topic(kafka_bootstrap, topic_prefix)
    replay.hub.release(67)
    created = model_created_from_api(
        {"id": "big/model", "createdAt": "2025-01-01T00:00:00.000Z", "tags": ["x" * 400]}, NOW
    )
    snapshot = ModelSnapshot(repo_id="fine/model", observed_at=NOW, likes=1)
    store = StateStore(tmp_path / "producers.sqlite")
    checkpoints = CheckpointStore(tmp_path / "hub_uploads.json")
    async with (
        KafkaPublisher(kafka_bootstrap, topic_prefix=topic_prefix) as publisher,
        make_client(base_url=replay.url) as client,
    ):
        # One poller's refused record, then another's good one: each flush answers for its
        # own, whichever order they come in.
        refused, fine = publisher.session(), publisher.session()
        await refused.publish(created)
        await fine.publish(snapshot)
        await fine.flush()
        with pytest.raises(SinkError) as caught:
            await refused.flush()
        assert not caught.value.retriable  # the broker will never take that record

        # Two real pollers over one publisher, concurrently: the uploads poller's models are
        # all refused, the engagement poller's snapshots all land. (The models are tracked
        # already, as by an earlier round, so the engagement stream has none to report.)
        tracker = Tracker(store)
        tracker.track_all(model_created_from_api(v, NOW) for v in replay.hub.released_views())
        uploads = HubUploadsPoller(
            client,
            publisher.session(),
            checkpoints,
            overlap=timedelta(minutes=2),
            initial_lookback=None,
            page_limit=20,
        )
        engagement = EngagementPoller(client, publisher.session(), tracker, requests_per_round=1)
        results = await asyncio.gather(
            uploads.poll_once(), engagement.poll_once(), return_exceptions=True
        )
        assert isinstance(results[0], SinkError), results
        assert results[1] == 67, results
        # The publisher still delivers after the refusals (a producer aiokafka gave up on
        # is replaced).
        again = publisher.session()
        await again.publish(snapshot)
        await again.flush()
    store.close()

    assert not checkpoints.path.exists()  # the uploads poller saved nothing past its refusals
    snapshots = _on_topic(kafka_bootstrap, f"{topic_prefix}model.snapshot")
    assert set(snapshots) == _released_ids(replay) | {"fine/model"}
    assert _on_topic(kafka_bootstrap, f"{topic_prefix}model.created") == {}


# -- (c) 401 for a gated, private or deleted repo ------------------------------------------


async def test_a_repo_answering_401_is_gone_and_the_round_goes_on(
    replay: ReplayServer, tmp_path: Path
) -> None:
    replay.hub.release(67)
    async with make_client(base_url=replay.url) as anonymous:
        trending = await anonymous.get("/api/models", params={"sort": "trendingScore", "limit": 1})
    top = trending.json()[0]["id"]  # the one model the bulk call below snapshots
    ids = sorted(_released_ids(replay))
    gated, private = [i for i in ids if i != top][10:12]
    replay.hub.restrict(gated, "gated")
    replay.hub.restrict(private, "private")

    # The replay answers as the Hub does: 401 without a token, 404 or 403 with one.
    async with make_client(base_url=replay.url) as anonymous:
        refused = await anonymous.get(f"/api/models/{gated}")
        never = await anonymous.get("/api/models/nobody/nothing")
    async with make_client(base_url=replay.url, token="hf_test") as signed_in:
        forbidden = await signed_in.get(f"/api/models/{gated}")
        missing = await signed_in.get(f"/api/models/{private}")
    assert (refused.status_code, refused.headers["X-Error-Code"]) == (401, "GatedRepo")
    assert (never.status_code, never.headers["X-Error-Code"]) == (401, "RepoNotFound")
    assert (forbidden.status_code, forbidden.headers["X-Error-Code"]) == (403, "GatedRepo")
    assert (missing.status_code, missing.headers["X-Error-Code"]) == (404, "RepoNotFound")
    replay.refused.clear()

    clock = [NOW.timestamp()]
    store = StateStore(tmp_path / "producers.sqlite")
    every = 600.0  # every followed model due again each simulated hour
    schedule = SnapshotSchedule(
        new_every=every,
        hot_every=every,
        warm_every=every,
        recent_every=every,
        tail_every=every,
        default_every=every,
    )
    tracker = Tracker(store, schedule=schedule, clock=lambda: clock[0])
    queue: asyncio.Queue[Any] = asyncio.Queue()
    gone_before = _sample("hubwatch_source_gone_total", stream="hub.engagement", status="401")
    async with make_client(base_url=replay.url) as client:
        uploads = HubUploadsPoller(
            client,
            QueuePublisher(queue),
            CheckpointStore(tmp_path / "c.json"),
            overlap=timedelta(minutes=2),
            initial_lookback=None,
            tracker=tracker,
        )
        assert len(await poll_draining(uploads, queue)) == 67
        engagement = EngagementPoller(
            client,
            QueuePublisher(queue),
            tracker,
            requests_per_round=100,
            bulk_every=10**9,
            bulk_limit=1,  # one trending model from the bulk call; the rest one by one
            clock=lambda: clock[0],
        )
        rounds = []
        for _ in range(2):
            clock[0] += 3600
            rounds.append(await poll_draining(engagement, queue))
    store.close()

    for out in rounds:
        snapped = {e.repo_id for e in out if isinstance(e, ModelSnapshot)}
        assert snapped == set(ids) - {gated, private}
        assert not [e for e in out if isinstance(e, DeadLetter)]
    # Asked once, then left for a day (then two, four… up to a month).
    assert replay.refused == {gated: 1, private: 1}
    after = _sample("hubwatch_source_gone_total", stream="hub.engagement", status="401")
    assert after - gone_before == 2


# -- (d) odd optional fields ---------------------------------------------------------------

_ODD = "2025-06-01T00:00:0{}.000Z"
ODD_MODELS: list[tuple[dict[str, Any], str]] = [
    (
        {"id": "odd/card-dict", "cardData": {"base_model": {"name": "a/b"}}},
        "cardData.base_model",
    ),
    ({"id": "odd/card-number", "cardData": {"base_model": 7}}, "cardData.base_model"),
    (
        {"id": "odd/relation", "cardData": {"base_model": "a/b", "base_model_relation": "fork"}},
        "cardData.base_model_relation",
    ),
    (
        {"id": "odd/size", "safetensors": {"parameters": {"BF16": 7}, "total": "7B"}},
        "safetensors.total",
    ),
    ({"id": "odd/likes", "likes": "many", "tags": ["fine", 3]}, "likes"),
]


async def test_odd_optional_fields_drop_the_field_not_the_model(
    kafka_bootstrap: str, topic_prefix: str, fixture_items: list[dict[str, Any]], tmp_path: Path
) -> None:
    odd = [{**item, "createdAt": _ODD.format(n)} for n, (item, _) in enumerate(ODD_MODELS)]
    counted = {field: _sample_dropped(field) for _, field in ODD_MODELS}
    world = HubWorld(ListSource(fixture_items + odd), start=len(fixture_items) + len(odd))
    await ensure_topics(kafka_bootstrap, topics(topic_prefix))
    async with (
        ReplayServer(world) as server,
        make_client(base_url=server.url) as client,
        KafkaPublisher(kafka_bootstrap, topic_prefix=topic_prefix) as publisher,
    ):
        poller = HubUploadsPoller(
            client,
            publisher,
            CheckpointStore(tmp_path / "c.json"),
            overlap=timedelta(minutes=2),
            initial_lookback=None,
        )
        assert await poller.poll_once() == 67 + len(odd)

    on_topic = _on_topic(kafka_bootstrap, f"{topic_prefix}model.created")
    assert len(on_topic) == 67 + len(odd)
    assert _on_topic(kafka_bootstrap, f"{topic_prefix}deadletter") == {}
    for item, field in ODD_MODELS:
        (record,) = on_topic[item["id"]]
        assert field in record["data"]["dropped"], record
        assert _sample_dropped(field) > counted[field]
    data = {key: records[0]["data"] for key, records in on_topic.items()}
    # What was well-formed beside the odd part is kept.
    assert data["odd/relation"]["card_base_models"] == ["a/b"]
    assert data["odd/relation"]["card_base_model_relation"] is None
    assert data["odd/size"]["parameters"] is None
    assert data["odd/likes"]["tags"] == ["fine"] and data["odd/likes"]["likes"] is None
    assert not any(d["dropped"] for key, d in data.items() if not key.startswith("odd/"))


def test_odd_base_models_drop_the_entry_not_the_model() -> None:
    # baseModels comes from /api/models/{id} only (the listing refuses it), so not via a poll.
    item = {"id": "odd/bases", "baseModels": {"models": [{"id": "a/b"}, 5], "relation": "finetune"}}
    event = model_created_from_api(item, datetime.now(UTC))
    assert event.base_models == ("a/b",) and event.base_models_relation == "finetune"
    assert "baseModels.models" in event.dropped


def _sample_dropped(field: str) -> float:
    return _sample("hubwatch_fields_dropped_total", kind="model.created", field=field)


@pytest.mark.parametrize(
    ("convert", "item", "dropped"),
    [
        (
            lambda i: model_snapshot_from_api(i, NOW),
            {"id": "a/b", "downloads": -1, "likes": True, "trendingScore": "hot"},
            {"downloads": None, "likes": None, "trending_score": None},
        ),
        (
            lambda i: model_commit_from_api("a/b", i),
            {"id": "c1", "date": "soon", "title": 5, "authors": [{"user": 1}, {"user": "u"}]},
            {"committed_at": None, "title": "", "authors": ("u",)},
        ),
        (
            lambda i: model_discussion_from_api("a/b", i),
            {"num": 3, "title": None, "status": ["open"], "createdAt": 9, "author": "bob"},
            {"status": "open", "created_at": None, "author": None},
        ),
        (
            lambda i: commit_from_api("o/r", i),
            {"sha": "s1", "commit": "not an object", "author": {"login": 5}},
            {"committed_at": None, "message": "", "author": None},
        ),
        (
            lambda i: issue_from_api("o/r", i),
            {"number": 4, "state": {"x": 1}, "updated_at": "later", "user": "eve"},
            {"state": "open", "updated_at": None, "author": None},
        ),
        (
            lambda i: release_from_api("o/r", i),
            {"id": 1, "tag_name": "v1", "published_at": 5, "name": ["v1"]},
            {"published_at": None, "name": ""},
        ),
    ],
)
def test_every_converter_keeps_an_item_with_odd_optional_fields(
    convert: Callable[[Any], Any], item: dict[str, Any], dropped: dict[str, Any]
) -> None:
    event = convert(item)
    assert {name: getattr(event, name) for name in dropped} == dropped


# -- (e) a model.created too large for a record ---------------------------------------------


async def test_a_huge_file_list_is_trimmed_and_detection_goes_on(
    kafka_bootstrap: str, topic_prefix: str, fixture_items: list[dict[str, Any]], tmp_path: Path
) -> None:
    shards = [f"weights/layer-{n:05d}/model-{n:05d}-of-20000.safetensors" for n in range(19_990)]
    top = ["config.json", "adapter_config.json", "README.md", "model.gguf"]
    huge = {
        "id": "huge/file-list",
        "createdAt": "2025-06-01T00:00:00.000Z",
        "cardData": {"base_model": "mistralai/Mistral-Small-24B-Base-2501"},
        "tags": ["base_model:mistralai/Mistral-Small-24B-Base-2501"],
        "siblings": [{"rfilename": name} for name in shards + top],
    }
    assert len(encode(model_created_from_api(huge, NOW))) > MAX_RECORD_BYTES
    after = {"id": "next/upload", "createdAt": "2025-06-01T00:01:00.000Z", "tags": []}
    world = HubWorld(ListSource([*fixture_items, huge, after]), start=len(fixture_items) + 1)
    trimmed_before = _sample(
        "hubwatch_records_trimmed_total", kind="model.created", field="siblings"
    )
    await ensure_topics(kafka_bootstrap, topics(topic_prefix))
    async with (
        ReplayServer(world) as server,
        make_client(base_url=server.url) as client,
        KafkaPublisher(kafka_bootstrap, topic_prefix=topic_prefix) as publisher,
    ):
        poller = HubUploadsPoller(
            client,
            publisher,
            CheckpointStore(tmp_path / "c.json"),
            overlap=timedelta(minutes=2),
            initial_lookback=None,
            page_limit=20,
        )
        assert await poller.poll_once() == 68
        world.release(1)
        assert await poller.poll_once() == 1

    on_topic = _on_topic(kafka_bootstrap, f"{topic_prefix}model.created")
    assert "next/upload" in on_topic and len(on_topic) == 69
    (record,) = on_topic["huge/file-list"]
    data = record["data"]
    assert "siblings:trimmed" in data["dropped"]
    assert 0 < len(data["siblings"]) < len(huge["siblings"])
    assert set(top) <= set(data["siblings"])  # the top level, which derivation reads, stays
    assert data["card_base_models"] == ["mistralai/Mistral-Small-24B-Base-2501"]
    assert data["tags"] == huge["tags"]
    compact = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
    assert len(compact) <= MAX_RECORD_BYTES
    after_count = _sample("hubwatch_records_trimmed_total", kind="model.created", field="siblings")
    assert after_count == trimmed_before + 1


def test_the_broker_the_topics_and_the_producer_share_one_record_limit() -> None:
    properties = (ROOT / "deploy" / "kafka" / "server.properties.in").read_text()
    assert "message.max.bytes=@MAX_RECORD_BYTES@" in properties
    compose = (ROOT / "docker-compose.yml").read_text()
    assert f"KAFKA_MESSAGE_MAX_BYTES: {MAX_RECORD_BYTES}" in compose
    assert all(s.config()["max.message.bytes"] == str(MAX_RECORD_BYTES) for s in topics())


@pytest.mark.parametrize(
    ("error", "retriable"),
    [
        (kafka_errors.KafkaTimeoutError(), True),
        (kafka_errors.KafkaConnectionError(), True),
        (kafka_errors.NodeNotReadyError(), True),
        (kafka_errors.RequestTimedOutError(), True),
        (kafka_errors.NotLeaderForPartitionError(), True),
        (kafka_errors.OutOfOrderSequenceNumber(), True),  # a fresh producer gets past it
        (kafka_errors.ProducerClosed(), True),
        (asyncio.CancelledError(), True),
        (kafka_errors.MessageSizeTooLargeError(), False),
        (kafka_errors.TopicAuthorizationFailedError(), False),
        (kafka_errors.InvalidTopicError(), False),
    ],
)
def test_every_kafka_error_on_the_send_path_is_a_sink_error(
    error: BaseException, retriable: bool
) -> None:
    mapped = sink_error(error)
    assert isinstance(mapped, SinkError) and mapped.retriable is retriable
    assert type(error).__name__ in str(mapped) or isinstance(error, asyncio.CancelledError)


async def test_an_event_that_cannot_be_trimmed_to_fit_is_dead_lettered(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    # 40,000 card base models: derivation needs them, so nothing may cut them.
    bases = [f"org/base-model-number-{n:06d}" for n in range(40_000)]
    event = model_created_from_api(
        {
            "id": "too/big",
            "createdAt": "2025-06-01T00:00:00.000Z",
            "cardData": {"base_model": bases},
        },
        NOW,
    )
    fine = ModelSnapshot(repo_id="fine/model", observed_at=NOW, likes=1)
    await ensure_topics(kafka_bootstrap, topics(topic_prefix))
    async with KafkaPublisher(kafka_bootstrap, topic_prefix=topic_prefix) as publisher:
        session = publisher.session()
        await session.publish(event)
        await session.publish(fine)
        await session.flush()  # the round goes on
    (letter,) = kcat(kafka_bootstrap, f"{topic_prefix}deadletter")
    assert (letter["stage"], letter["reason"], letter["key"]) == (
        "producer.publish",
        "record_too_large",
        "too/big",
    )
    assert letter["payload_bytes"] > MAX_RECORD_BYTES
    assert _on_topic(kafka_bootstrap, f"{topic_prefix}model.snapshot").keys() == {"fine/model"}
    assert _on_topic(kafka_bootstrap, f"{topic_prefix}model.created") == {}
