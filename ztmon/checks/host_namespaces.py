"""host-namespaces: sharing the host's network, PID or IPC namespace removes that isolation."""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "host-namespaces"


@check(ID, severity=Severity.HIGH, title="Container shares a host namespace (network, pid, ipc)")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    for c in snapshot.containers:
        shared = [name for name, on in (("network", c.host_network), ("pid", c.host_pid), ("ipc", c.host_ipc)) if on]
        for ns in shared:
            yield finding(
                ID,
                Severity.HIGH,
                c,
                snapshot,
                f"container {c.name} shares the host {ns} namespace",
                evidence={"namespace": ns},
                discriminator=ns,
            )
