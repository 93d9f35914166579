"""The event contract: round trips, deterministic ids, strict decoding."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

import hubwatch
from hubwatch import events
from hubwatch.errors import SchemaError

T0 = datetime(2025, 1, 23, 14, 13, 54, 123000, tzinfo=UTC)
T1 = datetime(2025, 2, 1, 9, 0, tzinfo=UTC)

SAMPLES: dict[str, events.Event] = {
    "model.created": events.ModelCreated(
        "org/model",
        T0,
        T1,
        author="org",
        tags=("a", "b"),
        base_models=("base/m",),
        base_models_relation="finetune",
        parameters=23_572_403_200,
        private=False,
    ),
    "model.updated": events.ModelUpdated(
        "org/model", T1, T1, ("tags",), sha="abc", tags=("base_model:adapter:x/y",)
    ),
    "model.snapshot": events.ModelSnapshot(
        "org/model", T1, downloads=10, likes=2, trending_score=1.5
    ),
    "model.commit": events.ModelCommit("org/model", "9b865ef", T0, title="init", authors=("x",)),
    "model.discussion": events.ModelDiscussion("org/model", 19, "Update", "open", True, T0),
    "model.alias": events.ModelAlias("org/Old-Name", "org/new-name", "redirect", T1),
    "github.commit": events.GithubCommit("org/repo", "abc123", T0, message="fix"),
    "github.issue": events.GithubIssue("org/repo", 7, "bug", "open", False, T0, T1),
    "github.release": events.GithubRelease("org/repo", 42, "v1.0", T0, prerelease=True),
    "github.repo": events.GithubRepoSnapshot("org/repo", T1, stars=5, forks=1, open_issues=0),
}


def test_every_kind_has_a_sample() -> None:
    assert set(SAMPLES) == set(events.event_types())


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_round_trip(kind: str) -> None:
    event = SAMPLES[kind]
    wire = events.encode(event)
    envelope = json.loads(wire)
    assert envelope["kind"] == kind and envelope["key"] == event.key
    assert envelope["event_id"] == event.event_id
    assert events.decode(wire) == event


def test_event_id_depends_on_the_fact_not_the_observation() -> None:
    first = SAMPLES["model.created"]
    again = events.ModelCreated("org/model", T0, datetime.now(UTC), likes=99)
    assert again.event_id == first.event_id  # a re-poll of the same upload
    recreated = events.ModelCreated("org/model", T1, T1)
    assert recreated.event_id != first.event_id  # same name, new repo


def test_discussion_status_change_is_a_new_event() -> None:
    opened = SAMPLES["model.discussion"]
    closed = events.ModelDiscussion("org/model", 19, "Update", "closed", True, T0)
    assert opened.event_id != closed.event_id


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "bad_json"),
        (b"[1, 2]", "bad_envelope"),
        (b'{"kind": "model.deleted", "version": 1, "data": {}}', "unknown_kind"),
        (b'{"kind": "model.created", "version": 99, "data": {}}', "unknown_version"),
        (b'{"kind": "model.created", "version": 1, "data": {"repo_id": "a/b"}}', "missing_field"),
        (
            b'{"kind": "model.created", "version": 1, "data": {"repo_id": 5, '
            b'"created_at": null, "observed_at": "2025-01-01T00:00:00Z"}}',
            "bad_type",
        ),
        (
            b'{"kind": "model.snapshot", "version": 1, "data": {"repo_id": "a/b", '
            b'"observed_at": "2025-01-01T00:00:00Z", "likes": true}}',
            "bad_type",
        ),
        (
            b'{"kind": "model.snapshot", "version": 1, "data": {"repo_id": "a/b", '
            b'"observed_at": "soon"}}',
            "bad_datetime",
        ),
    ],
)
def test_decode_rejects_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(SchemaError) as caught:
        events.decode(raw)
    assert caught.value.reason == reason


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(SchemaError, match="naive_datetime"):
        events.encode(events.ModelSnapshot("a/b", datetime(2025, 1, 1)))  # noqa: DTZ001


def test_topics_are_documented_and_prefixed() -> None:
    specs = events.topics("team.")
    names = [s.name for s in specs]
    assert names[-1] == "team.deadletter"
    assert "team.model.created" in names and len(names) == len(SAMPLES) + 1
    created = next(s for s in specs if s.name == "team.model.created")
    assert created.config() == {
        "cleanup.policy": "compact",
        "retention.ms": "-1",
        "max.message.bytes": str(events.MAX_RECORD_BYTES),
    }
    readme = (__import__("pathlib").Path(__file__).parents[1] / "README.md").read_text()
    for spec in events.topics():
        assert f"`{spec.name}`" in readme, f"{spec.name} is not documented in README.md"


def test_dead_letter_keeps_payload_and_reason() -> None:
    error = SchemaError("bad_type", "likes: expected int")
    letter = events.DeadLetter.of(
        stage="producer.hub", error=error, source="u", key="a/b", payload=b"x" * (300 * 1024)
    )
    assert letter.truncated and letter.payload_bytes == 300 * 1024
    back = events.DeadLetter.from_json(letter.to_json())
    assert back.reason == "bad_type" and back.payload == letter.payload
    assert back.at == letter.at.replace(microsecond=letter.at.microsecond // 1000 * 1000)


@pytest.mark.parametrize(
    "payload",
    [
        bytes(range(1, 32)) * 10_000,  # ~300 KB of control bytes: six bytes each in JSON
        b"\xff\xfe" * 200_000,  # not UTF-8 at all
        "\ud800" * 100_000,  # lone surrogates, which UTF-8 cannot carry
        'é"\\' * 200_000,
        b"",
    ],
    ids=["control-bytes", "binary", "surrogates", "escapes", "empty"],
)
def test_dead_letter_is_bounded_after_encoding(payload: bytes | str) -> None:
    letter = events.DeadLetter.of(
        stage="processor.model.created",
        error=SchemaError("bad_json", "x" * 10_000),
        source="t" * 5_000,
        key="k" * 200_000,  # a hostile key is cut too
        payload=payload,
    )
    encoded = letter.to_json()
    assert len(encoded) <= events.DEAD_LETTER_MAX_BYTES
    size = len(payload if isinstance(payload, bytes) else payload.encode("utf-8", "surrogatepass"))
    assert letter.payload_bytes == size
    assert letter.truncated == (size > 0)
    back = events.DeadLetter.from_json(encoded)
    # The cut letter is stable: reading it back cuts nothing more.
    assert back == dataclasses.replace(letter, at=back.at) and back.to_json() == encoded
    if size:
        # It keeps as much as fits: within one escape of the bound.
        assert len(encoded) > events.DEAD_LETTER_MAX_BYTES - 16


def test_dead_letter_keeps_non_utf8_bytes_as_escapes() -> None:
    letter = events.DeadLetter.of(
        stage="s", error=SchemaError("bad_json"), source="t", key=None, payload=b"ok\xff\x00"
    )
    assert letter.payload == "ok\\xff\x00" and not letter.truncated
    assert letter.payload_bytes == 4


def test_decode_refuses_tombstones_and_mismatched_keys() -> None:
    with pytest.raises(SchemaError) as tombstone:
        events.decode(None)
    assert tombstone.value.reason == "tombstone"
    envelope = json.loads(events.encode(SAMPLES["model.created"]))
    envelope["key"] = "someone/else"
    with pytest.raises(SchemaError) as mismatch:
        events.decode(json.dumps(envelope).encode())
    assert mismatch.value.reason == "key_mismatch"


def test_public_surface_is_complete_and_importable() -> None:
    for name in hubwatch.__all__:
        assert hasattr(hubwatch, name), name
    for name in events.__all__:
        assert hasattr(events, name), name
