"""Alerts across redelivery and storage faults: an input taken again after a crash fires
the alert it already fired; a delivery whose bookkeeping write fails is still made and
recorded once ClickHouse answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hubwatch.alerts.alert import AlertRow
from hubwatch.alerts.evaluate import AlertEvaluator
from hubwatch.alerts.outbox import Deliverer
from hubwatch.alerts.rules import Target, parse_rules
from hubwatch.alerts.store import load_deliveries, load_evaluator
from hubwatch.clickhouse import connect
from hubwatch.events import ModelSnapshot
from processors.engagement import EngagementRow, RollingEngagement
from processors.families import FamilyForest
from processors.pipeline import plan_batch
from processors.sinks import ClickHouseWriter, plan_rows
from producers.hub import model_created_from_api, model_updated
from tests.alerting import (
    ABLITERATED,
    INSTRUCT,
    TEMPLATE,
    Receiver,
    quantization,
    quantization_alert,
)
from tests.conftest import free_port, spawn, terminate, wait_until, while_alive

NOW = datetime.now(UTC)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.down()


def test_a_repeat_rule_fires_a_redelivered_input_under_the_alert_id_it_had(
    fixture_items: list[dict[str, Any]],
) -> None:
    """A processor killed after writing a batch but before acknowledging it takes the batch
    again from a restored evaluator, later: a ``repeat`` rule must fire the same alert ids
    (the outbox skips them), not new ones that reach the receiver twice."""
    template = next(i for i in fixture_items if i["id"] == TEMPLATE)
    deep = quantization(template, "x/deep-GGUF", ABLITERATED)
    rules = parse_rules(f"""
rules:
  - name: every-quant
    repeat: true
    match: {{base_model: {INSTRUCT}, relation: quantized}}
  - name: every-like
    repeat: true
    match: {{base_model: {INSTRUCT}, engagement: {{likes_1h: 50}}}}
""")
    snaps = [
        ModelSnapshot("x/deep-GGUF", NOW, downloads=0, likes=0),
        ModelSnapshot("x/deep-GGUF", NOW + timedelta(minutes=40), downloads=9, likes=80),
    ]
    runs = []
    for minutes in (0, 7):  # the first run, then its replacement taking the input again
        evaluator = AlertEvaluator(rules, clock=lambda m=minutes: NOW + timedelta(minutes=m))
        fired = plan_batch(
            [*(model_created_from_api(i, NOW) for i in [*fixture_items, deep]), *snaps],
            forest=FamilyForest(),
            engagement=RollingEngagement({}, prune_every=1000),
            alerts=evaluator,
        ).fired
        runs.append(sorted((a.rule, a.alert_id) for a in fired if a.model_id == "x/deep-GGUF"))
    assert [r for r, _ in runs[0]] == ["every-like", "every-quant"]
    assert runs[1] == runs[0]


async def test_an_alert_fired_again_after_its_delivery_stays_delivered(
    fixture_items: list[dict[str, Any]], receiver: Receiver, clickhouse_url: str, database: str
) -> None:
    """The first run fires and delivers; its replacement takes the same input again (its
    offsets were not committed) and fires the same alert, whose row is written with its
    batch. ``alerts`` must still say delivered, so the next start does not send it again."""
    template = next(i for i in fixture_items if i["id"] == TEMPLATE)
    deep = quantization(template, "x/deep-GGUF", ABLITERATED)
    rules = parse_rules(f"""
targets:
  hook: {{type: webhook, url: "{receiver.url}/hook"}}
rules:
  - name: every-quant
    repeat: true
    match: {{base_model: {INSTRUCT}, relation: quantized}}
