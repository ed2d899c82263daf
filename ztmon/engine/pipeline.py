"""One cycle: sources' last good parts -> Snapshot -> checks -> suppression -> Report.

Each check is isolated and timed: one that raises is counted and shown in the Report, the others run.
Nothing here does I/O; the clock is passed in.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from ztmon.checks import kube_states, suppression
from ztmon.checks.registry import CheckSpec
from ztmon.model import drift, network
from ztmon.model.findings import (
    CheckStatus,
    ContainerState,
    Finding,
    FlowState,
    ListenerState,
    Report,
    Severity,
    SourceStatus,
)
from ztmon.model.inventory import Container, Node, Snapshot, SourcePart
from ztmon.model.kube import KubeObjects
from ztmon.model.policy import Policy
from ztmon.model.suppression import SuppressionRule

log = structlog.get_logger("ztmon.engine.pipeline")


def merge_node(name: str, parts: Sequence[SourcePart]) -> Node:
    """Non-empty fields of every source's node view; the configured name wins."""
    fields: dict[str, str] = {"name": name}
    for p in parts:
        if p.node is None:
            continue
        for key in ("kernel", "os_image", "runtime_version"):
            value = getattr(p.node, key)
            if value and not fields.get(key):
                fields[key] = value
    return Node(**fields)


def _manifest_key(c: Container) -> str:
    """A container without runtime id (a manifest) is named by its place: workload, pod, spec list, name."""
    return f"{c.name}\x1f{c.namespace}/{c.workload_kind}/{c.workload_name}/{c.pod}/{c.container_type}"


def _join_pod_specs(containers: dict[tuple[str, str], Container]) -> dict[tuple[str, str], Container]:
    """A pod-spec container (kube source) and the runtime's view of it (docker) are one container: keep the
    spec's (it carries Kubernetes semantics and the workload), fill what only the runtime knows."""
    specs = {c.id: key for key, c in containers.items() if c.runtime == "kubernetes" and c.id}
    if not specs:
        return containers
    out = dict(containers)
    for key, c in containers.items():
        if c.runtime != "kubernetes" and c.id in specs:
            spec_key = specs[c.id]
            spec = out[spec_key]
            out[spec_key] = dataclasses.replace(
                spec,
                image_digest=spec.image_digest or c.image_digest,
                image_user=spec.image_user or c.image_user,
                started_at=spec.started_at or c.started_at,
            )
            del out[key]
    return out


def _kube(parts: Sequence[SourcePart]) -> KubeObjects:
    kube = KubeObjects()
    for p in parts:
        if p.kube is not None:
            kube = kube.merge(p.kube)
    return kube


def build_snapshot(*, now: datetime, node_name: str, parts: Sequence[SourcePart], policy: Policy) -> Snapshot:
    containers: dict[tuple[str, str], Container] = {}
    for p in parts:
        for c in p.containers:
            containers.setdefault((c.runtime, c.id or _manifest_key(c)), c)
    containers = _join_pod_specs(containers)
    # Runtime truth from /proc (procfs source) joins the declared containers by id.
    postures = {pp.container_id: pp for p in parts for pp in p.postures}
    merged = tuple(
        dataclasses.replace(c, observed=postures[c.id]) if c.id in postures and c.observed is None else c
        for c in containers.values()
    )
    return Snapshot(
        taken_at=now,
        node=merge_node(node_name, parts),
        containers=merged,
        policy=policy,
        kube=_kube(parts),
        listeners=tuple(li for p in parts for li in p.listeners),
        namespaces=tuple(ns for p in parts for ns in p.namespaces),
        flows=tuple(f for p in parts for f in p.flows),
        baseline=next((p.baseline for p in parts if p.baseline is not None), None),
        fs_changes=tuple(fc for p in parts for fc in p.fs_changes),
    )


