"""The operator alert rules in deploy/prometheus: valid, each one unit-tested with
`promtool test rules`, and written over metrics hubwatch really exports."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import hubwatch.metrics  # noqa: F401  (registers every metric)
from tests.conftest import ROOT

RULES = ROOT / "deploy" / "prometheus" / "hubwatch-rules.yml"
TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yml"))
PROMTOOL = "/usr/bin/promtool"

# Exported by the alert deliveries (hubwatch's own alerts), named in the shared contract.
ALERT_DELIVERY_METRICS = {
    "hubwatch_alerts_queued",
    "hubwatch_alerts_delivered_total",
    "hubwatch_alerts_delivery_failures_total",
    "hubwatch_alerts_fired_total",
}


def _promtool(*args: str | Path) -> str:
    done = subprocess.run(
        [PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _alerts() -> list[dict[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_the_rules_are_valid() -> None:
    out = _promtool("check", "rules", RULES)
    assert f"SUCCESS: {len(_alerts())} rules found" in out


def test_every_rule_passes_its_promtool_unit_tests() -> None:
    assert TESTS
    for test in TESTS:
        assert "SUCCESS" in _promtool("test", "rules", test)


def test_every_rule_has_a_unit_test_that_fires_it() -> None:
    fired: set[str] = set()
    for test in TESTS:
        for case in yaml.safe_load(test.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    fired.add(check["alertname"])
    assert {rule["alert"] for rule in _alerts()} <= fired


def test_the_rules_read_metrics_hubwatch_exports() -> None:
    exported = {
        sample.name
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name.startswith("hubwatch_")
    } | {family.name for family in REGISTRY.collect()}
    # Families without samples yet (labelled, never set) show by their family name:
    # counters without _total, histograms without their suffixes.
    names = {n for n in exported} | {f"{n}_total" for n in exported}
    used = {name for rule in _alerts() for name in re.findall(r"\bhubwatch_[a-z_]+", rule["expr"])}
    assert used - names - ALERT_DELIVERY_METRICS == set()


def test_docker_compose_runs_prometheus_and_alertmanager_with_these_rules() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    assert "./deploy/prometheus:/etc/alertmanager:ro" in services["alertmanager"]["volumes"]
    for scraped in ("producer", "processor"):
        environment = services[scraped]["environment"]
        assert environment["HUBWATCH_METRICS_PORT"] == 9464
        assert environment["HUBWATCH_METRICS_HOST"] == "0.0.0.0"
    config = ROOT / "deploy" / "prometheus" / "prometheus.docker.yml"
    assert "SUCCESS: 1 rule files found" in _promtool("check", "config", config)
    targets = yaml.safe_load(config.read_text())["scrape_configs"][0]["static_configs"][0]
    assert targets["targets"] == ["producer:9464", "processor:9464"]
    checked = subprocess.run(
        ["amtool", "check-config", str(ROOT / "deploy" / "prometheus" / "alertmanager.docker.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
