"""Prometheus sink: a custom Collector over the last immutable Report.

Nothing carries over between reports, so a vanished container's series disappear with it.
`collect()` does no I/O. The exposition is rendered once per Report (and gzip'd on first demand), so a
scrape costs a memory copy, not a render: scrapes from several Prometheus replicas stay cheap.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ztmon import __version__
from ztmon.model.findings import Report, Severity
from ztmon.sinks.base import Sink

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SEVERITIES = tuple(s.label for s in Severity)


def _ts(report_time: object) -> float:
    return report_time.timestamp() if hasattr(report_time, "timestamp") else 0.0


def families(report: Report | None) -> Iterator[Metric]:
    """All ztmon_* families for one report. Pure: the same report gives the same families."""
    build = GaugeMetricFamily("ztmon_build_info", "ztmon build; value is 1", labels=["version"])
    build.add_metric([__version__], 1)
    yield build
    ready = GaugeMetricFamily("ztmon_ready", "1 once the first complete scan has finished")
    ready.add_metric([], 1 if report is not None else 0)
    yield ready
    if report is None:
        return
    yield from _finding_families(report)
    yield from _container_families(report)
    yield from _health_families(report)


def _finding_families(report: Report) -> Iterator[Metric]:
    counts: dict[tuple[str, str], int] = {(c, s): 0 for c in report.checks_enabled for s in SEVERITIES}
    for f in report.findings:
        key = (f.check, f.severity.label)
        counts[key] = counts.get(key, 0) + 1
    g = GaugeMetricFamily("ztmon_findings", "Open findings by check and severity", labels=["check", "severity"])
    for (check, sev), n in sorted(counts.items()):
        g.add_metric([check, sev], n)
    yield g

    sup: dict[str, int] = dict.fromkeys(report.checks_enabled, 0)
    for f in report.suppressed:
        sup[f.check] = sup.get(f.check, 0) + 1
    g = GaugeMetricFamily("ztmon_findings_suppressed", "Suppressed findings by check", labels=["check"])
    for check, n in sorted(sup.items()):
        g.add_metric([check], n)
    yield g

    g = GaugeMetricFamily(
        "ztmon_finding_info",
        "One series per open finding; value is 1",
        labels=["id", "check", "severity", "namespace", "pod", "container", "container_id", "image"],
    )
    for f in report.findings:
        r = f.resource
        g.add_metric([f.id, f.check, f.severity.label, r.namespace, r.pod, r.container, r.container_id, r.image], 1)
    yield g


def _container_families(report: Report) -> Iterator[Metric]:
    runtimes: dict[str, int] = {}
    ro = GaugeMetricFamily(
        "ztmon_container_readonly_rootfs",
        "1 if the container's root filesystem is read-only, else 0",
        labels=["namespace", "pod", "container", "container_id"],
    )
    for c in report.containers:
        runtimes[c.runtime] = runtimes.get(c.runtime, 0) + 1
        ro.add_metric([c.namespace, c.pod, c.name, c.id], 1 if c.read_only_rootfs else 0)
    g = GaugeMetricFamily("ztmon_containers", "Containers seen, by runtime", labels=["runtime"])
    for runtime, n in sorted(runtimes.items()):
        g.add_metric([runtime], n)
    yield g
    yield ro


def _health_families(report: Report) -> Iterator[Metric]:
    up = GaugeMetricFamily("ztmon_source_up", "1 if the source's last refresh or watch succeeded", labels=["source"])
    last = GaugeMetricFamily(
        "ztmon_source_last_success_timestamp_seconds",
        "Unix time of the source's last successful refresh or update",
        labels=["source"],
    )
    dur = GaugeMetricFamily(
        "ztmon_scan_duration_seconds", "Duration of the source's last full refresh", labels=["source"]
    )
    for s in report.sources:
        up.add_metric([s.name], 1 if s.up else 0)
        if s.last_success is not None:
            last.add_metric([s.name], s.last_success.timestamp())
        dur.add_metric([s.name], s.duration_seconds)
    yield up
    yield last
    yield dur

    sink_up = GaugeMetricFamily("ztmon_sink_up", "1 if the sink took the last report", labels=["sink"])
    for s in report.sinks:
        sink_up.add_metric([s.name], 1 if s.up else 0)
    yield sink_up

    cdur = GaugeMetricFamily(
        "ztmon_check_duration_seconds", "Duration of the check in the last cycle", labels=["check"]
    )
    cerr = CounterMetricFamily("ztmon_check_errors", "Checks that raised, since start", labels=["check"])
    for c in report.checks:
        cdur.add_metric([c.name], c.duration_seconds)
        cerr.add_metric([c.name], c.errors_total)
    yield cdur
    yield cerr

    cycles = CounterMetricFamily("ztmon_cycles", "Check cycles run since start")
    cycles.add_metric([], report.cycles_total)
    yield cycles
    last_cycle = GaugeMetricFamily(
        "ztmon_last_cycle_timestamp_seconds", "Unix time of the snapshot the last report was built from"
    )
    last_cycle.add_metric([], _ts(report.taken_at))
    yield last_cycle


class ReportCollector(Collector):
    """Yields fresh families from the last Report on every collect(); no I/O, no carried-over series."""

    def __init__(self) -> None:
        self.report: Report | None = None

    def describe(self) -> list[Metric]:
        return []  # or collect() would run at registration

    def collect(self) -> Iterator[Metric]:
        return families(self.report)


class PrometheusSink(Sink):
    name = "prometheus"

    def __init__(self, *, registry: CollectorRegistry | None = None, process_metrics: bool = True) -> None:
        self.collector = ReportCollector()
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        # Process metrics read /proc/self at scrape time: kept in a registry of their own, appended live.
        self._process = CollectorRegistry(auto_describe=False)
        if process_metrics:
            ProcessCollector(registry=self._process)
            PlatformCollector(registry=self._process)
        self._body = generate_latest(self.registry)
        self._gzip: bytes | None = None

    async def publish(self, report: Report) -> None:
        self.collector.report = report
        self._body = generate_latest(self.registry)
        self._gzip = None

    def exposition(self) -> bytes:
        return self._body + generate_latest(self._process)

    def report_body(self) -> bytes:
        return self._body

    def report_body_gzip(self) -> bytes:
        if self._gzip is None:
            self._gzip = gzip.compress(self._body, compresslevel=5)
        return self._gzip
