"""readonly-rootfs: a writable root filesystem lets an intruder drop tools and persist in the image layer."""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "readonly-rootfs"


@check(ID, severity=Severity.MEDIUM, title="Root filesystem is writable")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    for c in snapshot.containers:
        o = c.observed
        if o is not None and o.rootfs_read_only is not None:  # runtime truth beats the declaration
            if not o.rootfs_read_only:
                yield finding(
                    ID,
                    Severity.MEDIUM,
                    c,
                    snapshot,
                    f"container {c.name} has a writable root filesystem",
                    evidence={"read_only_rootfs": "false", "observed_from": f"/proc/{o.pid}/mountinfo"},
                )
        elif not c.read_only_rootfs:
            yield finding(
                ID,
                Severity.MEDIUM,
                c,
                snapshot,
                f"container {c.name} has a writable root filesystem",
                evidence={"read_only_rootfs": "false"},
            )
