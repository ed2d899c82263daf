"""Helpers shared by the network checks: a listener's workload, resource and allowlists. Pure."""

from __future__ import annotations

import fnmatch

from ztmon.checks.common import resource_of
from ztmon.model.findings import Resource
from ztmon.model.inventory import Container, Snapshot
from ztmon.model.network import Listener
from ztmon.model.policy import PortAllowRule

ALLOWED_PORTS_KEY = "ztmon.io/allowed-ports"


def containers_by_id(snapshot: Snapshot) -> dict[str, Container]:
    return {c.id: c for c in snapshot.containers if c.id}


def listener_resource(listener: Listener, container: Container | None, snapshot: Snapshot) -> Resource:
    """The container (or pod) owning the listener; the node for its own listeners."""
    if container is not None:
        return resource_of(container, snapshot)
    if listener.container_id:  # seen in /proc but not declared by any source
        return Resource(
            kind="Container",
            name=listener.container_id[:12],
            container=listener.container_id[:12],
            container_id=listener.container_id,
            node=snapshot.node.name,
        )
    return Resource(kind="Node", name=snapshot.node.name, node=snapshot.node.name, container=listener.comm)


def where(listener: Listener) -> str:
    addr = f"[{listener.address}]" if ":" in listener.address else listener.address
    return f"{addr}:{listener.port}/{listener.protocol}"


def evidence(listener: Listener) -> dict[str, str]:
    out = {
        "address": listener.address,
        "port": str(listener.port),
        "protocol": listener.protocol,
        "scope": listener.scope.value,
    }
    if listener.comm:
        out["process"] = f"{listener.comm} (pid {listener.pid})"
    if listener.host_netns:
        out["network_namespace"] = "host"
    return out


def parse_port_list(text: str) -> set[tuple[int, str]]:
    """ "8080/tcp, 9090/tcp,53/udp,8443" -> {(8080, "tcp"), ...}; odd items are ignored."""
    out = set()
    for raw in text.replace(";", ",").split(","):
        item = raw.strip().lower()
        if not item:
            continue
        port_s, _, proto = item.partition("/")
        if port_s.isdigit() and proto in {"", "tcp", "udp", "sctp"}:
            out.add((int(port_s), proto or "tcp"))
    return out


def _rule_matches(rule: PortAllowRule, listener: Listener, container: Container | None) -> bool:
    if rule.node:
        return container is None and not listener.container_id and fnmatch.fnmatchcase(listener.comm, rule.name)
    if container is None:
        return False
    if not fnmatch.fnmatchcase(container.namespace, rule.namespace):
        return False
    if not (fnmatch.fnmatchcase(container.name, rule.name) or fnmatch.fnmatchcase(container.pod, rule.name)):
        return False
    if not fnmatch.fnmatchcase(container.image, rule.image):
        return False
    return all(container.label(k) == v for k, v in rule.labels)


def allowed(listener: Listener, container: Container | None, snapshot: Snapshot) -> str:
    """Why the listener is allowed ("" = it is not)."""
    want = (listener.port, listener.protocol)
    net = snapshot.policy.network
    for rule in net.allowed_ports:
        if _rule_matches(rule, listener, container) and want in parse_port_list(",".join(rule.ports)):
            return "config allowlist"
    if container is not None:
        for source, pairs in (("annotation", container.annotations), ("label", container.labels)):
            for k, v in pairs:
                if k == ALLOWED_PORTS_KEY and want in parse_port_list(v):
                    return f"{source} {ALLOWED_PORTS_KEY}"
        if net.allow_declared_ports:
            if any(p.container_port == listener.port and p.protocol == listener.protocol for p in container.ports):
                return "published port"
            if f"{listener.port}/{listener.protocol}" in container.exposed_ports:
                return "exposed port"
    return ""
