"""open-port: a listener nobody allowed: not in a config allowlist, not in the container's
`ztmon.io/allowed-ports` annotation or label, and not a published or exposed Docker port.

Loopback listeners are skipped unless `open_port_include_loopback`; the node's own listeners are
judged only once the configuration has at least one node rule (otherwise every sshd would be flagged).
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks import _net
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot
from ztmon.model.network import Scope

ID = "open-port"


@check(ID, severity=Severity.MEDIUM, title="Listening port not allowed")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    net = snapshot.policy.network
    by_id = _net.containers_by_id(snapshot)
    judge_node = any(r.node for r in net.allowed_ports)
    reported: set[tuple[str, str, int]] = set()
    for li in snapshot.listeners:
        if li.scope is Scope.LOOPBACK and not net.open_port_include_loopback:
            continue
        container = by_id.get(li.container_id)
        if not li.container_id and not judge_node:
            continue
        key = (li.netns, li.protocol, li.port)
        if key in reported or _net.allowed(li, container, snapshot):
            continue
        reported.add(key)
        yield Finding.make(
            check=ID,
            severity=Severity.MEDIUM,
            resource=_net.listener_resource(li, container, snapshot),
            message=f"{_net.where(li)} is listening but not allowed",
            evidence={**_net.evidence(li), "tls": li.tls.value},
            discriminator=f"{li.protocol}/{li.port}",
        )
