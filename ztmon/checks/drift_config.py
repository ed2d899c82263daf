"""drift-config: a security-relevant setting of a locked workload's container differs from its baseline.

One finding per setting. A change that grants more than the baseline (privileged, a new capability, a
writable root, root user, a new host mount or published port, ...) is high; one that grants less is low:
still not what was reviewed. A container the locked workload's baseline does not list (an added sidecar,
an ephemeral debug container) is medium.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding
from ztmon.checks.registry import check
from ztmon.model import drift
from ztmon.model.baseline import security_drift
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "drift-config"


@check(ID, severity=Severity.HIGH, title="Security settings differ from the baseline")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    for j in drift.judged(snapshot):
        c = j.container
        if j.baseline is None:
            if j.workload is not None:  # a workload without any baseline is drift-image's to report
                yield finding(
                    ID,
                    Severity.MEDIUM,
                    c,
                    snapshot,
                    f"container {c.name}: {j.where()}",
                    evidence=j.evidence(),
                    discriminator="container",
                )
            continue
        for d in security_drift(j.baseline.security, drift.security_of(c)):
            verb = "loosened" if d.loosened else "changed"
            yield finding(
                ID,
                Severity.HIGH if d.loosened else Severity.LOW,
                c,
                snapshot,
                f"container {c.name}: {d.field} {verb} from {d.expected} to {d.observed}",
                evidence={**j.evidence(), "setting": d.field, "expected": d.expected, "observed": d.observed},
                discriminator=d.field,
            )
