"""runtime-mismatch: what a container's main process really runs with (/proc) is weaker than what its
runtime declares: declared read-only root but mounted rw, ALL dropped but holding capabilities,
no-new-privileges set but NoNewPrivs 0, a non-root user but effective uid 0.

Such a gap means the runtime, an admission mutation or a wrapper did not apply what the spec says; the
other posture checks judge the declaration, this one the difference.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding, is_root_user, normalise_capability
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "runtime-mismatch"


@check(ID, severity=Severity.HIGH, title="Observed runtime posture is weaker than declared")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    for c in snapshot.containers:
        o = c.observed
        if o is None:
            continue
        base = {"observed_pid": str(o.pid), "observed_from": "/proc"}
        if c.read_only_rootfs and o.rootfs_read_only is False:
            yield finding(
                ID,
                Severity.HIGH,
                c,
                snapshot,
                f"container {c.name} declares a read-only root filesystem but / is mounted read-write",
                evidence={**base, "declared": "read_only_rootfs=true", "observed": "/ mounted rw (mountinfo)"},
                discriminator="rootfs",
            )
        dropped = {normalise_capability(x) for x in c.cap_drop}
        if "ALL" in dropped and not c.privileged:
            added = {normalise_capability(x) for x in c.cap_add}
            extra = sorted(set(o.cap_effective) - added)
            if extra:
                yield finding(
                    ID,
                    Severity.HIGH,
                    c,
                    snapshot,
                    f"container {c.name} drops ALL capabilities but its process holds {', '.join(extra)}",
                    evidence={
                        **base,
                        "declared": "cap_drop=ALL" + (f" cap_add={','.join(sorted(added))}" if added else ""),
                        "observed": "CapEff=" + ",".join(extra),
                    },
                    discriminator="capabilities",
                )
        if c.no_new_privileges and o.no_new_privs is False:
            yield finding(
                ID,
                Severity.HIGH,
                c,
                snapshot,
                f"container {c.name} declares no-new-privileges but its process has NoNewPrivs 0",
                evidence={**base, "declared": "no_new_privileges=true", "observed": "NoNewPrivs: 0"},
                discriminator="no-new-privileges",
            )
        declared_non_root = c.run_as_non_root or (bool(c.user) and not is_root_user(c.user))
        if declared_non_root and o.effective_uid == 0:
            yield finding(
                ID,
                Severity.HIGH,
                c,
                snapshot,
                f"container {c.name} declares a non-root user but its process runs as uid 0",
                evidence={**base, "declared": f"user={c.user or 'runAsNonRoot'}", "observed": "Uid effective 0"},
                discriminator="uid",
            )
