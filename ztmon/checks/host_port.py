"""host-port: a container port published on every host interface (Docker `-p 8080:80`, hostPort), or a
host-network container listening on all of the node's interfaces. Either exposes it beyond the cluster
network; bind to one host address (or use a Service) instead.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks import _net
from ztmon.checks.common import finding
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot
from ztmon.model.network import Scope

ID = "host-port"
_ALL = frozenset({"", "0.0.0.0", "::"})


@check(ID, severity=Severity.MEDIUM, title="Port published on all host interfaces")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    reported: set[tuple[str, str, int]] = set()
    for c in snapshot.containers:
        for p in c.ports:
            if p.host_ip not in _ALL or not p.host_port:
                continue
            key = (c.id or c.name, p.protocol, p.host_port)
            if key in reported:
                continue  # 0.0.0.0 and :: bindings of one port
            reported.add(key)
            yield finding(
                ID,
                Severity.MEDIUM,
                c,
                snapshot,
                f"container {c.name} publishes {p.container_port}/{p.protocol} on every host interface "
                f"as port {p.host_port}",
                evidence={
                    "host_ip": p.host_ip or "(all)",
                    "host_port": str(p.host_port),
                    "container_port": f"{p.container_port}/{p.protocol}",
                },
                discriminator=f"{p.protocol}/{p.host_port}",
            )
    by_id = _net.containers_by_id(snapshot)
    for li in snapshot.listeners:
        if not (li.host_netns and li.container_id and li.scope is Scope.ALL):
            continue
        container = by_id.get(li.container_id)
        key = (li.container_id if container is None else (container.id or container.name), li.protocol, li.port)
        if key in reported:
            continue
        reported.add(key)
        yield Finding.make(
            check=ID,
            severity=Severity.MEDIUM,
            resource=_net.listener_resource(li, container, snapshot),
            message=f"host-network container listens on every node interface: {_net.where(li)}",
            evidence={**_net.evidence(li), "observed": "listener in the node's network namespace (/proc)"},
            discriminator=f"{li.protocol}/{li.port}",
        )