@dataclass
class CheckRunner:
    """Runs the enabled checks; keeps cumulative error counts across cycles (a counter metric)."""

    specs: Sequence[CheckSpec]
    severity_overrides: Mapping[str, Severity] = field(default_factory=dict)
    errors_total: dict[str, int] = field(default_factory=dict)
    _logged: set[str] = field(default_factory=set)

    def run(self, snapshot: Snapshot) -> tuple[list[Finding], list[CheckStatus]]:
        findings: list[Finding] = []
        statuses: list[CheckStatus] = []
        for spec in self.specs:
            start = time.perf_counter()
            try:
                produced = list(spec.fn(snapshot))
            except Exception as e:
                self.errors_total[spec.id] = self.errors_total.get(spec.id, 0) + 1
                msg = f"{type(e).__name__}: {e}"
                if spec.id not in self._logged:  # once per check until it recovers
                    self._logged.add(spec.id)
                    log.error("check_failed", check=spec.id, error=msg, exc_info=True)
                statuses.append(
                    CheckStatus(
                        spec.id,
                        ok=False,
                        duration_seconds=time.perf_counter() - start,
                        errors_total=self.errors_total[spec.id],
                        error=msg,
                    )
                )
                continue
            self._logged.discard(spec.id)
            override = self.severity_overrides.get(spec.id)
            if override is not None:
                produced = [dataclasses.replace(f, severity=override) for f in produced]
            findings.extend(produced)
            statuses.append(
                CheckStatus(
                    spec.id,
                    ok=True,
                    duration_seconds=time.perf_counter() - start,
                    errors_total=self.errors_total.get(spec.id, 0),
                )
            )
        return findings, statuses


def _container_state(c: Container) -> ContainerState:
    return ContainerState(
        runtime=c.runtime,
        namespace=c.namespace,
        pod=c.pod,
        name=c.name,
        id=c.id,
        image=c.image,
        read_only_rootfs=c.read_only_rootfs,
        capabilities_effective=c.observed.cap_effective if c.observed is not None else None,
    )


def _workload(snapshot: Snapshot, container_id: str) -> tuple[str, str, str]:
    """(namespace, pod, container) of a container id; the short id when no source declared it."""
    if not container_id:
        return "", "", ""
    for c in snapshot.containers:
        if c.id == container_id:
            return c.namespace, c.pod, c.name
    return "", "", container_id[:12]


def listener_states(snapshot: Snapshot) -> tuple[ListenerState, ...]:
    out = []
    for li in snapshot.listeners:
        ns, pod, name = _workload(snapshot, li.container_id)
        pr = li.probe
        out.append(
            ListenerState(
                namespace=ns,
                pod=pod,
                container=name,
                container_id=li.container_id,
                address=li.address,
                address_scope=li.scope.value,
                port=li.port,
                protocol=li.protocol,
                tls=li.tls.value,
                app_protocol=pr.protocol if pr else "",
                reason=pr.reason if pr else "",
                tls_version=pr.tls_version if pr else "",
                subject_cn=pr.cert_subject_cn if pr else "",
                not_after=pr.cert_not_after if pr else None,
                probe_duration_seconds=pr.duration_seconds if pr and pr.duration_seconds else None,
                process=li.comm,
                pid=li.pid,
            )
        )
    return tuple(out)


def flow_states(snapshot: Snapshot) -> tuple[FlowState, ...]:
    flows = network.attribute_flows(snapshot.flows, snapshot.namespaces, snapshot.listeners)
    out = []
    for f in flows:
        ns, pod, name = _workload(snapshot, f.container_id)
        out.append(FlowState(ns, pod, name, f.port, f.protocol, f.packets))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CycleResult:
    report: Report
    problems: tuple[str, ...]


def cycle(
    *,
    snapshot: Snapshot,
    runner: CheckRunner,
    rules: tuple[SuppressionRule, ...],
    known_checks: frozenset[str],
    sources: Sequence[SourceStatus],
    sinks: Sequence[SourceStatus] = (),
    cycles_total: int = 0,
) -> CycleResult:
    findings, statuses = runner.run(snapshot)
    outcome = suppression.apply(findings, snapshot, rules, known_checks)
    order = sorted(outcome.open, key=lambda f: (-f.severity, f.check, f.resource.identity(), f.id))
    report = Report(
        scan_id=uuid.uuid4().hex[:12],
        taken_at=snapshot.taken_at,
        node=snapshot.node.name,
        checks_enabled=tuple(s.id for s in runner.specs),
        findings=tuple(order),
        suppressed=tuple(sorted(outcome.suppressed, key=lambda f: (f.check, f.id))),
        containers=tuple(_container_state(c) for c in snapshot.containers),
        sources=tuple(sources),
        sinks=tuple(sinks),
        checks=tuple(statuses),
        cycles_total=cycles_total,
        listeners=listener_states(snapshot),
        flows=flow_states(snapshot),
        kube=kube_states.states(snapshot),
        baseline=drift.summary(snapshot, order),
    )
    return CycleResult(report, outcome.problems)
