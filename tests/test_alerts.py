"""Alert rules: checked with file, line and field; evaluated through the same pipeline the
processors run; `hubwatch alerts test` on what ClickHouse holds; hostile text escaped per
target; Alertmanager's real API."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hubwatch.alerts.alert import Alert, AlertRow
from hubwatch.alerts.evaluate import AlertEvaluator
from hubwatch.alerts.outbox import Deliverer
from hubwatch.alerts.rules import Target, load_rules, parse_rules
from hubwatch.clickhouse import connect
from hubwatch.errors import ConfigError
from hubwatch.events import ModelSnapshot
from processors.engagement import RollingEngagement
from processors.families import FamilyForest
from processors.pipeline import plan_batch
from processors.sinks import ClickHouseWriter, plan_rows
from producers.hub import model_created_from_api
from tests.alerting import (
    ABLITERATED,
    BASE,
    INSTRUCT,
    TEMPLATE,
    Receiver,
    quantization,
    quantization_alert,
)
from tests.conftest import hubwatch, wait_until

# On the hour: the live windows count in hour buckets, so a snapshot 40 minutes on must not
# fall into the next hour, whatever the wall clock says.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.down()


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "rules:\n  - name: a\n    match:\n      relation: quantised\n",
            ":4: rules[0].match.relation",
        ),
        (
            "rules:\n  - name: a\n    match: {base_model: x/y}\n    targets: [nowhere]\n",
            ":4: rules[0].targets: no target named 'nowhere'",
        ),
        (
            "rules:\n  - name: a\n    match:\n      parameters: {min: lots}\n",
            ":4: rules[0].match.parameters.min",
        ),
        (
            "rules:\n  - name: a\n    match: {author: x}\nsilences:\n  - {rule: a, model: 'x/*'}\n",
            ":5: silences[0].until: missing",
        ),
        ("rules:\n  - name: a\n    match: {card: '(unclosed'}\n", ":3: rules[0].match.card"),
        ("rules:\n  - name: a\n    mach: {author: x}\n", ":3: rules[0].mach: unknown field"),
        (
            "targets:\n  t: {type: slack, url: 'ftp://x'}\nrules: []\n",
            ":2: targets.t.url: 'ftp://x' is not an http(s) URL",
        ),
        ("rules:\n  - name: a\n    match: {author: [x\n", ":4: not valid YAML"),
    ],
)
def test_a_bad_rules_file_is_refused_naming_file_line_and_field(text: str, where: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_rules(text, "team.yaml")
    assert str(error.value).startswith("team.yaml" + where), str(error.value)


def test_the_example_rules_load_and_the_cli_says_what_is_wrong_in_one_line(
    tmp_path: Path,
) -> None:
    example = Path(__file__).parents[1] / "deploy" / "alerts.example.yaml"
    rules = load_rules(example)
    assert [r.name for r in rules.rules][:2] == ["gguf-of-mistral-small", "licence-drift"]
    assert rules.rules[0].group_seconds == 600 and rules.rules[2].match.parameters.low == 7e9
    ok = hubwatch("alerts", "check", str(example), env={})
    assert ok.returncode == 0 and "5 rules" in ok.stdout, ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: a\n    match:\n      relation: quantised\n")
    run = hubwatch("alerts", "check", str(bad), env={})
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().count("\n") == 0
    assert f"{bad}:4: rules[0].match.relation" in run.stderr
    # `process` and `run` check HUBWATCH_ALERT_RULES before anything starts.
    started = hubwatch("process", env={"HUBWATCH_ALERT_RULES": str(bad)})
    assert started.returncode == 1 and f"{bad}:4:" in started.stderr


def test_targets_can_come_from_settings_instead_of_the_file(tmp_path: Path) -> None:
    """HUBWATCH_ALERT_TARGETS keeps a webhook URL (a secret) out of the rules file."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: a\n    match: {author: x}\n    targets: [team]\n")
    env = {"HUBWATCH_ALERT_TARGETS": "team=slack=https://hooks.slack.com/services/T/B/X"}
    ok = hubwatch("alerts", "check", str(rules), env=env)
    assert ok.returncode == 0 and "team (slack)" in ok.stdout, ok.stderr
    missing = hubwatch("alerts", "check", str(rules), env={})
    assert missing.returncode == 1 and f"{rules}:4: rules[0].targets" in missing.stderr
    bad = hubwatch("alerts", "check", str(rules), env={"HUBWATCH_ALERT_TARGETS": "team=sms=x"})
    assert bad.returncode == 1 and "HUBWATCH_ALERT_TARGETS: team: type 'sms'" in bad.stderr


