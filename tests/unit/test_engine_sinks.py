"""Sinks are isolated: one that raises does not stop the others, and later sinks see its outcome."""

from __future__ import annotations

from ztmon.checks.registry import all_checks
from ztmon.engine.running import Engine
from ztmon.model.findings import Report
from ztmon.model.policy import Policy
from ztmon.sinks.base import Sink


class Broken(Sink):
    name = "broken"

    async def publish(self, report: Report) -> None:
        raise RuntimeError("disk on fire")


class Recorder(Sink):
    name = "recorder"

    def __init__(self) -> None:
        self.reports: list[Report] = []

    async def publish(self, report: Report) -> None:
        self.reports.append(report)


def engine(*sinks: Sink) -> Engine:
    return Engine(
        node_name="n1", sources=[], sinks=list(sinks), checks=[], known_checks=frozenset(all_checks()), policy=Policy()
    )


async def test_a_failing_sink_does_not_stop_the_next_and_is_reported_in_the_same_cycle():
    rec = Recorder()
    e = engine(Broken(), rec)
    await e.cycle()
    assert len(rec.reports) == 1
    (status,) = [s for s in rec.reports[0].sinks if s.name == "broken"]
    assert status.up is False
    assert "disk on fire" in status.error


async def test_a_sink_sees_its_own_outcome_from_the_previous_cycle():
    rec = Recorder()
    e = engine(rec)
    await e.cycle()
    assert rec.reports[0].sinks == ()
    await e.cycle()
    assert [(s.name, s.up) for s in rec.reports[1].sinks] == [("recorder", True)]
