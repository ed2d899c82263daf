"""capabilities: dangerous added capabilities (high); not dropping ALL (low).

A privileged container is left to the `privileged` check: it holds every capability whatever it adds
or drops, and reporting it twice would be noise.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding, normalise_capability
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "capabilities"

# Docker's and containerd's default set (moby oci/caps/defaults.go): held unless dropped.
RUNTIME_DEFAULT_CAPABILITIES = frozenset(
    {
        "CHOWN",
        "DAC_OVERRIDE",
        "FSETID",
        "FOWNER",
        "MKNOD",
        "NET_RAW",
        "SETGID",
        "SETUID",
        "SETFCAP",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "KILL",
        "AUDIT_WRITE",
    }
)


@check(ID, severity=Severity.HIGH, title="Dangerous capabilities added, or ALL not dropped")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    dangerous = {normalise_capability(c) for c in snapshot.policy.dangerous_capabilities}
    for c in snapshot.containers:
        if c.privileged:
            continue
        o = c.observed
        added = {normalise_capability(x) for x in c.cap_add}
        evidence: dict[str, str] = {}
        if o is not None and (o.cap_bounding or o.cap_effective):
            # Runtime truth: what the process may hold, beyond the runtime's default set (which the
            # low "drop ALL" finding covers), plus whatever was explicitly added.
            held = {normalise_capability(x) for x in (*o.cap_bounding, *o.cap_effective)}
            added = (held - RUNTIME_DEFAULT_CAPABILITIES) | (added & held)
            evidence["observed_from"] = f"/proc/{o.pid}/status"
        bad = sorted(cap for cap in added if cap in dangerous)
        if bad:
            yield finding(
                ID,
                Severity.HIGH,
                c,
                snapshot,
                f"container {c.name} adds dangerous capabilities: {', '.join(bad)}",
                evidence={"added": ",".join(bad), **evidence},
                discriminator="added",
            )
        dropped = {normalise_capability(x) for x in c.cap_drop}
        if o is not None and o.cap_bounding == () and o.no_new_privs is not None:  # status was read
            dropped = {"ALL"}  # the bounding set is empty: nothing can be regained
        if "ALL" not in dropped:
            yield finding(
                ID,
                Severity.LOW,
                c,
                snapshot,
                f"container {c.name} does not drop ALL capabilities",
                evidence={"dropped": ",".join(sorted(dropped)) or "(none)"},
                discriminator="drop-all",
            )
