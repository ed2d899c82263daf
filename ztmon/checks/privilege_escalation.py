"""privilege-escalation: without no-new-privileges a setuid binary can regain what was dropped."""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "privilege-escalation"


@check(ID, severity=Severity.MEDIUM, title="Privilege escalation is allowed (no-new-privileges not set)")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    for c in snapshot.containers:
        if not c.no_new_privileges:
            yield finding(
                ID,
                Severity.MEDIUM,
                c,
                snapshot,
                f"container {c.name} may gain privileges (no-new-privileges is not set)",
                evidence={"no_new_privileges": "false"},
            )
