"""plaintext: a listener that accepts plaintext (TLS probe), or plaintext traffic seen on the wire; and the
configuration half (Ingress without TLS, mesh mTLS disabled) from `k8s_plaintext`.

High when reachable from other hosts or pods (any non-loopback bind), low on loopback: a loopback
listener is reachable only from inside its own network namespace.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks import _net, k8s_plaintext
from ztmon.checks.registry import check
from ztmon.model import network
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot
from ztmon.model.network import Scope, Tls

ID = "plaintext"


@check(ID, severity=Severity.HIGH, title="Listener accepts plaintext (no TLS)")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    by_id = _net.containers_by_id(snapshot)
    flows = network.attribute_flows(snapshot.flows, snapshot.namespaces, snapshot.listeners)
    seen_packets: dict[tuple[str, int], int] = {}
    for f in flows:
        seen_packets[(f.netns, f.port)] = seen_packets.get((f.netns, f.port), 0) + f.packets
    reported: set[tuple[str, int]] = set()
    for li in snapshot.listeners:
        if li.tls is not Tls.PLAINTEXT or li.probe is None:
            continue
        key = (li.netns, li.port)
        if key in reported:
            continue  # the same port on 0.0.0.0 and :: is one finding
        reported.add(key)
        container = by_id.get(li.container_id)
        severity = Severity.LOW if li.scope is Scope.LOOPBACK else Severity.HIGH
        proto = li.probe.protocol or "plaintext"
        evidence = {**_net.evidence(li), "app_protocol": proto, "probe": li.probe.reason}
        if key in seen_packets:
            evidence["plaintext_packets_seen"] = str(seen_packets[key])
        yield Finding.make(
            check=ID,
            severity=severity,
            resource=_net.listener_resource(li, container, snapshot),
            message=f"{_net.where(li)} accepts plaintext ({proto})"
            + (" on loopback only" if severity is Severity.LOW else ""),
            evidence=evidence,
            discriminator=f"{li.protocol}/{li.port}",
        )
    listeners_by_key = {(li.netns, li.port): li for li in snapshot.listeners if li.protocol == "tcp"}
    for f in flows:
        key = (f.netns, f.port)
        if key in reported:
            continue
        target = listeners_by_key.get(key)
        if target is None:
            continue  # traffic to nothing we list (another node, a closed port): no resource to name
        reported.add(key)
        container = by_id.get(target.container_id)
        yield Finding.make(
            check=ID,
            severity=Severity.MEDIUM,
            resource=_net.listener_resource(target, container, snapshot),
            message=f"plaintext {f.protocol} traffic seen to {_net.where(target)}",
            evidence={**_net.evidence(target), "app_protocol": f.protocol, "plaintext_packets_seen": str(f.packets)},
            discriminator=f"tcp/{f.port}",
        )
    yield from k8s_plaintext.findings(snapshot)
