"""privilege-escalation: without no-new-privileges a setuid binary can regain what was dropped."""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Container, Snapshot

ID = "privilege-escalation"


def _judge(c: Container) -> tuple[str, dict[str, str]] | None:
    """(why, evidence) when the container may gain privileges, else None. /proc NoNewPrivs beats the spec."""
    o = c.observed
    if o is not None and o.no_new_privs is not None:
        if o.no_new_privs:
            return None
        return "NoNewPrivs is 0", {"no_new_privileges": "false", "observed_from": f"/proc/{o.pid}/status"}
    if c.no_new_privileges:
        return None
    if c.runtime == "kubernetes":  # pod spec: allowPrivilegeEscalation (unset means true)
        return "allowPrivilegeEscalation is not false", {"allowPrivilegeEscalation": "not false"}
    return "no-new-privileges is not set", {"no_new_privileges": "false"}


@check(ID, severity=Severity.MEDIUM, title="Privilege escalation is allowed (no-new-privileges not set)")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    for c in snapshot.containers:
        judged = _judge(c)
        if judged is not None:
            why, evidence = judged
            yield finding(
                ID, Severity.MEDIUM, c, snapshot, f"container {c.name} may gain privileges ({why})", evidence=evidence
            )
