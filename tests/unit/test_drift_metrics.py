"""The drift metrics: rows computed once per cycle (model.drift.summary), rendered by the Prometheus sink."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.conftest import make_container
from tests.unit.drift_helpers import locked, workload
from ztmon.checks.registry import all_checks
from ztmon.engine import pipeline
from ztmon.model.baseline import (
    BaselineView,
    ChangeKind,
    ContainerBaseline,
    ContainerFsChanges,
    DocumentInfo,
    FilesystemBaseline,
    FsChange,
    Mode,
    WorkloadKey,
)
from ztmon.model.inventory import Node, SourcePart
from ztmon.model.policy import Policy
from ztmon.sinks.prometheus import PrometheusSink

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
COMPOSE = (("com.docker.compose.project", "shop"), ("com.docker.compose.service", "web"))
WEB1 = make_container(name="shop-web-1", id="1" * 64, labels=COMPOSE)
WEB2 = make_container(name="shop-web-2", id="2" * 64, labels=COMPOSE)
POD = make_container(
    name="app", id="3" * 64, namespace="prod", pod="api-x", workload_kind="Deployment", workload_name="api"
)


def samples(view: BaselineView | None, fs: tuple[ContainerFsChanges, ...] = ()) -> dict[str, list[tuple[dict, float]]]:
    parts = [SourcePart(containers=(WEB1, WEB2, POD), node=Node(name="n1")), SourcePart(baseline=view, fs_changes=fs)]
    snap = pipeline.build_snapshot(now=NOW, node_name="n1", parts=parts, policy=Policy())
    specs = [s for k, s in all_checks().items() if k.startswith("drift-")]
    result = pipeline.cycle(
        snapshot=snap,
        runner=pipeline.CheckRunner(specs),
        rules=(),
        known_checks=frozenset(all_checks()),
        sources=(),
    )
    sink = PrometheusSink(registry=CollectorRegistry(auto_describe=False), process_metrics=False)
    asyncio.run(sink.publish(result.report))
    out: dict[str, list[tuple[dict, float]]] = {}
    for fam in text_string_to_metric_families(sink.report_body().decode()):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


FS = (
    ContainerFsChanges(
        container_id=WEB1.id,
        changes=(FsChange("/etc/x", ChangeKind.ADDED), FsChange("/tmp/y", ChangeKind.ADDED)),
        added=3,
        changed=1,
    ),
)


def test_no_baseline_no_drift_families() -> None:
    got = samples(None)
    assert "ztmon_drift" not in got
    assert "ztmon_baseline_mode" not in got


def test_fs_changes_without_baseline_still_exported() -> None:
    got = samples(None, FS)
    assert ({"namespace": "shop", "workload": "web", "container": "shop-web-1", "kind": "added"}, 3.0) in got[
        "ztmon_container_fs_changes"
    ]
    assert "ztmon_baseline_mode" not in got


def test_drift_modes_info_and_reload_state() -> None:
    view = locked(
        workload("web", ContainerBaseline("web", filesystem=FilesystemBaseline(("/tmp",))), namespace="shop"),
        learning=(WorkloadKey("prod", "Deployment/api"),),
        documents=(DocumentInfo("/etc/ztmon/baseline.yaml", "ab" * 32),),
        reload_ok=False,
        reload_failures_total=2,
    )
    got = samples(view, FS)
    drift = got["ztmon_drift"]
    # shop-web-1 wrote /etc/x outside /tmp; images and settings are not recorded, so not judged
    assert (
        {"check": "drift-filesystem", "namespace": "shop", "workload": "web", "container": "shop-web-1"},
        1.0,
    ) in drift
    assert len(drift) == 1  # learning: not judged
    modes = {(labels["namespace"], labels["workload"]): v for labels, v in got["ztmon_baseline_mode"]}
    assert modes == {("shop", "web"): 1.0, ("prod", "Deployment/api"): 0.0}
    assert got["ztmon_baseline_info"] == [({"source": "/etc/ztmon/baseline.yaml", "sha256": "ab" * 32}, 1.0)]
    assert got["ztmon_baseline_last_reload_successful"] == [({}, 0.0)]
    assert got["ztmon_baseline_reload_failures_total"] == [({}, 2.0)]
    fs = {(labels["container"], labels["kind"]): v for labels, v in got["ztmon_container_fs_changes"]}
    assert fs == {("shop-web-1", "added"): 3.0, ("shop-web-1", "changed"): 1.0, ("shop-web-1", "deleted"): 0.0}


def test_kubernetes_container_label_is_pod_and_container() -> None:
    view = locked(unknown=Mode.LOCKED)
    got = samples(view)
    containers = {labels["container"] for labels, _ in got["ztmon_drift"]}
    assert "api-x/app" in containers  # unique per node even when replicas share a workload
    assert {"shop-web-1", "shop-web-2"} <= containers
