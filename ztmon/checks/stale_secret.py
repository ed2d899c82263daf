"""stale-secret: a Secret whose data has not changed for longer than its type's maximum age.

Age runs from the last change of the data — the `ztmon.io/rotated-at` annotation (RFC 3339) when present,
else the newest `managedFields` entry that touched `data`/`stringData` — and from `creationTimestamp`
when neither exists. A Secret with none of these (a manifest from Git has no creationTimestamp) is not
judged: its age is unknown, not zero. Maximum age: `policy.kube.secret_max_age_days` (90), per type in
`secret_max_age_by_type` (0 = not judged; Helm release records and legacy service-account tokens by
default — the latter are `legacy-sa-token`'s).
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.kube_common import object_resource, ref
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "stale-secret"


@check(ID, severity=Severity.MEDIUM, title="Secret not rotated within its maximum age")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    pol = snapshot.policy.kube
    for s in snapshot.kube.secrets:
        max_days = pol.secret_max_age(s.type)
        if max_days <= 0:
            continue
        since, basis = (s.data_changed, "last data change") if s.data_changed else (s.created, "creation")
        if since is None:
            continue
        age = snapshot.taken_at - since
        if age.days <= max_days:
            continue
        yield Finding.make(
            check=ID,
            severity=Severity.MEDIUM,
            resource=object_resource("Secret", s.namespace, s.name, s.origin),
            message=f"secret {ref(s.namespace, s.name)} ({s.type}) unchanged for {age.days} days "
            f"(since {basis}; maximum {max_days})",
            evidence={
                "type": s.type,
                "age_days": str(age.days),
                "since": basis,
                "changed_at": since.isoformat(),
                "max_age_days": str(max_days),
            },
        )
