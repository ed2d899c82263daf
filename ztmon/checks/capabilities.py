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


@check(ID, severity=Severity.HIGH, title="Dangerous capabilities added, or ALL not dropped")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    dangerous = {normalise_capability(c) for c in snapshot.policy.dangerous_capabilities}
    for c in snapshot.containers:
        if c.privileged:
            continue
        added = sorted({normalise_capability(x) for x in c.cap_add})
        bad = [cap for cap in added if cap in dangerous]
        if bad:
            yield finding(
                ID,
                Severity.HIGH,
                c,
                snapshot,
                f"container {c.name} adds dangerous capabilities: {', '.join(bad)}",
                evidence={"added": ",".join(bad)},
                discriminator="added",
            )
        dropped = {normalise_capability(x) for x in c.cap_drop}
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
