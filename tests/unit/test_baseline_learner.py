"""The learning -> locked state machine, driven by Snapshots whose `taken_at` is the injected clock."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from tests.unit.conftest import NOW, make_container, make_snapshot
from ztmon.engine import baselines
from ztmon.model.baseline import (
    Baseline,
    ChangeKind,
    ContainerFsChanges,
    DocumentInfo,
    FilesystemBaseline,
    FsChange,
    ImageBaseline,
    ListenerBaseline,
    Mode,
    NodeBaseline,
    WorkloadBaseline,
    WorkloadKey,
)
from ztmon.model.inventory import Container, Node, Snapshot
from ztmon.model.network import Listener, NetNamespace, ProbeResult, Tls

WINDOW = timedelta(minutes=10)
WEB = WorkloadKey("", "web")
DIGEST = "sha256:" + "ab" * 32


def snap(*containers: Container, at: timedelta = timedelta(0), **extra: object) -> Snapshot:
    return dataclasses.replace(make_snapshot(*containers, taken_at=NOW + at), **extra)  # type: ignore[arg-type]


def learner(window: timedelta = WINDOW, **kw: object) -> baselines.Learner:
    return baselines.Learner(window=window, **kw)  # type: ignore[arg-type]


def test_new_workload_learns_for_the_window_then_locks() -> None:
    lrn = learner()
    web = make_container(name="web", image_digest=DIGEST)
    assert lrn.observe(snap(web))  # first seen: a change (new learning workload)
    assert lrn.view("node-1").mode(WEB) is Mode.LEARNING
    assert lrn.next_deadline() == NOW + WINDOW
    assert not lrn.observe(snap(web, at=WINDOW - timedelta(seconds=1)))
    assert lrn.view("node-1").mode(WEB) is Mode.LEARNING
    assert lrn.observe(snap(web, at=WINDOW))  # the window has passed: locked
    view = lrn.view("node-1")
    assert view.mode(WEB) is Mode.LOCKED
    locked = view.baseline.workload(WEB)
    assert locked is not None
    c = locked.container("web")
    assert c is not None
    assert c.images == (ImageBaseline(web.image, (DIGEST,)),)
    assert c.security.read_only_rootfs is True
    assert lrn.next_deadline() is None


def test_a_locked_baseline_does_not_grow() -> None:
    lrn = learner(window=timedelta(0))
    lrn.observe(snap(make_container(name="web", image="web:1")))
    lrn.observe(snap(make_container(name="web", image="web:2"), at=timedelta(minutes=1)))
    locked = lrn.view("n").baseline.workload(WEB)
    assert locked is not None
    c = locked.container("web")
    assert c is not None
    assert c.images is not None
    assert [i.reference for i in c.images] == ["web:1"]


def test_the_baseline_grows_while_learning() -> None:
    lrn = learner()
    lrn.observe(snap(make_container(name="web", image="web:1", image_digest=DIGEST)))
    lrn.observe(snap(make_container(name="web", image="web:2"), at=timedelta(minutes=5)))
    lrn.observe(snap(at=WINDOW))  # the workload is gone; it still locks at its deadline
    locked = lrn.view("n").baseline.workload(WEB)
    assert locked is not None
    c = locked.container("web")
    assert c is not None
    assert c.images == (ImageBaseline("web:1", (DIGEST,)), ImageBaseline("web:2", ()))


def test_workloads_each_have_their_own_window() -> None:
    lrn = learner()
    lrn.observe(snap(make_container(name="web")))
    lrn.observe(snap(make_container(name="web"), make_container(name="db", id="d" * 64), at=timedelta(minutes=8)))
    lrn.observe(snap(at=WINDOW))
    view = lrn.view("n")
    assert view.mode(WEB) is Mode.LOCKED
    assert view.mode(WorkloadKey("", "db")) is Mode.LEARNING
    assert lrn.next_deadline() == NOW + timedelta(minutes=18)


def test_document_workloads_are_locked_and_never_learn() -> None:
    lrn = learner()
    doc = Baseline(workloads=(WorkloadBaseline("", "web"),))
    lrn.set_document(baselines.Document(doc, DocumentInfo("b.yaml", "f" * 64)))
    lrn.observe(snap(make_container(name="web")))
    view = lrn.view("node-1")
    assert view.mode(WEB) is Mode.LOCKED
    assert view.baseline.workload(WEB) == doc.workloads[0]
    assert view.documents == (DocumentInfo("b.yaml", "f" * 64),)


def test_a_new_document_takes_over_a_learning_workload() -> None:
    lrn = learner()
    lrn.observe(snap(make_container(name="web")))
    assert lrn.view("n").mode(WEB) is Mode.LEARNING
    lrn.set_document(baselines.Document(Baseline(workloads=(WorkloadBaseline("", "web"),)), DocumentInfo("b", "1")))
    assert lrn.view("n").mode(WEB) is Mode.LOCKED


def test_strict_mode_learns_nothing_and_unknown_is_locked() -> None:
    lrn = learner(unknown=Mode.LOCKED, learn_unknown=False)
    assert not lrn.observe(snap(make_container(name="web")))
    view = lrn.view("n")
    assert view.mode(WEB) is Mode.LOCKED
    assert view.baseline.workload(WEB) is None


def test_compose_replicas_are_one_workload() -> None:
    labels = (("com.docker.compose.project", "shop"), ("com.docker.compose.service", "web"))
    lrn = learner(window=timedelta(0))
    lrn.observe(
        snap(
            make_container(name="shop-web-1", id="1" * 64, labels=labels),
            make_container(name="shop-web-2", id="2" * 64, labels=labels),
        )
    )
    b = lrn.view("n").baseline
    assert [w.key for w in b.workloads] == [WorkloadKey("shop", "web")]
    assert [c.name for c in b.workloads[0].containers] == ["web"]


def test_kubernetes_workload_from_owner_else_pod() -> None:
    lrn = learner(window=timedelta(0))
    lrn.observe(
        snap(
            make_container(
                name="app",
                id="1" * 64,
                namespace="prod",
                pod="web-7d-x",
                workload_kind="Deployment",
                workload_name="web",
            ),
            make_container(name="app", id="2" * 64, namespace="prod", pod="lonely"),
        )
    )
    keys = {w.key for w in lrn.view("n").baseline.workloads}
    assert keys == {WorkloadKey("prod", "Deployment/web"), WorkloadKey("prod", "Pod/lonely")}


def fs(cid: str, *changes: FsChange) -> ContainerFsChanges:
    return ContainerFsChanges(container_id=cid, changes=changes)


def test_filesystem_allowances_learned() -> None:
    web = make_container(name="web")
    lrn = learner(window=timedelta(0))
    lrn.observe(
        snap(
            web,
            fs_changes=(
                fs(
                    web.id,
                    FsChange("/tmp/x.123", ChangeKind.ADDED),  # scratch dir: the directory
                    FsChange("/var/cache/app/blob", ChangeKind.ADDED),  # depth >= 2: the parent
                    FsChange("/etc/app.conf", ChangeKind.ADDED),  # /etc is too broad: exactly this file
                    FsChange("/etc/passwd", ChangeKind.CHANGED),  # an existing file: exactly this
                    FsChange("/var/log/app", ChangeKind.ADDED, count=500),  # collapsed directory: itself
                    FsChange("/tmp/tool", ChangeKind.ADDED, executable="mode 0755", probed=True),
                ),
            ),
        )
    )
    locked = lrn.view("n").baseline.workload(WEB)
    assert locked is not None
    c = locked.container("web")
    assert c is not None
    assert c.filesystem == FilesystemBaseline(
        allowed_paths=("/etc/app.conf", "/etc/passwd", "/tmp", "/var/cache/app", "/var/log/app"),
        allowed_executables=("/tmp/tool",),
    )


def test_filesystem_not_recorded_without_writable_layer_data() -> None:
    lrn = learner(window=timedelta(0))
    lrn.observe(snap(make_container(name="web")))
    locked = lrn.view("n").baseline.workload(WEB)
    assert locked is not None
    c = locked.container("web")
    assert c is not None
    assert c.filesystem is None


def listener(cid: str, port: int, *, address: str = "0.0.0.0", tls: Tls | None = None) -> Listener:
    probe = ProbeResult(verdict=tls) if tls is not None else None
    return Listener(netns="net:[1]", protocol="tcp", address=address, port=port, container_id=cid, probe=probe)


def test_listeners_learned_with_tls_and_widest_scope() -> None:
    web = make_container(name="web")
    lrn = learner()
    lrn.observe(snap(web, listeners=(listener(web.id, 8080, address="127.0.0.1", tls=Tls.TLS),)))
    lrn.observe(snap(web, at=timedelta(minutes=1), listeners=(listener(web.id, 8080), listener(web.id, 9090))))
    lrn.observe(snap(at=WINDOW))
    locked = lrn.view("n").baseline.workload(WEB)
    assert locked is not None
    assert locked.listeners == (
        ListenerBaseline(8080, "tcp", tls=True, scope="all"),  # TLS from the probe that knew, widest scope
        ListenerBaseline(9090, "tcp", tls=None, scope="all"),
    )


def test_listeners_not_recorded_without_a_listener_inventory() -> None:
    lrn = learner(window=timedelta(0))
    lrn.observe(snap(make_container(name="web")))
    locked = lrn.view("n").baseline.workload(WEB)
    assert locked is not None
    assert locked.listeners is None


def test_no_listeners_recorded_as_none_when_the_inventory_is_there() -> None:
    lrn = learner(window=timedelta(0))
    lrn.observe(snap(make_container(name="web"), namespaces=(NetNamespace(id="net:[1]", pid=1, host=True),)))
    locked = lrn.view("n").baseline.workload(WEB)
    assert locked is not None
    assert locked.listeners == ()


def test_node_learns_then_locks_keeping_values_a_source_missed() -> None:
    lrn = learner()
    node = Node(name="node-1", kernel="6.1.0", os_image="Debian 12", runtime_version="docker://20.10")
    lrn.observe(snap(node=node))
    assert lrn.view("node-1").node_mode is Mode.LEARNING
    lrn.observe(snap(node=dataclasses.replace(node, runtime_version=""), at=WINDOW))
    view = lrn.view("node-1")
    assert view.node_mode is Mode.LOCKED
    assert view.baseline.node("node-1") == NodeBaseline("node-1", "Debian 12", "6.1.0", "docker://20.10")


def test_node_in_the_document_is_locked_at_once() -> None:
    lrn = learner()
    lrn.set_document(baselines.Document(Baseline(nodes=(NodeBaseline(kernel="6.*"),)), DocumentInfo("b", "1")))
    lrn.observe(snap(node=Node(name="node-1", kernel="6.1")))
    assert lrn.view("node-1").node_mode is Mode.LOCKED


def test_learned_workloads_gone_long_enough_are_forgotten() -> None:
    lrn = learner(window=timedelta(0), forget_after=timedelta(days=1))
    lrn.observe(snap(make_container(name="web")))
    lrn.observe(snap(at=timedelta(hours=23)))
    assert lrn.view("n").baseline.workload(WEB) is not None
    assert lrn.observe(snap(at=timedelta(days=1, seconds=1)))
    assert lrn.view("n").baseline.workload(WEB) is None


def test_restore_learned_state() -> None:
    lrn = learner()
    lrn.restore(Baseline(workloads=(WorkloadBaseline("", "web"),), nodes=(NodeBaseline("node-1", kernel="6.1"),)))
    view = lrn.view("node-1")
    assert view.mode(WEB) is Mode.LOCKED
    assert view.node_mode is Mode.LOCKED


def test_everything_includes_what_is_still_learning() -> None:
    lrn = baselines.Learner(window=None)
    node = Node(name="n", kernel="6.1")
    lrn.observe(snap(make_container(name="web"), node=node))
    lrn.observe(snap(make_container(name="web"), node=node, at=timedelta(days=365)))
    assert lrn.view("n").mode(WEB) is Mode.LEARNING  # None: never locks
    everything = lrn.everything()
    assert [w.key for w in everything.workloads] == [WEB]
    assert everything.nodes == (NodeBaseline("n", kernel="6.1"),)
