"""Helpers shared by the container checks."""

from __future__ import annotations

from ztmon.model.baseline import is_root_user
from ztmon.model.findings import Finding, Resource, Severity
from ztmon.model.inventory import Container, Snapshot

__all__ = ["finding", "is_root_user", "normalise_capability", "resource_of"]


def resource_of(container: Container, snapshot: Snapshot) -> Resource:
    if container.workload_kind and not container.pod:  # a manifest: the workload is the resource
        return Resource(
            kind=container.workload_kind,
            namespace=container.namespace,
            name=container.workload_name,
            container=container.name,
            image=container.image,
            workload_kind=container.workload_kind,
            workload=container.workload_name,
            origin=container.origin,
        )
    if container.pod:
        return Resource(
            kind="Pod",
            namespace=container.namespace,
            name=container.pod,
            pod=container.pod,
            container=container.name,
            container_id=container.id,
            node=snapshot.node.name,
            image=container.image,
            workload_kind=container.workload_kind,
            workload=container.workload_name,
        )
    return Resource(
        kind="Container",
        namespace=container.namespace,
        name=container.name,
        container=container.name,
        container_id=container.id,
        node=snapshot.node.name,
        image=container.image,
    )


def finding(
    check: str,
    severity: Severity,
    container: Container,
    snapshot: Snapshot,
    message: str,
    *,
    evidence: dict[str, str] | None = None,
    discriminator: str = "",
) -> Finding:
    return Finding.make(
        check=check,
        severity=severity,
        resource=resource_of(container, snapshot),
        message=message,
        evidence=evidence,
        discriminator=discriminator,
    )


def normalise_capability(name: str) -> str:
    """`CAP_SYS_ADMIN`, `sys_admin` and `SYS_ADMIN` are one capability."""
    upper = name.strip().upper()
    return upper.removeprefix("CAP_")
