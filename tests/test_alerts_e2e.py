"""Alerts end to end on the real stack: the replay releases derivatives, the processors
(embedded, and faust on Kafka) fire the rules, and a real HTTP receiver gets the alerts,
each once, through a receiver outage and a processor killed with SIGKILL."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hubwatch.clickhouse import connect
from hubwatch.replay import ReplayServer
from tests.alerting import (
    ABLITERATED,
    BASE,
    INSTRUCT,
    TEMPLATE,
    Receiver,
    quantization,
    rules_yaml,
)
from tests.conftest import spawn, spawn_embedded_replay, terminate, wait_until, while_alive

QUANT = "someone/Mistral-Small-abliterated-GGUF"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.down()


def _template(items: list[dict[str, Any]]) -> dict[str, Any]:
    return next(i for i in items if i["id"] == TEMPLATE)


def _alerts(receiver: Receiver, rule: str) -> list[dict[str, Any]]:
    return [b for b in receiver.bodies("/hook") if b["rule"] == rule]


def _check_single(alert: dict[str, Any], model: str) -> None:
    assert alert["model_id"] == model
    assert alert["base_model"] == INSTRUCT  # the watched base, two levels up
    assert alert["relation"] == "quantized"
    assert alert["link"] == f"https://huggingface.co/{model}"
    assert alert["models"] == [model] and alert["count"] == 1


def test_embedded_run_alerts_once_and_groups_a_burst(
    fixture_items: list[dict[str, Any]], receiver: Receiver, tmp_path: Path
) -> None:
    """`hubwatch run --replay`: a quantization two levels below the watched base is one
    alert with the right model, base, relation and link; six quantizations of the root in
    a burst are one grouped alert; the terminal shows them; a restart sends nothing again."""
    template = _template(fixture_items)
    burst = [quantization(template, f"burst/q{i}-GGUF", BASE) for i in range(6)]
    extra = tmp_path / "extra.jsonl"
    extra.write_text(
        "\n".join(json.dumps(i) for i in [quantization(template, QUANT, ABLITERATED), *burst])
        + "\n"
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_yaml(receiver.url))
    env = {"HUBWATCH_STATE_DIR": str(tmp_path / "state"), "HUBWATCH_ALERT_RULES": str(rules)}
    log = tmp_path / "run.log"
    process, url = spawn_embedded_replay("--replay-extra", str(extra), env=env, log=log)
    try:
        wait_until(
            while_alive(process, log, lambda: _alerts(receiver, "quant-burst-of-base")),
            "the grouped alert",
            timeout=180,
            show=lambda: receiver.bodies(),
        )
        single = _alerts(receiver, "quants-below-instruct")
        assert len(single) == 1, single
        _check_single(single[0], QUANT)
        (group,) = _alerts(receiver, "quant-burst-of-base")
        assert group["count"] == 6 and sorted(group["models"]) == sorted(b["id"] for b in burst)
        assert group["base_model"] == BASE and group["relation"] == "quantized"
        wait_until(lambda: "alert quants-below-instruct" in log.read_text(), "the terminal's line")
        ch = connect(url, database="hubwatch")
        wait_until(
            lambda: (
                ch.query(
                    "SELECT countIf(state = 'delivered') FROM alerts FINAL"
                    " WHERE target = 'receiver'"
                ).result_rows[0][0]
                == 2
            ),
            "both deliveries recorded",
        )
        rows = ch.query(
            "SELECT rule, model_id, base_model, relation, link, count, delivered_at IS NOT NULL"
            " FROM alerts FINAL WHERE target = 'receiver' ORDER BY rule"
        ).result_rows
        ch.close()
        assert rows[1][:4] == ("quants-below-instruct", QUANT, INSTRUCT, "quantized")
        assert rows[0][0] == "quant-burst-of-base" and rows[0][5] == 6 and rows[0][6]
    finally:
        terminate(process)
    assert process.returncode == 0, log.read_text()[-2000:]
    # Started again on the same state: the same events are read back, nothing fires again.
    before = len(receiver.received)
    log2 = tmp_path / "run2.log"
    again, _ = spawn_embedded_replay("--replay-extra", str(extra), env=env, log=log2)
    try:
        wait_until(while_alive(again, log2, lambda: "ClickHouse at" in log2.read_text()), "start")
        time.sleep(8)  # several poll rounds: time for a duplicate to show up
    finally:
        terminate(again)
    assert len(receiver.received) == before, receiver.received[before:]


def test_embedded_alerts_outlive_a_receiver_outage_and_a_restart(
    fixture_items: list[dict[str, Any]], receiver: Receiver, tmp_path: Path
) -> None:
    """Embedded, the alerts table is the outbox: alerts fired while the receiver is down
    stay queued through a restart of `hubwatch run` and arrive, each once, when it is back
    a minute later."""
    template = _template(fixture_items)
    burst = [quantization(template, f"burst/q{i}-GGUF", BASE) for i in range(4)]
    extra = tmp_path / "extra.jsonl"
    extra.write_text(
        "\n".join(json.dumps(i) for i in [quantization(template, QUANT, ABLITERATED), *burst])
        + "\n"
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_yaml(receiver.url))
    env = {
        "HUBWATCH_STATE_DIR": str(tmp_path / "state"),
        "HUBWATCH_ALERT_RULES": str(rules),
        "HUBWATCH_ALERT_RETRY_SECONDS": "0.5",
        "HUBWATCH_ALERT_RETRY_MAX_SECONDS": "2",
    }
    receiver.down()
    down_at = time.monotonic()
    log = tmp_path / "run.log"
    process, url = spawn_embedded_replay("--replay-extra", str(extra), env=env, log=log)
    retrying = "SELECT count() FROM alerts FINAL WHERE state = 'queued' AND attempts > 0"
    try:
        wait_until(while_alive(process, log, lambda: "ClickHouse at" in log.read_text()), "up")
        ch = connect(url, database="hubwatch")
        wait_until(
            while_alive(process, log, lambda: ch.query(retrying).result_rows[0][0] == 2),
            "both alerts failing and queued",
            timeout=180,
        )
        ch.close()
    finally:
        terminate(process)
    assert process.returncode == 0, log.read_text()[-2000:]
    log2 = tmp_path / "run2.log"
    again, url = spawn_embedded_replay("--replay-extra", str(extra), env=env, log=log2)
    try:
        wait_until(while_alive(again, log2, lambda: "ClickHouse at" in log2.read_text()), "up")
        time.sleep(max(0.0, 60 - (time.monotonic() - down_at)))
        assert receiver.received == []
        receiver.up()
        wait_until(
            while_alive(again, log2, lambda: len(receiver.received) >= 2),
            "the queued alerts",
            show=lambda: receiver.received,
        )
        time.sleep(5)  # retry periods: a duplicate would have come by now
        (single,) = _alerts(receiver, "quants-below-instruct")
        _check_single(single, QUANT)
        (group,) = _alerts(receiver, "quant-burst-of-base")
        assert group["count"] == 4
        assert len(receiver.received) == 2
    finally:
        terminate(again)


async def _wait(check: Any, what: str, limit: float = 120.0, show: Any = None) -> None:
    """wait_until off the event loop: the replay server answers on it meanwhile."""
    await asyncio.to_thread(wait_until, check, what, limit, show)


async def test_kafka_alerts_survive_a_receiver_outage_and_a_kill(
    processor_env: dict[str, str],
    replay: ReplayServer,
    fixture_items: list[dict[str, Any]],
    receiver: Receiver,
    ch: Any,
    tmp_path: Path,
) -> None:
    """replay -> `hubwatch poll` -> Kafka -> `hubwatch process` (faust) -> the receiver:
    one alert with the right model, base, relation and link; a burst grouped; then the
    receiver is down for a minute while alerts fire, the processor is killed with SIGKILL
    and started again in between, and afterwards every alert has arrived, each once."""
    template = _template(fixture_items)
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_yaml(receiver.url))
    prefix = processor_env["HUBWATCH_TOPIC_PREFIX"]
    env = {
        **processor_env,
        "HUBWATCH_HUB_URL": replay.url,
        "HUBWATCH_HUB_STREAMS": "uploads",
        "HUBWATCH_POLL_INTERVAL": "1",
        "HUBWATCH_ALERT_RULES": str(rules),
        "HUBWATCH_ALERT_RETRY_SECONDS": "0.5",
        "HUBWATCH_ALERT_RETRY_MAX_SECONDS": "2",
        # The restarted processor takes its partitions back at once.
        "HUBWATCH_PROCESSOR_INSTANCE_ID": f"{prefix}alerts",
    }
    process_log, poll_log = tmp_path / "process.log", tmp_path / "poll.log"
    processor = spawn("process", env=env, log=process_log)
    poller = spawn("poll", "hub", "--since", "all", env=env, log=poll_log)
    try:
        replay.hub.release(len(replay.hub))

        def count(sql: str) -> int:
            return int(ch.query(sql).result_rows[0][0])

        await _wait(
            while_alive(processor, process_log, lambda: count("SELECT count() FROM models") >= 67),
            "the fixture's models",
        )
        replay.hub.list_now(quantization(template, QUANT, ABLITERATED))
        await _wait(
            while_alive(processor, process_log, lambda: _alerts(receiver, "quants-below-instruct")),
            "the first alert",
        )
        burst = [quantization(template, f"burst/q{i}-GGUF", BASE) for i in range(6)]
        for item in burst:
            replay.hub.list_now(item)
        await _wait(
            while_alive(processor, process_log, lambda: _alerts(receiver, "quant-burst-of-base")),
            "the grouped alert",
        )
        (group,) = _alerts(receiver, "quant-burst-of-base")
        assert group["count"] == 6 and sorted(group["models"]) == sorted(b["id"] for b in burst)

        # The receiver goes down for a minute; alerts fire meanwhile and fail to deliver.
        receiver.down()
        down_at = time.monotonic()
        late = [f"someone/late-{i}-GGUF" for i in range(3)]
        replay.hub.list_now(quantization(template, late[0], ABLITERATED))
        replay.hub.list_now(quantization(template, late[1], INSTRUCT))
        failed = (
            "SELECT count() FROM alerts FINAL WHERE state = 'queued' AND attempts > 0"
            f" AND model_id IN {tuple(late[:2])}"
        )
        await _wait(while_alive(processor, process_log, lambda: count(failed) == 2), "retries")
        processor.kill()  # SIGKILL: no flush, no commit
        processor.wait()
        processor = spawn("process", env=env, log=tmp_path / "process2.log")
        process_log = tmp_path / "process2.log"
        replay.hub.list_now(quantization(template, late[2], ABLITERATED))
        three = (
            "SELECT count() FROM alerts FINAL WHERE target = 'receiver'"
            f" AND model_id IN {tuple(late)}"
        )
        await _wait(while_alive(processor, process_log, lambda: count(three) == 3), "the third")
        await asyncio.sleep(max(0.0, 60 - (time.monotonic() - down_at)))
        assert not any(m in late for b in receiver.bodies() for m in b["models"])
        receiver.up()

        def singles() -> list[str]:
            return sorted(b["model_id"] for b in _alerts(receiver, "quants-below-instruct"))

        await _wait(
            while_alive(processor, process_log, lambda: len(singles()) >= 4),
            "every alert after the outage",
            show=singles,
        )
        await asyncio.sleep(6)  # three retry periods: a duplicate would have come by now
        assert singles() == sorted([QUANT, *late])
        assert len(_alerts(receiver, "quant-burst-of-base")) == 1
        keys = Counter(receiver.keys())
        assert all(n == 1 for n in keys.values()), keys
        for body in _alerts(receiver, "quants-below-instruct"):
            _check_single(body, body["model_id"])
        delivered = "SELECT countIf(state = 'delivered'), count() FROM alerts FINAL"
        assert ch.query(delivered).result_rows[0] == (5, 5)
    finally:
        terminate(poller)
        terminate(processor)
