"""privileged: a privileged container holds every capability and every device: it is root on the host."""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "privileged"


@check(ID, severity=Severity.CRITICAL, title="Container runs privileged")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    for c in snapshot.containers:
        if c.privileged:
            yield finding(
                ID,
                Severity.CRITICAL,
                c,
                snapshot,
                f"container {c.name} runs privileged",
                evidence={"privileged": "true"},
            )