""")
    writer = ClickHouseWriter(lambda: connect(clickhouse_url), database)

    async def record(rows: list[AlertRow]) -> None:
        await asyncio.to_thread(writer.write, [plan_rows("alerts", rows)])

    events = [model_created_from_api(i, NOW) for i in [*fixture_items, deep]]
    try:
        for run in range(2):
            state = await asyncio.to_thread(load_deliveries, clickhouse_url, database)
            evaluator = AlertEvaluator(rules)
            batch = plan_batch(events, forest=FamilyForest(), alerts=evaluator)
            await asyncio.to_thread(writer.write, batch.plans())
            deliverer = Deliverer(rules.targets, record, done=state.done)
            for alert in batch.fired:
                for target in alert.targets:
                    deliverer.submit(alert, target)
            await deliverer.drain(60)
            await deliverer.close()
            assert len(receiver.bodies("/hook")) == 1, f"run {run}"
        state = await asyncio.to_thread(load_deliveries, clickhouse_url, database)
    finally:
        writer.close()
    assert [(a.model_id, target) for a, target, _ in state.queued] == []
    assert len(receiver.bodies("/hook")) == 1


async def test_a_delivery_goes_through_and_is_recorded_when_a_bookkeeping_write_fails(
    receiver: Receiver, clickhouse_url: str, database: str
) -> None:
    """ClickHouse away longer than the writer retries, while the target is down too: the
    row recording the failed attempt cannot be written. The delivery must still be retried,
    made once the target is back, and its ``delivered`` row written once ClickHouse is."""
    receiver.down()
    nowhere = ClickHouseWriter(
        lambda: connect(f"http://127.0.0.1:{free_port()}"), database, retry_for=0.2
    )
    writer = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    outage = {"writes": 2}  # the failed attempt's row, then the delivered row's first try

    async def record(rows: list[AlertRow]) -> None:
        if outage["writes"] > 0:
            outage["writes"] -= 1
            await asyncio.to_thread(nowhere.write, [plan_rows("alerts", rows)])
        await asyncio.to_thread(writer.write, [plan_rows("alerts", rows)])

    alert = quantization_alert("bookkeeping-1", "hook")
    done = asyncio.Event()

    async def on_done() -> None:
        done.set()

    deliverer = Deliverer(
        {"hook": Target("hook", "webhook", receiver.url + "/hook")},
        record,
        retry_seconds=0.3,
        retry_max_seconds=1.0,
    )
    try:
        deliverer.submit(alert, "hook", on_done=on_done)
        await asyncio.to_thread(wait_until, lambda: outage["writes"] < 2, "the first attempt")
        receiver.up()
        await asyncio.wait_for(done.wait(), 120)
    finally:
        await deliverer.close()
        nowhere.close()
    assert receiver.keys() == ["bookkeeping-1:hook"]
    ch = connect(clickhouse_url, database=database)
    try:
        state = ch.query("SELECT state FROM alerts FINAL").result_rows
    finally:
        ch.close()
        writer.close()
    assert state == [("delivered",)]


def test_a_base_named_by_a_later_edit_fires_without_engagement_rules(
    fixture_items: list[dict[str, Any]],
) -> None:
    """A repo created before its card (the Hub lists it with no base), then edited to name
    its base: the edit is a ``model.updated``. It must fire the rules on the new lineage
    whether or not some other rule watches engagement (only those kept the model's facts)."""
    template = next(i for i in fixture_items if i["id"] == TEMPLATE)
    quant = quantization(template, "late/card-GGUF", ABLITERATED)
    bare = {
        **quant,
        "tags": [t for t in quant["tags"] if not t.startswith("base_model:")],
        "baseModels": None,
        "cardData": {},
    }
    created = model_created_from_api(bare, NOW)
    edited = model_updated(model_created_from_api(quant, NOW + timedelta(minutes=3)), ("tags",))
    rules = parse_rules(f"""
rules:
  - name: tree
    match: {{base_model: {INSTRUCT}, relation: quantized, parameters: {{min: 1e9}}}}
""")
    forest = FamilyForest()
    evaluator = AlertEvaluator(rules)
    fixture = [model_created_from_api(i, NOW) for i in fixture_items]
    assert plan_batch([*fixture, created], forest=forest, alerts=evaluator).fired == []
    (alert,) = plan_batch([edited], forest=forest, alerts=evaluator).fired
    assert (alert.model_id, alert.base_model, alert.relation) == (
        "late/card-GGUF",
        INSTRUCT,
        "quantized",
    )
    assert alert.licence == "apache-2.0" and alert.author == "late"
    # Once: the same edit again fires nothing.
    assert plan_batch([edited], forest=forest, alerts=evaluator).fired == []


def test_a_restarted_processor_knows_the_bases_velocity_before_their_next_snapshot(
    fixture_items: list[dict[str, Any]], clickhouse_url: str, database: str
) -> None:
    """A breakout is a derivative's velocity over its base's. After a start, a derivative's
    snapshot can come before its base's: the base's velocity is what ``engagement_live``
    holds (as ``alerts test`` reads it), not 0 (which made every moving derivative a
    breakout)."""
    forest = FamilyForest()
    plan_batch([model_created_from_api(i, NOW) for i in fixture_items], forest=forest)
    assert forest.parent(ABLITERATED) == INSTRUCT

    def live(repo_id: str, velocity: float) -> EngagementRow:
        per_day = int(velocity * 24)
        return EngagementRow(repo_id, NOW, 10, 10_000, 0, 0, 0, 0, per_day, per_day, velocity, 0.0)

    writer = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    try:
        writer.write([plan_rows("engagement_live", [live(INSTRUCT, 400.0)])])
    finally:
        writer.close()
    rules = parse_rules(f"""
rules:
  - name: breakout
    match: {{base_model: {INSTRUCT}, engagement: {{breakout: 3}}}}
""")
    evaluator = load_evaluator(clickhouse_url, database, rules)
    assert evaluator.observe_engagement(live(ABLITERATED, 50.0), forest)[0] == []
    (alert,) = evaluator.observe_engagement(live(ABLITERATED, 1_300.0), forest)[0]
    assert alert.model_id == ABLITERATED and "breakout 3.25" in alert.reason


def test_a_stopped_processor_finishes_the_delivery_under_way(
    processor_env: dict[str, str],
    receiver: Receiver,
    clickhouse_url: str,
    database: str,
    tmp_path: Path,
) -> None:
    """`hubwatch process` stopped (SIGTERM, a deploy) while a slow target is taking an
    alert: the delivery under way is finished and recorded before the process exits, so
    the next start does not send it again."""
    receiver.delay = 3.0
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f'targets:\n  hook: {{type: webhook, url: "{receiver.url}/hook"}}\n'
        f"rules:\n  - name: quants\n    match: {{base_model: {INSTRUCT}}}\n"
    )
    alert = quantization_alert("slow-1", "hook")
    writer = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    ch = connect(clickhouse_url, database=database)
    try:
        # Fired and written, not yet delivered: the processor's deliverer takes it up.
        writer.write([plan_rows("alerts", [alert.fired_row("hook")])])
        env = {**processor_env, "HUBWATCH_ALERT_RULES": str(rules)}
        log = tmp_path / "process.log"
        processor = spawn("process", env=env, log=log)
        try:
            wait_until(while_alive(processor, log, receiver.bodies), "the delivery to start", 120)
        finally:
            terminate(processor)
        log = tmp_path / "process2.log"
        processor = spawn("process", env=env, log=log)
        try:

            def state() -> str:
                return str(ch.command("SELECT state FROM alerts FINAL"))

            wait_until(while_alive(processor, log, lambda: state() == "delivered"), "delivered")
        finally:
            terminate(processor)
    finally:
        ch.close()
        writer.close()
    assert receiver.keys() == ["slow-1:hook"]