def _events(items: list[dict[str, Any]]) -> list[Any]:
    return [model_created_from_api(item, NOW) for item in items]


def test_rules_on_the_stream_tree_licence_silence_and_engagement(
    fixture_items: list[dict[str, Any]],
) -> None:
    """Through plan_batch, as both runners call it: family tree matches at any depth (and
    not with descendants: false), a licence differing from the base's, a silence with an
    end time, and thresholds on the live windows."""
    template = next(i for i in fixture_items if i["id"] == TEMPLATE)
    deep = quantization(template, "x/deep-GGUF", ABLITERATED)
    relicensed = quantization(template, "y/relicensed-GGUF", ABLITERATED)
    relicensed["tags"] = [t for t in relicensed["tags"] if not t.startswith("license:")] + [
        "license:cc-by-nc-4.0"
    ]
    hushed = quantization(template, "hushed/q-GGUF", INSTRUCT)
    rules = parse_rules(f"""
rules:
  - name: tree
    match: {{base_model: {INSTRUCT}, relation: quantized}}
  - name: direct-only
    match: {{base_model: {INSTRUCT}, descendants: false, relation: quantized}}
  - name: licence
    match: {{base_model: {BASE}, license_differs_from_base: true}}
  - name: hot
    match: {{base_model: {INSTRUCT}, engagement: {{likes_1h: 50}}}}
silences:
  - {{rule: tree, model: "hushed/*", until: {(NOW + timedelta(hours=1)).isoformat()}}}
  - {{rule: direct-only, model: "hushed/*", until: {(NOW - timedelta(hours=1)).isoformat()}}}
""")
    forest = FamilyForest()
    evaluator = AlertEvaluator(rules)
    engagement = RollingEngagement({}, prune_every=1000)
    fired = plan_batch(
        _events([*fixture_items, deep, relicensed, hushed]),
        forest=forest,
        engagement=engagement,
        alerts=evaluator,
    ).fired
    by_rule = {
        r: sorted(a.model_id for a in fired if a.rule == r)
        for r in ("tree", "direct-only", "licence")
    }
    # The fixture's own models are old (max_age 24h); the new ones fire.
    assert by_rule["tree"] == ["x/deep-GGUF", "y/relicensed-GGUF"]  # hushed is silenced
    assert by_rule["direct-only"] == ["hushed/q-GGUF"]  # its silence has ended
    assert by_rule["licence"] == ["y/relicensed-GGUF"]
    (relicensed_alert,) = [a for a in fired if a.rule == "licence"]
    assert (relicensed_alert.licence, relicensed_alert.base_licence) == (
        "cc-by-nc-4.0",
        "apache-2.0",
    )
    # Once per rule and model, however often the event comes again.
    again = plan_batch(_events([deep]), forest=forest, alerts=evaluator).fired
    assert again == []
    # Engagement: 10 likes in the hour is under the threshold, 80 over it; once. The
    # windows keep hourly buckets: snapshots from the top of an hour, so which hour each
    # falls in does not depend on the minute the test runs at.
    hour = NOW.replace(minute=0, second=0, microsecond=0)
    snaps = [
        ModelSnapshot("x/deep-GGUF", hour, downloads=0, likes=0),
        ModelSnapshot("x/deep-GGUF", hour + timedelta(minutes=20), downloads=5, likes=10),
    ]
    assert plan_batch(snaps, forest=forest, engagement=engagement, alerts=evaluator).fired == []
    hot = [
        ModelSnapshot("x/deep-GGUF", hour + timedelta(minutes=40), downloads=9, likes=80),
        ModelSnapshot("x/deep-GGUF", hour + timedelta(minutes=50), downloads=9, likes=95),
    ]
    (alert,) = plan_batch(hot, forest=forest, engagement=engagement, alerts=evaluator).fired
    assert alert.rule == "hot" and alert.base_model == INSTRUCT and "likes_1h 80" in alert.reason


