"""Helpers shared by the checks on Kubernetes objects: resources that name the object or its workload."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ztmon.model.findings import Resource
from ztmon.model.inventory import Snapshot
from ztmon.model.kube import Workload


def object_resource(kind: str, namespace: str, name: str, origin: str = "") -> Resource:
    """A finding about the object itself (Secret, ClusterRoleBinding, Ingress, PeerAuthentication, ...)."""
    return Resource(kind=kind, namespace=namespace, name=name, origin=origin)


def workload_resource(w: Workload, snapshot: Snapshot) -> Resource:
    """The workload (offline, cluster scan) or the running pod with its workload (node agent)."""
    if w.pod and not snapshot.kube.offline:
        return Resource(
            kind="Pod",
            namespace=w.namespace,
            name=w.pod,
            pod=w.pod,
            node=w.node or snapshot.node.name,
            workload_kind=w.kind,
            workload=w.name,
        )
    return Resource(
        kind=w.kind, namespace=w.namespace, name=w.name, workload_kind=w.kind, workload=w.name, origin=w.origin
    )


def distinct_workloads(snapshot: Snapshot, *, per_pod: bool = False) -> Iterator[Workload]:
    """Workloads once each: replicas of one Deployment seen as pods count once unless `per_pod`."""
    seen: set[tuple[str, ...]] = set()
    for w in snapshot.kube.workloads:
        key = (w.kind, w.namespace, w.name, w.pod if per_pod else "")
        if key not in seen:
            seen.add(key)
            yield w


def ref(namespace: str, name: str) -> str:
    """`ns/name`, or `name` for cluster-scoped objects and manifests without a namespace."""
    return f"{namespace}/{name}" if namespace else name


def listing(names: Iterable[str], limit: int = 5) -> str:
    """`a, b, c and 4 more`: bounded, for messages."""
    items = sorted(set(names))
    head = ", ".join(items[:limit])
    return head + (f" and {len(items) - limit} more" if len(items) > limit else "")
