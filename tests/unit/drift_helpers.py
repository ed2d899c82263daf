"""Shared by the drift unit tests: a snapshot with a baseline view, and one check's findings over it."""

from __future__ import annotations

import dataclasses
from typing import Any

from tests.unit.conftest import make_snapshot
from ztmon.checks.registry import all_checks
from ztmon.model.baseline import (
    Baseline,
    BaselineView,
    ContainerBaseline,
    Mode,
    WorkloadBaseline,
    WorkloadKey,
)
from ztmon.model.findings import Finding
from ztmon.model.inventory import Container, Snapshot

DIGEST1 = "sha256:" + "1" * 64
DIGEST2 = "sha256:" + "2" * 64


def locked(*workloads: WorkloadBaseline, learning: tuple[WorkloadKey, ...] = (), **view: Any) -> BaselineView:
    """A view where the given workloads are locked; unseen workloads are locked too (strict) unless said."""
    view.setdefault("unknown", Mode.LOCKED)
    return BaselineView(baseline=Baseline(workloads=workloads), learning=frozenset(learning), **view)


def workload(name: str, *containers: ContainerBaseline, namespace: str = "", **kw: Any) -> WorkloadBaseline:
    return WorkloadBaseline(namespace=namespace, workload=name, containers=containers, **kw)


def snapshot(*containers: Container, view: BaselineView | None, **extra: Any) -> Snapshot:
    return dataclasses.replace(make_snapshot(*containers), baseline=view, **extra)


def run(check_id: str, snap: Snapshot) -> list[Finding]:
    return list(all_checks()[check_id].fn(snap))