def test_alerts_test_replays_the_rules_on_what_clickhouse_holds(
    fixture_items: list[dict[str, Any]], clickhouse_url: str, database: str, tmp_path: Path
) -> None:
    """`hubwatch alerts test` fires what the stream would have, on rows read back: every
    fine-tune anywhere below the instruct model, by the fixture's own tags."""
    writer = ClickHouseWriter(lambda: connect(clickhouse_url), database)
    batch = plan_batch(_events(fixture_items), forest=FamilyForest())
    writer.write(batch.plans())
    writer.close()
    # Independently of hubwatch's lineage: each model's parent from its relation tag.
    parent: dict[str, tuple[str, str]] = {}
    for item in fixture_items:
        for tag in item["tags"]:
            if m := re.match(r"^base_model:(finetune|quantized|adapter|merge):(.+)$", tag):
                parent.setdefault(item["id"], (m[2], m[1]))

    def below(model: str, base: str) -> bool:
        seen = set()
        while model in parent and model not in seen:
            seen.add(model)
            model = parent[model][0]
            if model == base:
                return True
        return False

    expected = sorted(
        m for m, (_, rel) in parent.items() if rel == "finetune" and below(m, INSTRUCT)
    )
    deeper = [m for m in expected if parent[m][0] != INSTRUCT]
    assert expected and deeper, "the fixture has fine-tunes below the instruct model, deeper too"
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"rules:\n  - name: q\n    match: {{base_model: {INSTRUCT}, relation: finetune,"
        " max_age: null}\n"
    )
    env = {"HUBWATCH_CLICKHOUSE_URL": clickhouse_url, "HUBWATCH_CLICKHOUSE_DATABASE": database}
    done = hubwatch("alerts", "test", str(rules), "--since", "1d", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sorted(line.split()[3] for line in lines[:-1]) == expected
    assert lines[-1].startswith(f"{len(expected)} alerts from 67 models")
    assert all(f"base={INSTRUCT}" in line and "relation=finetune" in line for line in lines[:-1])
    # Nothing was seen a day before now minus a day.
    old = hubwatch("alerts", "test", str(rules), "--since", "1s", env=env)
    assert old.stdout.startswith("0 alerts") or old.stdout.splitlines()[-1].startswith("0 alerts")


HOSTILE = (
    "<!channel> <@U024BE7LH> <https://evil.example|click me> @everyone @here"
    " <@80351110224678912> [x](https://evil.example) *bold* `code` &amp;"
)


def _hostile_alert() -> Alert:
    return Alert(
        alert_id="hostile",
        rule="r",
        model_id="evil/<!here>|x>",
        base_model="base/@everyone",
        relation="quantized",
        link="https://huggingface.co/evil/%3C%21here%3E%7Cx%3E",
        models=("evil/<!here>|x>",),
        count=1,
        fired_at=NOW,
        targets=("slack", "discord", "json"),
        author="<@U1>",
        licence="<!channel>",
        reason=HOSTILE,
    )


@pytest.mark.parametrize(
    ("relation", "title"),
    [
        ("finetune", "66 new finetunes of base/m"),
        ("quantized", "66 new quantizations of base/m"),
        ("adapter", "66 new adapters of base/m"),
        ("merge", "66 new merges of base/m"),
        ("", "66 new derivatives of base/m"),
    ],
)
def test_a_grouped_alert_title_counts_in_the_plural(relation: str, title: str) -> None:
    alert = dataclasses.replace(_hostile_alert(), base_model="base/m", relation=relation, count=66)
    assert alert.title == title


async def _deliver(targets: dict[str, Target], alert: Alert) -> list[AlertRow]:
    recorded: list[AlertRow] = []

    async def record(rows: list[AlertRow]) -> None:
        recorded.extend(rows)

    deliverer = Deliverer(targets, record, retry_seconds=0.2, retry_max_seconds=1)
    for target in alert.targets:
        deliverer.submit(alert, target)
    await deliverer.drain(30)
    await deliverer.close()
    return recorded


async def test_hostile_names_cannot_forge_a_mention_or_a_link(receiver: Receiver) -> None:
    targets = {
        "slack": Target("slack", "slack", receiver.url + "/slack"),
        "discord": Target("discord", "discord", receiver.url + "/discord"),
        "json": Target("json", "webhook", receiver.url + "/json"),
    }
    alert = _hostile_alert()
    rows = await _deliver(targets, alert)
    assert sorted(r.state for r in rows) == ["delivered"] * 3
    (slack,) = receiver.bodies("/slack")
    text = slack["text"]
    # Slack reads <...> as a mention or link: the only ones left are hubwatch's own links.
    assert re.findall(r"<([^>]*)>", text) == [
        "https://huggingface.co/evil/%3C%21here%3E%7Cx%3E|evil/&lt;!here&gt;|x&gt;"
    ]
    assert "&lt;!channel&gt;" in text and "&lt;@U024BE7LH&gt;" in text
    assert "&amp;amp;" in text and slack["parse"] == "none"
    (discord,) = receiver.bodies("/discord")
    content = discord["content"]
    assert discord["allowed_mentions"] == {"parse": []}
    assert "@everyone" not in content and "@here" not in content and "<@8" not in content
    links = re.findall(r"(?<!\\)\[(.*?)(?<!\\)\]\((.*?)(?<!\\)\)", content)
    assert [url for _, url in links] == ["<https://huggingface.co/evil/%3C%21here%3E%7Cx%3E>"]
    assert r"\*bold\*" in content
    (raw,) = receiver.bodies("/json")
    assert raw["reason"] == HOSTILE and raw["model_id"] == "evil/<!here>|x>"  # JSON: as is
    assert raw["idempotency_key"] == "hostile:json"


async def test_alertmanager_takes_alerts_on_its_v2_api_and_routes_them(
    own_alertmanager: Any, receiver: Receiver, clickhouse_url: str, database: str
) -> None:
    """The real Alertmanager: hubwatch POSTs /api/v2/alerts, Alertmanager's route sends the
    alert on to its webhook receiver with hubwatch's labels; the delivery is recorded."""
    own_alertmanager.env.update(
        ALERTMANAGER_WEBHOOK_URL=receiver.url + "/am", ALERTMANAGER_GROUP_WAIT="1s"
    )
    await asyncio.to_thread(own_alertmanager.up)
    writer = ClickHouseWriter(lambda: connect(clickhouse_url), database)

    async def record(rows: list[AlertRow]) -> None:
        await asyncio.to_thread(writer.write, [plan_rows("alerts", rows)])

    alert = quantization_alert("am-1", "am")
    deliverer = Deliverer({"am": Target("am", "alertmanager", own_alertmanager.url)}, record)
    deliverer.submit(alert, "am")
    await deliverer.drain(30)
    await deliverer.close()
    await asyncio.to_thread(
        wait_until, lambda: receiver.bodies("/am"), "Alertmanager's notification"
    )
    notification = receiver.bodies("/am")[0]
    (sent,) = notification["alerts"]
    assert sent["labels"]["rule"] == "quants" and sent["labels"]["model"] == "someone/q-GGUF"
    assert sent["labels"]["base_model"] == INSTRUCT and sent["labels"]["relation"] == "quantized"
    assert sent["annotations"]["link"] == alert.link
    ch = connect(clickhouse_url, database=database)
    state = ch.query("SELECT state, delivered_at IS NOT NULL FROM alerts FINAL").result_rows
    ch.close()
    writer.close()
    assert state == [("delivered", True)]
