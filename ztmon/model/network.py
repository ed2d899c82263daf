"""Runtime truth seen from /proc and the wire: listening sockets, TLS probe results, process posture, flows.

Frozen value types only; the sources fill them, the checks read them. A listener is identified by its
network namespace, protocol, address and port; its socket inode tells a re-created listener from the old
one (the probe cache keys on it).
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from datetime import datetime


class Tls(enum.StrEnum):
    """What a listener speaks, as far as a probe can tell. Never plaintext on a timeout or a reset."""

    TLS = "tls"
    PLAINTEXT = "plaintext"
    UNKNOWN = "unknown"


class Scope(enum.StrEnum):
    """Who can reach a listener by its bind address."""

    ALL = "all"  # 0.0.0.0 or :: (every interface of its namespace)
    LOOPBACK = "loopback"  # 127.0.0.0/8 or ::1
    SPECIFIC = "specific"  # one interface address


def address_scope(address: str) -> Scope:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return Scope.SPECIFIC
    if ip.is_unspecified:
        return Scope.ALL
    if ip.is_loopback:
        return Scope.LOOPBACK
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return address_scope(str(ip.ipv4_mapped))
    return Scope.SPECIFIC


@dataclass(frozen=True, slots=True)
class ProbeResult:
    verdict: Tls
    protocol: str = ""  # tls | http | redis | postgres | smtp | imap | pop3 | ftp | ssh | ... ("" = unknown)
    reason: str = ""  # why unknown (timeout, reset, no-privilege, ...) or what was seen
    tls_version: str = ""  # TLSv1.2 / TLSv1.3 when a handshake completed
    client_cert_required: bool = False  # the server asked for or demanded a client certificate (mTLS)
    cert_subject_cn: str = ""
    cert_not_after: datetime | None = None
    duration_seconds: float = 0.0
    probed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Listener:
    """A TCP socket in LISTEN or a bound, unconnected UDP socket, in one network namespace."""

    netns: str  # namespace identity: "net:[4026531840]", or "cgroup:<container id>" when ns/net is unreadable
    protocol: str  # tcp | udp
    address: str  # bind address as text: "0.0.0.0", "::", "127.0.0.1", "10.1.2.3"
    port: int
    inode: int = 0  # socket inode; changes when the listener is re-created
    host_netns: bool = False  # in the node's own network namespace: belongs to the node
    container_id: str = ""  # the owning process's container; else the only container of the namespace
    container_ids: tuple[str, ...] = ()  # every container whose processes share the namespace
    pod_uid: str = ""
    pid: int = 0  # a process holding the socket (0 = not known: /proc/<pid>/fd unreadable)
    comm: str = ""
    probe: ProbeResult | None = None

    @property
    def scope(self) -> Scope:
        return address_scope(self.address)

    @property
    def tls(self) -> Tls:
        return self.probe.verdict if self.probe is not None else Tls.UNKNOWN

    def key(self) -> tuple[str, str, str, int]:
        return (self.netns, self.protocol, self.address, self.port)


@dataclass(frozen=True, slots=True)
class NetNamespace:
    """One network namespace on the node and who lives in it."""

    id: str
    pid: int  # a process inside it (to enter it or read its /proc/<pid>/net)
    host: bool = False
    container_ids: tuple[str, ...] = ()
    pod_uid: str = ""
    addresses: tuple[str, ...] = ()  # local non-loopback addresses (fib_trie / if_inet6)


@dataclass(frozen=True, slots=True)
class ProcessPosture:
    """What a container's main process really runs with, read from /proc/<pid>/status and mountinfo."""

    container_id: str
    pid: int
    cap_effective: tuple[str, ...] = ()  # upper case without CAP_, sorted
    cap_bounding: tuple[str, ...] = ()
    no_new_privs: bool | None = None  # None = the kernel did not say
    seccomp: int | None = None  # 0 disabled, 1 strict, 2 filter
    uids: tuple[int, ...] = ()  # real, effective, saved, filesystem
    rootfs_read_only: bool | None = None  # None = mountinfo unreadable or "/" not found

    @property
    def effective_uid(self) -> int | None:
        return self.uids[1] if len(self.uids) > 1 else None


@dataclass(frozen=True, slots=True)
class PlaintextFlow:
    """Plaintext payloads seen on the wire to one destination (kept in memory, never a metric label as is)."""

    dst_address: str
    dst_port: int
    protocol: str  # http | a configured signature's name
    packets: int  # cumulative since the agent started


@dataclass(frozen=True, slots=True)
class AttributedFlow:
    """A PlaintextFlow joined to the listener (and so the container) it was sent to."""

    container_id: str
    netns: str
    port: int
    protocol: str
    packets: int


def attribute_flows(
    flows: tuple[PlaintextFlow, ...], namespaces: tuple[NetNamespace, ...], listeners: tuple[Listener, ...]
) -> tuple[AttributedFlow, ...]:
    """Join each flow to the namespace owning its destination address and the listener on its port.

    Pure. A destination no namespace claims is attributed to nobody (container_id "") so it still counts.
    """
    ns_by_addr: dict[str, NetNamespace] = {}
    for ns in namespaces:
        for a in ns.addresses:
            ns_by_addr.setdefault(a, ns)
    by_port: dict[tuple[str, int], Listener] = {}
    for li in listeners:
        if li.protocol == "tcp":
            by_port.setdefault((li.netns, li.port), li)
    totals: dict[tuple[str, str, int, str], int] = {}
    for f in flows:
        owner = ns_by_addr.get(f.dst_address)
        netns = owner.id if owner is not None else ""
        listener = by_port.get((netns, f.dst_port))
        cid = listener.container_id if listener is not None else ""
        if not cid and owner is not None and len(owner.container_ids) == 1:
            cid = owner.container_ids[0]
        key = (cid, netns, f.dst_port, f.protocol)
        totals[key] = totals.get(key, 0) + f.packets
    return tuple(AttributedFlow(c, n, p, proto, k) for (c, n, p, proto), k in sorted(totals.items()))
