"""readonly-rootfs: a writable root filesystem lets an intruder drop tools and persist in the image layer."""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Container, Snapshot

ID = "readonly-rootfs"


def _evidence(c: Container) -> dict[str, str] | None:
    """Evidence of a writable root, or None. Runtime truth (/proc mountinfo) beats the declaration."""
    o = c.observed
    if o is not None and o.rootfs_read_only is not None:
        if o.rootfs_read_only:
            return None
        return {"read_only_rootfs": "false", "observed_from": f"/proc/{o.pid}/mountinfo"}
    return None if c.read_only_rootfs else {"read_only_rootfs": "false"}


@check(ID, severity=Severity.MEDIUM, title="Root filesystem is writable")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    for c in snapshot.containers:
        evidence = _evidence(c)
        if evidence is not None:
            yield finding(
                ID,
                Severity.MEDIUM,
                c,
                snapshot,
                f"container {c.name} has a writable root filesystem",
                evidence=evidence,
            )
