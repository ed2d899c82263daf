"""drift-port: a locked workload listens on a port its baseline does not list, or a listener changed.

Reads the listener inventory (`snapshot.listeners`, procfs/sock_diag sources). A listener belongs to the
container whose process holds it, else to the only container of its network namespace. IPv4 and IPv6
sockets on one port are one listener. A port not in the baseline is high (a bind shell looks exactly like
this); a listener that served TLS in the baseline and now speaks plaintext, or that was loopback-only and
is now reachable from outside, is medium; a listener that gained TLS is low. A workload whose baseline does
not record listeners (`listeners` absent) is not judged.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

from ztmon.checks.common import finding
from ztmon.checks.registry import check
from ztmon.model import drift
from ztmon.model.baseline import ListenerBaseline
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot
from ztmon.model.network import Listener, Scope, Tls, address_scope

ID = "drift-port"
_WIDTH = {Scope.LOOPBACK: 0, Scope.SPECIFIC: 1, Scope.ALL: 2}


scope_of = functools.lru_cache(maxsize=4096)(address_scope)  # a node has few distinct bind addresses


def _merge(a: Listener, b: Listener) -> Listener:
    """One port on 0.0.0.0 and :: is one listener: keep the widest scope and a known TLS verdict."""
    wider = a if _WIDTH[scope_of(a.address)] >= _WIDTH[scope_of(b.address)] else b
    if wider.tls is Tls.UNKNOWN and (a.tls is not Tls.UNKNOWN or b.tls is not Tls.UNKNOWN):
        return b if wider is a else a
    return wider


@check(ID, severity=Severity.HIGH, title="Listener not in the baseline, or its TLS or exposure changed")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    if snapshot.baseline is None or not snapshot.listeners:
        return
    by_container: dict[str, list[Listener]] = {}
    for li in snapshot.listeners:
        owner = drift.listener_owner(li)
        if owner:
            by_container.setdefault(owner, []).append(li)
    for j in drift.judged(snapshot):
        mine = by_container.get(j.container.id)
        if not mine:
            continue
        if j.workload is not None and j.workload.listeners is None:
            continue  # listeners not recorded for this workload
        recorded = j.workload.listeners if j.workload is not None else ()
        expected = {(lb.protocol, lb.port): lb for lb in recorded or ()}
        ports: dict[tuple[str, int], Listener] = {}
        for li in mine:
            key = (li.protocol, li.port)
            ports[key] = _merge(ports[key], li) if key in ports else li
        for key, li in sorted(ports.items()):
            want = expected.get(key)
            if want is None or want.tls is not None or want.scope is not None:
                yield from _judge(snapshot, j, li, want)


def _judge(snapshot: Snapshot, j: drift.Judged, li: Listener, want: ListenerBaseline | None) -> Iterator[Finding]:
    c = j.container
    what = f"{li.port}/{li.protocol}"
    evidence = {**j.evidence(), "port": str(li.port), "protocol": li.protocol, "address": li.address}
    if want is None:
        yield finding(
            ID,
            Severity.HIGH,
            c,
            snapshot,
            f"container {c.name} listens on {li.address}:{what}, not in the baseline ({j.where()})",
            evidence={**evidence, "tls": li.tls.value, "process": li.comm},
            discriminator=what,
        )
        return
    tls = li.tls
    if want.tls is True and tls is Tls.PLAINTEXT:
        yield finding(
            ID,
            Severity.MEDIUM,
            c,
            snapshot,
            f"container {c.name}: {what} speaks plaintext, the baseline has TLS",
            evidence={**evidence, "expected_tls": "true", "tls": tls.value},
            discriminator=f"{what}:tls",
        )
    elif want.tls is False and tls is Tls.TLS:
        yield finding(
            ID,
            Severity.LOW,
            c,
            snapshot,
            f"container {c.name}: {what} speaks TLS, the baseline has plaintext",
            evidence={**evidence, "expected_tls": "false", "tls": tls.value},
            discriminator=f"{what}:tls",
        )
    if want.scope is not None:
        expected_scope = Scope(want.scope)  # validated when the document was loaded
        scope = scope_of(li.address)
        if _WIDTH[scope] > _WIDTH[expected_scope]:
            yield finding(
                ID,
                Severity.MEDIUM,
                c,
                snapshot,
                f"container {c.name}: {what} now binds {li.address} ({scope.value}), the baseline has "
                f"{expected_scope.value}",
                evidence={**evidence, "expected_scope": expected_scope.value, "scope": scope.value},
                discriminator=f"{what}:scope",
            )
