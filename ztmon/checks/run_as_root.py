"""run-as-root: uid 0 in a container is uid 0 on the host unless user namespaces remap it."""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding, is_root_user
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "run-as-root"


@check(ID, severity=Severity.MEDIUM, title="Container runs as root")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    for c in snapshot.containers:
        o = c.observed
        if o is not None and o.effective_uid is not None:  # runtime truth beats the declaration
            if o.effective_uid == 0:
                yield finding(
                    ID,
                    Severity.MEDIUM,
                    c,
                    snapshot,
                    f"container {c.name} runs as root",
                    evidence={"uid": "0", "observed_from": f"/proc/{o.pid}/status"},
                )
            continue
        if c.run_as_non_root:
            continue  # Kubernetes refuses to start such a container as uid 0
        if c.user:
            user, origin = c.user, "container"
        else:
            user, origin = c.image_user, "image"
        if is_root_user(user):
            yield finding(
                ID,
                Severity.MEDIUM,
                c,
                snapshot,
                f"container {c.name} runs as root",
                evidence={"user": user or "(unset: root)", "user_from": origin},
            )
