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
        o = c.observed
        if o is not None and o.no_new_privs is not None:  # runtime truth beats the declaration
            if not o.no_new_privs:
                yield finding(
                    ID,
                    Severity.MEDIUM,
                    c,
                    snapshot,
                    f"container {c.name} may gain privileges (NoNewPrivs is 0)",
                    evidence={"no_new_privileges": "false", "observed_from": f"/proc/{o.pid}/status"},
                )
            continue
        if not c.no_new_privileges:
            kube = c.runtime == "kubernetes"  # pod spec: allowPrivilegeEscalation (unset means true)
            yield finding(
                ID,
                Severity.MEDIUM,
                c,
                snapshot,
                f"container {c.name} may gain privileges "
                + ("(allowPrivilegeEscalation is not false)" if kube else "(no-new-privileges is not set)"),
                evidence={"allowPrivilegeEscalation": "not false"} if kube else {"no_new_privileges": "false"},
            )
