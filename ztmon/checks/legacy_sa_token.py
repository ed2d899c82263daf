"""legacy-sa-token: a Secret of type kubernetes.io/service-account-token holds a token that never expires.

Since Kubernetes 1.24 pods get short-lived projected tokens (TokenRequest); a token Secret is a
long-lived bearer credential that survives its pods and is readable by anyone who can read Secrets in
its namespace. Reported whether the token controller has filled it in or not (a manifest asks for one).
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.kube_common import object_resource, ref
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot
from ztmon.model.kube import label_value

ID = "legacy-sa-token"
TOKEN_TYPE = "kubernetes.io/service-account-token"  # noqa: S105 - a type name, not a secret


@check(ID, severity=Severity.MEDIUM, title="Long-lived service-account token Secret")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    for s in snapshot.kube.secrets:
        if s.type != TOKEN_TYPE:
            continue
        sa = label_value(s.annotations, "kubernetes.io/service-account.name") or "(unnamed)"
        yield Finding.make(
            check=ID,
            severity=Severity.MEDIUM,
            resource=object_resource("Secret", s.namespace, s.name, s.origin),
            message=f"secret {ref(s.namespace, s.name)} is a non-expiring token of service account {sa}; "
            "use projected (TokenRequest) tokens",
            evidence={"service_account": sa, "type": s.type},
        )
