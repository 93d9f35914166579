"""Wiring shared by the two runners (the faust app and the embedded mode): the rules, the
evaluator restored from ClickHouse, and the deliverer with what is still queued."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TextIO

from hubwatch.alerts.alert import AlertRow
from hubwatch.alerts.evaluate import AlertEvaluator
from hubwatch.alerts.outbox import Deliverer
from hubwatch.alerts.rules import RuleSet, load_rules, parse_targets
from hubwatch.alerts.store import load_deliveries, load_evaluator
from hubwatch.settings import Settings
from processors.sinks import ClickHouseWriter, plan_rows

__all__ = ["load_configured_rules", "start_deliverer", "start_evaluator"]


def load_configured_rules(settings: Settings) -> RuleSet | None:
    """``HUBWATCH_ALERT_RULES``, checked (raises ConfigError naming file, line and field),
    with the targets of ``HUBWATCH_ALERT_TARGETS``."""
    if settings.alert_rules is None:
        return None
    return load_rules(settings.alert_rules, targets=parse_targets(settings.alert_targets))


async def start_evaluator(
    settings: Settings,
    rules: RuleSet,
    *,
    extra_targets: tuple[str, ...] = (),
    canonical: Callable[[str], str] | None = None,
) -> AlertEvaluator:
    return await asyncio.to_thread(
        load_evaluator,
        settings.clickhouse_url,
        settings.clickhouse_database,
        rules,
        extra_targets=extra_targets,
        canonical=canonical,
    )


async def start_deliverer(
    settings: Settings,
    rules: RuleSet,
    writer: ClickHouseWriter,
    *,
    terminal: TextIO | None = None,
) -> Deliverer:
    """A deliverer that records to ``alerts`` through ``writer``, knowing what was done,
    and already retrying what a previous run left queued."""
    state = await asyncio.to_thread(
        load_deliveries, settings.clickhouse_url, settings.clickhouse_database
    )

    async def record(rows: list[AlertRow]) -> None:
        await asyncio.to_thread(writer.write, [plan_rows("alerts", rows)])

    deliverer = Deliverer(
        rules.targets,
        record,
        done=state.done,
        retry_seconds=settings.alert_retry_seconds,
        retry_max_seconds=settings.alert_retry_max_seconds,
        terminal=terminal,
    )
    for alert, target, attempts in state.queued:
        deliverer.submit(alert, target, attempts=attempts)
    return deliverer
