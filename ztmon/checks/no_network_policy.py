"""no-network-policy: a pod that no NetworkPolicy selects for ingress accepts traffic from anywhere.

A policy governs ingress when its effective `policyTypes` include Ingress — and a policy without
`policyTypes` always does (the API server defaults it to Ingress, plus Egress if it has egress rules).
An empty `podSelector` selects every pod of its namespace. Policies are namespaced: only those of the
pod's namespace count. hostNetwork pods are skipped: NetworkPolicy does not apply to them. One finding
per workload. Runs only where NetworkPolicies were read completely (cluster scan, offline over the files
given), never on a partial view such as a 403 on networkpolicies.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.kube_common import distinct_workloads, object_resource, ref
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot
from ztmon.model.kube import NetworkPolicy, Workload

ID = "no-network-policy"


def selecting(w: Workload, policies: tuple[NetworkPolicy, ...]) -> list[NetworkPolicy]:
    return [
        p
        for p in policies
        if p.namespace == w.namespace and "Ingress" in p.policy_types and p.pod_selector.matches(w.labels)
    ]


def unsegmented(snapshot: Snapshot) -> dict[str, int]:
    """Pods (workloads offline) per namespace that no policy selects for ingress; {} when not judged."""
    kube = snapshot.kube
    if not kube.saw("NetworkPolicy", "Pod"):
        return {}
    counts: dict[str, int] = {}
    for w in distinct_workloads(snapshot, per_pod=True):
        counts.setdefault(w.namespace, 0)
        if not w.host_network and not selecting(w, kube.network_policies):
            counts[w.namespace] += 1
    return counts


@check(ID, severity=Severity.MEDIUM, title="Pod not selected by any ingress NetworkPolicy")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    kube = snapshot.kube
    if not kube.saw("NetworkPolicy", "Pod"):
        return
    for w in distinct_workloads(snapshot):
        if w.host_network or selecting(w, kube.network_policies):
            continue
        in_ns = [p.name for p in kube.network_policies if p.namespace == w.namespace]
        yield Finding.make(
            check=ID,
            severity=Severity.MEDIUM,
            resource=object_resource(w.kind, w.namespace, w.name, w.origin),
            message=f"{w.kind} {ref(w.namespace, w.name)}: no NetworkPolicy selects its pods for ingress",
            evidence={
                "labels": ",".join(f"{k}={v}" for k, v in w.labels) or "(none)",
                "policies_in_namespace": ",".join(sorted(in_ns)) or "(none)",
            },
        )
