"""sinks.prometheus: the exposition rendered from a Report, parsed back as Prometheus would."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ztmon import __version__
from ztmon.checks.registry import all_checks
from ztmon.engine import pipeline
from ztmon.model.findings import Severity, SourceStatus
from ztmon.sinks import prometheus
from ztmon.sources.docker import parse_inspect

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
FIXTURE = Path(__file__).parent / "fixtures" / "docker_inspect_web.json"
SECRETS = ("hunter2-very-secret", "AKIAIOSFODNN7EXAMPLE")
INFO_LABELS = {"id", "check", "severity", "namespace", "pod", "container", "container_id", "image"}


def report_of(snap, specs, *, sources=(), rules=()):
    runner = pipeline.CheckRunner(specs)
    return pipeline.cycle(
        snapshot=snap, runner=runner, rules=tuple(rules), known_checks=frozenset(all_checks()), sources=sources
    ).report


def exposition(report) -> bytes:
    """The text families() renders through a fresh registry."""
    registry = CollectorRegistry(auto_describe=False)
    collector = prometheus.ReportCollector()
    collector.report = report
    registry.register(collector)
    return generate_latest(registry)


def render(report) -> dict[str, list]:
    """name -> samples."""
    return parse(exposition(report))


def parse(body: bytes) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}


def values(samples, *label_names):
    return {tuple(s.labels[n] for n in label_names): s.value for s in samples}


def test_before_first_report_only_build_info_and_not_ready():
    fams = render(None)
    assert set(fams) == {"ztmon_build_info", "ztmon_ready"}
    assert values(fams["ztmon_build_info"], "version") == {(__version__,): 1}
    assert fams["ztmon_ready"][0].value == 0


def test_ready_after_first_report(snapshot, specs):
    assert render(report_of(snapshot(), specs))["ztmon_ready"][0].value == 1


def test_every_enabled_check_and_severity_has_a_findings_series_with_zero(snapshot, specs):
    fams = render(report_of(snapshot(), specs))
    got = values(fams["ztmon_findings"], "check", "severity")
    assert got == {(spec.id, s.label): 0 for spec in specs for s in Severity}


def test_findings_counted_by_check_and_severity(container, snapshot, specs):
    c = container(cap_add=("SYS_ADMIN",), cap_drop=(), read_only_rootfs=False)
    got = values(render(report_of(snapshot(c), specs))["ztmon_findings"], "check", "severity")
    assert got[("capabilities", "high")] == 1
    assert got[("capabilities", "low")] == 1
    assert got[("readonly-rootfs", "medium")] == 1
    assert got[("privileged", "critical")] == 0


def test_only_enabled_checks_appear(snapshot):
    fams = render(report_of(snapshot(), [all_checks()["privileged"]]))
    assert {s.labels["check"] for s in fams["ztmon_findings"]} == {"privileged"}
    assert values(fams["ztmon_findings_suppressed"], "check") == {("privileged",): 0}


def test_finding_info_one_series_per_open_finding_with_documented_labels(container, snapshot, specs):
    c = container(privileged=True, host_pid=True, host_ipc=True)
    report = report_of(snapshot(c), specs)
    samples = render(report)["ztmon_finding_info"]
    assert len(samples) == len(report.findings) == 3  # privileged; host pid; host ipc
    assert all(set(s.labels) == INFO_LABELS and s.value == 1 for s in samples)
    assert {s.labels["id"] for s in samples} == {f.id for f in report.findings}
    first = next(s.labels for s in samples if s.labels["check"] == "privileged")
    assert first == {
        "id": next(f.id for f in report.findings if f.check == "privileged"),
        "check": "privileged",
        "severity": "critical",
        "namespace": "",
        "pod": "",
        "container": "web",
        "container_id": c.id,
        "image": c.image,
    }


def test_suppressed_findings_are_counted_not_listed(container, snapshot, specs):
    from ztmon.model.suppression import SuppressionRule  # noqa: PLC0415

    report = report_of(
        snapshot(container(privileged=True)), specs, rules=[SuppressionRule(check="privileged", reason="x")]
    )
    fams = render(report)
    assert values(fams["ztmon_findings_suppressed"], "check")[("privileged",)] == 1
    assert values(fams["ztmon_findings"], "check", "severity")[("privileged", "critical")] == 0
    assert fams["ztmon_finding_info"] == []


def test_removed_container_has_no_series_in_next_report(container, snapshot, specs):
    web, api = container(privileged=True), container(privileged=True, name="api", id="a" * 64)
    first = render(report_of(snapshot(web, api), specs))
    second = render(report_of(snapshot(web), specs))
    assert {s.labels["container"] for s in first["ztmon_finding_info"]} == {"web", "api"}
    assert {s.labels["container"] for s in second["ztmon_finding_info"]} == {"web"}
    assert {s.labels["container"] for s in second["ztmon_container_readonly_rootfs"]} == {"web"}


async def test_sink_forgets_removed_container_on_publish(container, snapshot, specs):
    sink = prometheus.PrometheusSink(process_metrics=False)
    await sink.publish(report_of(snapshot(container(privileged=True), container(name="api", id="a" * 64)), specs))
    await sink.publish(report_of(snapshot(container(privileged=True)), specs))
    fams = parse(sink.exposition())
    assert "api" not in {s.labels["container"] for s in fams["ztmon_container_readonly_rootfs"]}
    assert "api" not in sink.exposition().decode()


@pytest.mark.parametrize(("read_only", "value"), [(True, 1), (False, 0)])
def test_container_readonly_rootfs(container, snapshot, read_only, value, specs):
    c = container(read_only_rootfs=read_only)
    samples = render(report_of(snapshot(c), specs))["ztmon_container_readonly_rootfs"]
    assert values(samples, "namespace", "pod", "container", "container_id") == {("", "", "web", c.id): value}


def test_containers_by_runtime(container, snapshot, specs):
    snap = snapshot(container(), container(name="b", id="b" * 64), container(runtime="podman", name="c", id="c"))
    assert values(render(report_of(snap, specs))["ztmon_containers"], "runtime") == {("docker",): 2, ("podman",): 1}


def test_source_up_and_last_success(snapshot, specs):
    sources = (
        SourceStatus("docker", up=False, last_success=None, duration_seconds=0.5, error="ConnectionError"),
        SourceStatus("host", up=True, last_success=NOW, duration_seconds=0.001),
    )
    fams = render(report_of(snapshot(), specs, sources=sources))
    assert values(fams["ztmon_source_up"], "source") == {("docker",): 0, ("host",): 1}
    assert values(fams["ztmon_source_last_success_timestamp_seconds"], "source") == {("host",): NOW.timestamp()}
    assert values(fams["ztmon_scan_duration_seconds"], "source") == {("docker",): 0.5, ("host",): 0.001}


def test_check_errors_counter_and_cycle_metrics(snapshot):
    from ztmon.checks.registry import CheckSpec  # noqa: PLC0415

    def boom(snap):
        raise RuntimeError("x")

    runner = pipeline.CheckRunner([CheckSpec("boom", boom, Severity.LOW, "boom")])
    for _ in range(2):
        result = pipeline.cycle(
            snapshot=snapshot(), runner=runner, rules=(), known_checks=frozenset(), sources=(), cycles_total=2
        )
    fams = render(result.report)
    assert values(fams["ztmon_check_errors"], "check") == {("boom",): 2}
    assert fams["ztmon_check_errors"][0].name == "ztmon_check_errors_total"
    assert fams["ztmon_cycles"][0].value == 2
    assert fams["ztmon_last_cycle_timestamp_seconds"][0].value == NOW.timestamp()


def test_families_are_pure(container, snapshot, specs):
    report = report_of(snapshot(container(privileged=True)), specs)
    assert render(report) == render(report)


def test_no_secret_value_in_exposition(snapshot, specs):
    c = parse_inspect(json.loads(FIXTURE.read_text(encoding="utf-8")))
    report = report_of(snapshot(c), specs)
    assert any(f.check == "secret-in-env" for f in report.findings)
    text = exposition(report).decode()
    for secret in SECRETS:
        assert secret not in text


async def test_sink_serves_report_body_and_gzip(container, snapshot, specs):
    sink = prometheus.PrometheusSink(process_metrics=False)
    assert parse(sink.report_body())["ztmon_ready"][0].value == 0
    await sink.publish(report_of(snapshot(container(privileged=True)), specs))
    body = sink.report_body()
    assert parse(body)["ztmon_ready"][0].value == 1
    assert gzip.decompress(sink.report_body_gzip()) == body
    assert sink.exposition() == body  # no process metrics asked for


async def test_sink_appends_process_metrics(snapshot, specs):
    sink = prometheus.PrometheusSink()
    await sink.publish(report_of(snapshot(), specs))
    fams = parse(sink.exposition())
    assert "ztmon_ready" in fams
    assert "python_info" in fams


def test_sink_registers_on_given_registry():
    registry = CollectorRegistry(auto_describe=False)
    sink = prometheus.PrometheusSink(registry=registry, process_metrics=False)
    assert sink.registry is registry
    assert "ztmon_build_info" in parse(generate_latest(registry))


def test_collector_describe_is_empty():
    assert prometheus.ReportCollector().describe() == []


async def test_fast_render_equals_generate_latest_over_the_collector(container, snapshot, specs):
    odd = container(id="b" * 64, name='we"ird\\name\nx', image="img:latest", read_only_rootfs=False, privileged=True)
    report = report_of(snapshot(container(), odd), specs)
    sink = prometheus.PrometheusSink()
    await sink.publish(report)
    reference = CollectorRegistry(auto_describe=False)
    collector = prometheus.ReportCollector()
    collector.report = report
    reference.register(collector)
    assert parse(sink.report_body()) == parse(generate_latest(reference))
    assert report.findings  # the per-finding families are exercised


async def test_fast_render_line_cache_follows_the_report(container, snapshot, specs):
    sink = prometheus.PrometheusSink()
    first = report_of(snapshot(container(read_only_rootfs=False)), specs)
    await sink.publish(first)
    assert b"ztmon_finding_info{" in sink.report_body()
    await sink.publish(report_of(snapshot(container()), specs))
    assert b"ztmon_finding_info{" not in sink.report_body()
    assert b"ztmon_finding_resource_info{" not in sink.report_body()
