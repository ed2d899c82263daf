"""Per-object Kubernetes facts for the Report (metrics, not findings): secret ages, certificates,
unsegmented pods per namespace, watch health. Pure, like the checks it sits beside."""

from __future__ import annotations

from ztmon.checks import no_network_policy
from ztmon.model.inventory import Snapshot
from ztmon.model.kube import KubeStates, SecretState


def states(snapshot: Snapshot) -> KubeStates:
    kube = snapshot.kube
    secrets = tuple(
        SecretState(s.namespace, s.name, s.type, changed)
        for s in kube.secrets
        if (changed := s.data_changed or s.created) is not None
    )
    return KubeStates(
        secrets=secrets,
        certificates=kube.certificates,
        unsegmented=tuple(sorted(no_network_policy.unsegmented(snapshot).items())),
        watches=kube.watches,
    )
