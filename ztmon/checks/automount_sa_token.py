"""automount-sa-token: the pod gets an API token mounted it may not need (low).

Precedence as the API defines it: the pod spec's `automountServiceAccountToken` wins; unset, the
ServiceAccount's field decides; both unset means mounted. A live pod (node agent) is judged by what
admission did — a projected volume with a serviceAccountToken source — not by the fields.
Offline, a ServiceAccount not among the files counts as unset.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.kube_common import distinct_workloads, ref, workload_resource
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "automount-sa-token"


@check(ID, severity=Severity.LOW, title="Service-account token automounted")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    sas = {(sa.namespace, sa.name): sa.automount_token for sa in snapshot.kube.service_accounts}
    for w in distinct_workloads(snapshot, per_pod=not snapshot.kube.offline):
        if w.token_mounted is not None:
            mounted, basis = w.token_mounted, "projected token volume in the running pod"
        elif w.automount_token is not None:
            mounted, basis = w.automount_token, "pod spec automountServiceAccountToken"
        elif (sa_value := sas.get((w.namespace, w.service_account))) is not None:
            mounted, basis = sa_value, f"service account {w.service_account}"
        else:
            mounted, basis = True, "default (unset in pod spec and service account)"
        if not mounted:
            continue
        yield Finding.make(
            check=ID,
            severity=Severity.LOW,
            resource=workload_resource(w, snapshot),
            message=f"{w.kind} {ref(w.namespace, w.name)} mounts the API token of service account "
            f"{w.service_account} ({basis})",
            evidence={"service_account": w.service_account, "decided_by": basis},
        )
