"""Prometheus sink: a custom Collector over the last immutable Report.

Nothing carries over between reports, so a vanished container's series disappear with it.
`collect()` does no I/O. The exposition is rendered once per Report (and gzip'd on first demand), so a
scrape costs a memory copy, not a render: scrapes from several Prometheus replicas stay cheap.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ztmon import __version__
from ztmon.model.baseline import Mode
from ztmon.model.findings import Finding, Report, Severity
from ztmon.sinks import prometheus_kube
from ztmon.sinks.base import Sink

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SEVERITIES = tuple(s.label for s in Severity)


def _ts(report_time: object) -> float:
    return report_time.timestamp() if hasattr(report_time, "timestamp") else 0.0


@dataclass(frozen=True, slots=True)
class PerFinding:
    """A family with one series (value 1) per open finding: the bulk of a large node's exposition."""

    name: str
    help: str
    labels: tuple[str, ...]
    values: Callable[[Finding], list[str]]


def _info_values(f: Finding) -> list[str]:
    r = f.resource
    return [f.id, f.check, f.severity.label, r.namespace, r.pod, r.container, r.container_id, r.image]


def _resource_values(f: Finding) -> list[str]:
    r = f.resource
    return [f.id, r.namespace, r.kind, r.name, r.pod, r.workload_kind, r.workload]


PER_FINDING = (
    PerFinding(
        "ztmon_finding_info",
        "One series per open finding; value is 1",
        ("id", "check", "severity", "namespace", "pod", "container", "container_id", "image"),
        _info_values,
    ),
    PerFinding(
        "ztmon_finding_resource_info",
        "What each open finding is about: kind/name of the object and the pod's owning workload; value is 1. "
        "Join on id with ztmon_finding_info",
        ("id", "namespace", "kind", "name", "pod", "workload_kind", "workload"),
        _resource_values,
    ),
)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _render_per_finding(report: Report, cache: dict[tuple[int, Finding], bytes]) -> tuple[bytes, dict[Any, bytes]]:
    """The PER_FINDING families as exposition text, a line per finding cached across reports.

    Findings are frozen values: an unchanged finding renders to the same line, so a report that differs
    by a few findings re-renders a few lines. Same text as generate_latest (tests compare them).
    """
    out: list[bytes] = []
    fresh: dict[tuple[int, Finding], bytes] = {}
    for n, spec in enumerate(PER_FINDING):
        out.append(f"# HELP {spec.name} {spec.help}\n# TYPE {spec.name} gauge\n".encode())
        order = sorted(range(len(spec.labels)), key=spec.labels.__getitem__)  # generate_latest sorts labels
        for f in report.findings:
            key = (n, f)
            line = cache.get(key)
            if line is None:
                vals = spec.values(f)
                pairs = ",".join(f'{spec.labels[i]}="{_escape(vals[i])}"' for i in order)
                line = f"{spec.name}{{{pairs}}} 1.0\n".encode()
            fresh[key] = line
            out.append(line)
    return b"".join(out), fresh


class _Families:
    """Duck-types a registry for generate_latest: `collect()` yields the given families."""

    def __init__(self, fams: Iterable[Metric]) -> None:
        self._fams = fams

    def collect(self) -> Iterable[Metric]:
        return self._fams


def render(report: Report | None, cache: dict[Any, bytes] | None = None) -> tuple[bytes, dict[Any, bytes]]:
    """The report's exposition: PER_FINDING families by the cached fast path, the rest by generate_latest."""
    fams = list(families(report, per_finding=False))
    text = generate_latest(_Families(fams))
    if report is None:
        return text, {}
    fast, fresh = _render_per_finding(report, cache or {})
    return text + fast, fresh


def families(report: Report | None, *, per_finding: bool = True) -> Iterator[Metric]:
    """All ztmon_* families for one report. Pure: the same report gives the same families."""
    build = GaugeMetricFamily("ztmon_build_info", "ztmon build; value is 1", labels=["version"])
    build.add_metric([__version__], 1)
    yield build
    ready = GaugeMetricFamily("ztmon_ready", "1 once the first complete scan has finished")
    ready.add_metric([], 1 if report is not None else 0)
    yield ready
    if report is None:
        return
    yield from _finding_families(report, per_finding=per_finding)
    yield from _container_families(report)
    yield from _health_families(report)
    yield from _network_families(report)
    yield from _baseline_families(report)
    yield from prometheus_kube.families(report)


