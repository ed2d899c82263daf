"""Joins the live inventory to the baseline: a container's workload identity, its security settings as a
baseline would record them, and the rows the metrics show. Pure.

Workload identity:
* Kubernetes: namespace + owning workload ("Deployment/web"), from the kube source's owner resolution;
  without it, the pod ("Pod/web-7d9f-x2k4q", pod labels io.kubernetes.pod.namespace/name).
* Docker Compose: project + service (labels com.docker.compose.project/service); replicas share it.
* Plain Docker: "" + the container name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ztmon.model.baseline import (
    BaselineSummary,
    BaselineView,
    ChangeKind,
    ContainerBaseline,
    Mode,
    SecurityBaseline,
    WorkloadBaseline,
    WorkloadKey,
    WorkloadRef,
    modes_of,
)
from ztmon.model.findings import Finding
from ztmon.model.inventory import Container, Snapshot
from ztmon.model.network import Listener

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
DRIFT_CHECKS = frozenset({"drift-config", "drift-filesystem", "drift-image", "drift-node", "drift-port"})
_HOST_MOUNT_TYPES = frozenset({"bind", "hostPath"})


def workload_of(c: Container) -> WorkloadRef:
    if c.pod or c.workload_name:
        if c.workload_name:
            workload = f"{c.workload_kind}/{c.workload_name}" if c.workload_kind else c.workload_name
        else:
            workload = f"Pod/{c.pod}"
        return WorkloadRef(c.namespace, workload, c.name)
    project, service = c.label(COMPOSE_PROJECT), c.label(COMPOSE_SERVICE)
    if project and service:
        return WorkloadRef(project, service, service)
    return WorkloadRef(c.namespace, c.name, c.name)


def instance_of(c: Container) -> str:
    """The `container` label: unique on a node (replicas of one workload differ here)."""
    return f"{c.pod}/{c.name}" if c.pod else c.name


def listener_owner(li: Listener) -> str:
    """The container id a listener belongs to: its process's, else one of its namespace's (a pod's containers
    share one namespace and one workload: the lowest id stands for them, the same one every time)."""
    if li.container_id:
        return li.container_id
    return min(li.container_ids, default="")


def security_of(c: Container) -> SecurityBaseline:
    """Everything a learned baseline records about a container's posture."""
    return SecurityBaseline(
        privileged=c.privileged,
        read_only_rootfs=c.read_only_rootfs,
        user=c.user,
        run_as_non_root=c.run_as_non_root,
        no_new_privileges=c.no_new_privileges,
        cap_add=tuple(sorted(set(c.cap_add))),
        cap_drop=tuple(sorted(set(c.cap_drop))),
        host_network=c.host_network,
        host_pid=c.host_pid,
        host_ipc=c.host_ipc,
        host_mounts=tuple(
            sorted(
                {
                    f"{m.source}:{m.destination}:{'ro' if m.read_only else 'rw'}"
                    for m in c.mounts
                    if m.type in _HOST_MOUNT_TYPES
                }
            )
        ),
        published_ports=tuple(
            sorted({f"{p.host_ip or '*'}:{p.host_port}->{p.container_port}/{p.protocol}" for p in c.ports})
        ),
    )


@dataclass(frozen=True, slots=True)
class Judged:
    """A container of a locked workload and what its baseline says (None: nothing recorded, all is drift)."""

    container: Container
    ref: WorkloadRef
    workload: WorkloadBaseline | None
    baseline: ContainerBaseline | None

    def where(self) -> str:
        if self.workload is None:
            return f"workload {self.ref.key} has no baseline"
        if self.baseline is None:
            return f"container {self.ref.container} is not in the baseline of {self.ref.key}"
        return f"baseline of {self.ref.key}"

    def evidence(self) -> dict[str, str]:
        return {"namespace": self.ref.namespace, "workload": self.ref.workload, "container": self.ref.container}


# The four container drift checks of one cycle share one judgement of the same Snapshot. The last Snapshot
# is kept until the next one arrives (a cycle holds it anyway); a check never sees another cycle's result.
_last: tuple[Snapshot | None, tuple[Judged, ...]] = (None, ())


def judged(snapshot: Snapshot) -> tuple[Judged, ...]:
    """The containers whose workload is locked, each with its baseline entry. Nothing without a baseline."""
    global _last  # noqa: PLW0603 - a one-entry memo keyed by identity, see above
    view = snapshot.baseline
    if view is None:
        return ()
    last, result = _last
    if last is snapshot:
        return result
    out: list[Judged] = []
    for c in snapshot.containers:
        ref = workload_of(c)
        key = WorkloadKey(ref.namespace, ref.workload)
        if view.mode(key) is not Mode.LOCKED:
            continue
        wb = view.baseline.workload(key)
        out.append(Judged(c, ref, wb, wb.container(ref.container) if wb is not None else None))
    result = tuple(out)
    _last = (snapshot, result)
    return result


def summary(snapshot: Snapshot, findings: Iterable[Finding]) -> BaselineSummary | None:
    """The metrics' rows for one cycle; None when neither a baseline nor writable-layer data is present."""
    view: BaselineView | None = snapshot.baseline
    if view is None and not snapshot.fs_changes:
        return None
    by_id: dict[str, tuple[WorkloadRef, str]] = {
        c.id: (workload_of(c), instance_of(c)) for c in snapshot.containers if c.id
    }
    drift: dict[tuple[str, str, str, str], int] = {}
    for f in findings:
        if f.check not in DRIFT_CHECKS:
            continue
        known = by_id.get(f.resource.container_id)
        key = (f.check, known[0].namespace, known[0].workload, known[1]) if known else (f.check, "", "", "")
        drift[key] = drift.get(key, 0) + 1
    fs: dict[tuple[str, str, str, str], int] = {}
    for changes in snapshot.fs_changes:
        known = by_id.get(changes.container_id)
        if known is None:
            continue  # the container is gone: its series go with it
        ref, instance = known
        for kind in ChangeKind:
            k = (ref.namespace, ref.workload, instance, kind.value)
            fs[k] = fs.get(k, 0) + changes.count(kind)
    if view is None:
        return BaselineSummary(fs_changes=tuple(sorted(fs.items())))
    return BaselineSummary(
        active=True,
        documents=view.documents,
        reload_ok=view.reload_ok,
        reload_failures_total=view.reload_failures_total,
        modes=modes_of(view, (ref.key for ref, _ in by_id.values())),
        node_mode=view.node_mode,
        drift=tuple(sorted(drift.items())),
        fs_changes=tuple(sorted(fs.items())),
    )
