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

from ztmon.checks import suppression
from ztmon.checks.registry import CheckSpec
from ztmon.model.findings import (
    CheckStatus,
    ContainerState,
    Finding,
    Report,
    Severity,
    SourceStatus,
)
from ztmon.model.inventory import Container, Node, Snapshot, SourcePart
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


def build_snapshot(*, now: datetime, node_name: str, parts: Sequence[SourcePart], policy: Policy) -> Snapshot:
    containers: dict[tuple[str, str], Container] = {}
    for p in parts:
        for c in p.containers:
            containers.setdefault((c.runtime, c.id or c.name), c)
    return Snapshot(
        taken_at=now,
        node=merge_node(node_name, parts),
        containers=tuple(containers.values()),
        policy=policy,
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
    )


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
    )
    return CycleResult(report, outcome.problems)
