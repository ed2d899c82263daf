"""run-as-root: uid 0 in a container is uid 0 on the host unless user namespaces remap it."""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding, is_root_user
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Container, Snapshot

ID = "run-as-root"


def _evidence(c: Container) -> dict[str, str] | None:
    """Evidence that the container runs as uid 0, or None. The /proc effective uid beats the declaration."""
    o = c.observed
    if o is not None and o.effective_uid is not None:
        return {"uid": "0", "observed_from": f"/proc/{o.pid}/status"} if o.effective_uid == 0 else None
    if c.run_as_non_root:
        return None  # Kubernetes refuses to start such a container as uid 0
    user, origin = (c.user, "container") if c.user else (c.image_user, "image")
    return {"user": user or "(unset: root)", "user_from": origin} if is_root_user(user) else None


@check(ID, severity=Severity.MEDIUM, title="Container runs as root")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    for c in snapshot.containers:
        evidence = _evidence(c)
        if evidence is not None:
            yield finding(ID, Severity.MEDIUM, c, snapshot, f"container {c.name} runs as root", evidence=evidence)
