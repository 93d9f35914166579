"""OutageLogFilter on a real logging handler, with the time it sees set by the test."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from hubwatch.quiet_logs import OutageLogFilter


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lines(clock: Clock) -> Iterator[list[str]]:
    handler = Collect()
    handler.addFilter(OutageLogFilter(clock=clock))
    loggers = [logging.getLogger(name) for name in ("aiokafka", "faust", "hubwatch")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield handler.lines
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


client = logging.getLogger("aiokafka.client")
coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")


def _refused(count: int, clock: Clock, every: float = 0.01) -> None:
    for _ in range(count):
        clock.now += every
        client.error("Unable connect to node with id %s: %s", 1, "[Errno 111] Connect call failed")


def test_an_outage_is_one_line_and_one_on_recovery(lines: list[str], clock: Clock) -> None:
    _refused(2000, clock)
    logging.getLogger("faust.transport").warning("Timer commit is overlapping (%d%%)", 120)
    logging.getLogger("hubwatch.sinks").error("Unable connect to node: not Kafka's")
    clock.now += 5
    coordinator.info("Discovered coordinator %s for group %s", 1, "g")
    assert lines == [
        "ERROR aiokafka.client: Kafka unreachable: Unable connect to node with id 1: "
        "[Errno 111] Connect call failed (repeats held back until it answers again)",
        "WARNING faust.transport: Timer commit is overlapping (120%)",
        "ERROR hubwatch.sinks: Unable connect to node: not Kafka's",
        "INFO aiokafka.consumer.group_coordinator: Kafka answers again after 25s "
        "(1999 connection errors held back): Discovered coordinator 1 for group g",
    ]


def test_errors_while_the_broker_settles_belong_to_the_outage(
    lines: list[str], clock: Clock
) -> None:
    _refused(10, clock)
    coordinator.info("Discovered coordinator 1 for group g")
    clock.now += 1
    coordinator.warning("Heartbeat failed for group g: coordinator (node 1) is not started")
    assert len(lines) == 2
    clock.now += 30  # a later outage is reported again
    _refused(3, clock)
    assert len(lines) == 3 and "Kafka unreachable" in lines[-1]


def test_a_long_outage_is_recalled_and_a_silent_end_expires(lines: list[str], clock: Clock) -> None:
    _refused(700, clock, every=0.5)  # 350 s
    assert len(lines) == 2 and "still unreachable after 300s" in lines[1]
    clock.now += 31  # nothing said it ended; the next error is a new outage
    _refused(2, clock)
    assert len(lines) == 3 and "Kafka unreachable" in lines[2]


def test_membership_failures_and_crashes_are_never_held_back(
    lines: list[str], clock: Clock
) -> None:
    """Inside an outage, what is not a connection error still shows: a heartbeat refused
    because the member is not recognized (two processors sharing an instance id), and an
    error with a traceback that happens to mention a connection error."""
    _refused(5, clock)
    coordinator.error("Heartbeat failed: local member_id was not recognized; resetting")
    try:
        raise RuntimeError("KafkaConnectionError while committing")
    except RuntimeError:
        logging.getLogger("faust.agents").exception("Agent crashed: KafkaConnectionError")
    coordinator.warning("Heartbeat failed for group g: KafkaConnectionError: Connection lost")
    assert lines[1:] == [
        "ERROR aiokafka.consumer.group_coordinator: Heartbeat failed: local member_id was not "
        "recognized; resetting",
        "ERROR faust.agents: Agent crashed: KafkaConnectionError",
    ]