def _finding_families(report: Report, *, per_finding: bool = True) -> Iterator[Metric]:
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

    for spec in PER_FINDING if per_finding else ():
        g = GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))
        for f in report.findings:
            g.add_metric(spec.values(f), 1)
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

    odd = CounterMetricFamily(
        "ztmon_source_odd_inputs",
        "Odd input items a source skipped since start (each kind logged once), by kind",
        labels=["source", "kind"],
    )
    for s in report.sources:
        for kind, n in s.odd_inputs:
            odd.add_metric([s.name, kind], n)
    yield odd

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
        # The fast path renders this sink's own Collector only; a registry shared with other collectors
        # is rendered by generate_latest as a whole.
        self._fast = registry is None
        self._lines: dict[Any, bytes] = {}
        self._body = generate_latest(self.registry)
        self._gzip: bytes | None = None
        self._deflate: tuple[bytes, Any] | None = None

    async def publish(self, report: Report) -> None:
        self.collector.report = report
        if self._fast:
            self._body, self._lines = render(report, self._lines)
        else:
            self._body = generate_latest(self.registry)
        self._gzip = None
        self._deflate = None

    def add_live_collector(self, collector: Collector) -> None:
        """Render `collector` at every scrape, like the process metrics, not once per Report.

        For state that moves between reports (e.g. the MQTT sink's connection and outbox). Its
        `collect()` runs on the event loop at scrape time: in-memory values only, no I/O.
        """
        self._process.register(collector)

    def live(self) -> bytes:
        """The part rendered at every scrape: process metrics and live collectors."""
        return generate_latest(self._process)

    def exposition(self) -> bytes:
        return self._body + self.live()

    def report_body(self) -> bytes:
        return self._body

    def report_body_gzip(self) -> bytes:
        """The report part, compressed once per Report (a complete gzip stream on its own)."""
        if self._gzip is None:
            self._gzip = gzip.compress(self._body, compresslevel=5)
        return self._gzip

    def exposition_gzip(self) -> bytes:
        """One gzip stream: the report part compressed once per Report, the live tail per scrape.

        The compressor is kept after a sync flush of the report part; each scrape copies it and
        finishes the stream with the live tail, so clients that read a single gzip member see it all.
        """
        if self._deflate is None:
            z = zlib.compressobj(5, zlib.DEFLATED, 31)  # wbits 31: gzip header and trailer
            self._deflate = (z.compress(self._body) + z.flush(zlib.Z_SYNC_FLUSH), z)
        head, z = self._deflate
        tail = z.copy()
        return head + tail.compress(self.live()) + tail.flush()


