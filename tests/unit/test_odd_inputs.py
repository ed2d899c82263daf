"""Odd input is skipped, logged once and counted: ztmon_source_odd_inputs_total{source,kind}."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from ztmon.engine.running import Engine
from ztmon.model.inventory import SourcePart
from ztmon.model.policy import Policy
from ztmon.sinks.prometheus import PrometheusSink
from ztmon.sources.base import Source
from ztmon.sources.docker import DockerSource


class Fake(Source):
    name = "fake"

    async def refresh(self) -> None:
        self.count_odd("truncated_line", 2)

    def part(self) -> SourcePart:
        return SourcePart()


def odd_samples(body: bytes) -> dict[tuple[str, str], float]:
    for fam in text_string_to_metric_families(body.decode()):
        if fam.name == "ztmon_source_odd_inputs":
            return {(s.labels["source"], s.labels["kind"]): s.value for s in fam.samples}
    return {}


async def test_counts_reach_the_exposition_and_accumulate():
    prom = PrometheusSink(process_metrics=False)
    e = Engine(node_name="n", sources=[Fake()], sinks=[prom], checks=[], known_checks=frozenset(), policy=Policy())
    await e.scan_once()
    assert odd_samples(prom.report_body()) == {("fake", "truncated_line"): 2.0}
    await e.scan_once()
    assert odd_samples(prom.report_body()) == {("fake", "truncated_line"): 4.0}


def test_docker_counts_an_unreadable_inspect_reply_and_keeps_going():
    src = DockerSource()
    bad = {"Id": "a" * 64, "State": {"Running": True}, "Config": "not an object"}
    src._client = SimpleNamespace(api=SimpleNamespace(inspect_container=lambda cid: bad))
    assert src._inspect("a" * 64) is None  # no earlier good view to keep
    assert src._inspect("a" * 64) is None
    assert src.odd_inputs() == {"inspect_unreadable": 2}