def _network_families(report: Report) -> Iterator[Metric]:
    """Listeners, TLS probes, served certificates, observed capabilities, plaintext flows (procfs/capture).

    Cardinality is bounded per node by its listeners (one series each) and containers (at most 41
    capabilities each); no label carries an address or a connection tuple.
    """
    where = ["namespace", "pod", "container"]
    info = GaugeMetricFamily(
        "ztmon_listener_info",
        "One series per listening socket; value is 1",
        labels=[*where, "address_scope", "port", "protocol", "tls"],
    )
    counts = {"tls": 0, "plaintext": 0, "unknown": 0}
    dur = GaugeMetricFamily(
        "ztmon_tls_probe_duration_seconds",
        "Duration of the listener's last TLS probe",
        labels=[*where, "port"],
    )
    cert = GaugeMetricFamily(  # one family for listeners (port) and TLS Secrets (secret, key): one HELP line
        "ztmon_certificate_not_after_timestamp_seconds",
        "notAfter of a certificate as Unix time: served by a TLS listener (port) or in a TLS Secret (secret, key)",
        labels=[*where, "port", "subject_cn", "secret", "key"],
    )
    seen: set[tuple[str, ...]] = set()
    probed: set[tuple[str, ...]] = set()  # one probe/cert series per port, whatever address scopes bind it
    for li in report.listeners:
        base = [li.namespace, li.pod, li.container]
        key = (*base, li.address_scope, str(li.port), li.protocol)
        if key in seen:
            continue  # e.g. the same port bound on 0.0.0.0 and :: (both "all")
        seen.add(key)
        info.add_metric([*key, li.tls], 1)
        counts[li.tls] = counts.get(li.tls, 0) + 1
        port_key = (*base, str(li.port))
        if port_key in probed or li.protocol != "tcp":
            continue
        if li.probe_duration_seconds is not None or li.not_after is not None:
            probed.add(port_key)
        if li.probe_duration_seconds is not None:
            dur.add_metric(list(port_key), li.probe_duration_seconds)
        if li.not_after is not None:
            cert.add_metric([*port_key, li.subject_cn, "", ""], li.not_after.timestamp())
    for labels, value in prometheus_kube.certificate_samples(report):
        cert.add_metric(labels, value)
    yield info
    total = GaugeMetricFamily("ztmon_listeners", "Listening sockets by TLS classification", labels=["tls"])
    for tls, n in sorted(counts.items()):
        total.add_metric([tls], n)
    yield total
    yield dur
    yield cert
    caps = GaugeMetricFamily(
        "ztmon_container_capabilities_effective",
        "1 for each capability the container's main process holds (observed from /proc)",
        labels=[*where, "capability"],
    )
    for c in report.containers:
        for cap in c.capabilities_effective or ():
            caps.add_metric([c.namespace, c.pod, c.name, cap], 1)
    yield caps
    flows = CounterMetricFamily(
        "ztmon_plaintext_flows",
        "Plaintext packets seen on the wire to a listener (passive capture), since start",
        labels=[*where, "port", "protocol"],
    )
    for f in report.flows:
        flows.add_metric([f.namespace, f.pod, f.container, str(f.port), f.protocol], f.packets)
    yield flows


def _baseline_families(report: Report) -> Iterator[Metric]:
    """Drift, writable-layer changes, learning/locked modes and the loaded baseline documents.

    Bounded per node by its containers: ztmon_drift has at most 5 series per container (only non-zero
    counts are emitted), ztmon_container_fs_changes 3; no label carries a path.
    """
    b = report.baseline
    if b is None:
        return
    drift = GaugeMetricFamily(
        "ztmon_drift",
        "Open drift findings by check and workload container (absent = none)",
        labels=["check", "namespace", "workload", "container"],
    )
    for key, n in b.drift:
        drift.add_metric(list(key), n)
    yield drift
    fs = GaugeMetricFamily(
        "ztmon_container_fs_changes",
        "Paths changed in the container's writable layer, by kind (added|changed|deleted), as `docker diff` lists",
        labels=["namespace", "workload", "container", "kind"],
    )
    for key, n in b.fs_changes:
        fs.add_metric(list(key), n)
    yield fs
    if not b.active:
        return  # writable-layer data without a baseline (the fschanges source alone)
    mode = GaugeMetricFamily(
        "ztmon_baseline_mode",
        "1 if the workload's baseline is locked, 0 while it is learning",
        labels=["namespace", "workload"],
    )
    for (namespace, workload), m in b.modes:
        mode.add_metric([namespace, workload], 1 if m is Mode.LOCKED else 0)
    yield mode
    node_mode = GaugeMetricFamily(
        "ztmon_baseline_node_mode", "1 if the node's baseline is locked, 0 while it is learning"
    )
    node_mode.add_metric([], 1 if b.node_mode is Mode.LOCKED else 0)
    yield node_mode
    info = GaugeMetricFamily(
        "ztmon_baseline_info", "The loaded baseline document and its sha256; value is 1", labels=["source", "sha256"]
    )
    for d in b.documents:
        info.add_metric([d.source, d.sha256], 1)
    yield info
    ok = GaugeMetricFamily(
        "ztmon_baseline_last_reload_successful", "0 while the last changed baseline document was refused, else 1"
    )
    ok.add_metric([], 1 if b.reload_ok else 0)
    yield ok
    failures = CounterMetricFamily("ztmon_baseline_reload_failures", "Baseline documents refused at reload since start")
    failures.add_metric([], b.reload_failures_total)
    yield failures
