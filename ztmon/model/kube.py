"""Kubernetes objects as the checks see them: frozen, parsed, never holding a secret value.

Pod-spec containers are not here: they become `inventory.Container` values (the nine container checks
read those), carrying their workload's kind and name. What is here is everything else a check needs:
workloads (for pod-level settings and selectors), Secret metadata, RBAC, NetworkPolicies, Ingresses,
service-mesh policy, and the health of the watches that produced them.

`KubeObjects.observed` names the kinds that were read completely. A check that judges by absence
(`no-network-policy`: "no policy selects this pod") only runs when the kinds it needs were observed,
so that a 403 on NetworkPolicies never turns into a finding on every pod.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

Labels = tuple[tuple[str, str], ...]  # sorted (key, value) pairs


def label_value(labels: Labels, key: str) -> str | None:
    for k, v in labels:
        if k == key:
            return v
    return None


@dataclass(frozen=True, slots=True)
class Requirement:
    """One matchExpressions entry: key In/NotIn/Exists/DoesNotExist values."""

    key: str
    operator: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """metav1.LabelSelector. The empty selector selects everything (as NetworkPolicy's podSelector: {})."""

    match_labels: Labels = ()
    match_expressions: tuple[Requirement, ...] = ()
    invalid: str = ""  # an operator we do not know: the selector then selects nothing, and says why

    def matches(self, labels: Labels) -> bool:
        if self.invalid:
            return False
        have = dict(labels)
        for k, v in self.match_labels:
            if have.get(k) != v:
                return False
        for r in self.match_expressions:
            op = r.operator
            if op == "In" and have.get(r.key) not in r.values:
                return False
            if op == "NotIn" and r.key in have and have[r.key] in r.values:
                return False
            if op == "Exists" and r.key not in have:
                return False
            if op == "DoesNotExist" and r.key in have:
                return False
        return True

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions and not self.invalid


@dataclass(frozen=True, slots=True)
class Workload:
    """A pod template's owner: Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, or a bare Pod.

    In node mode `pod` is the running pod and `kind`/`name` its resolved owner; offline `pod` is "".
    `labels` are the pod's (template's) labels, which policies select on.
    """

    kind: str
    namespace: str
    name: str
    pod: str = ""
    labels: Labels = ()
    annotations: Labels = ()
    service_account: str = "default"
    automount_token: bool | None = None  # pod spec's automountServiceAccountToken; None = unset
    token_mounted: bool | None = None  # live pods: a projected serviceAccountToken volume exists; None = unknown
    host_network: bool = False
    node: str = ""
    origin: str = ""  # file:line of the manifest, "" for live objects


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    namespace: str
    name: str
    automount_token: bool | None = None
    origin: str = ""


@dataclass(frozen=True, slots=True)
class SecretMeta:
    """A Secret without its data: what metadata-only reads return, plus the keys' names offline."""

    namespace: str
    name: str
    type: str = "Opaque"
    created: datetime | None = None  # None for manifests from Git (no creationTimestamp)
    data_changed: datetime | None = None  # last managedFields entry touching data/stringData, or annotation
    labels: Labels = ()
    annotations: Labels = ()
    origin: str = ""


@dataclass(frozen=True, slots=True)
class Certificate:
    """A certificate read from a TLS Secret; the key is never read into this process's model."""

    namespace: str
    secret: str
    key: str  # data key, e.g. "tls.crt"
    subject_cn: str
    not_after: datetime
    not_before: datetime | None = None
    origin: str = ""


@dataclass(frozen=True, slots=True)
class PolicyRule:
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Role:
    kind: str  # Role | ClusterRole
    namespace: str  # "" for ClusterRole
    name: str
    rules: tuple[PolicyRule, ...] = ()
    aggregated: bool = False  # has an aggregationRule: rules are filled in by the controller
    origin: str = ""


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str  # User | Group | ServiceAccount
    name: str
    namespace: str = ""

    def display(self) -> str:
        if self.kind == "ServiceAccount":
            return f"ServiceAccount {self.namespace}/{self.name}"
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class RoleBinding:
    kind: str  # RoleBinding | ClusterRoleBinding
    namespace: str  # "" for ClusterRoleBinding
    name: str
    role_kind: str  # Role | ClusterRole
    role_name: str
    subjects: tuple[Subject, ...] = ()
    origin: str = ""


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    namespace: str
    name: str
    pod_selector: LabelSelector = field(default_factory=LabelSelector)
    policy_types: tuple[str, ...] = ("Ingress",)  # effective types, defaulted as the API server does
    origin: str = ""


@dataclass(frozen=True, slots=True)
class IngressTLS:
    hosts: tuple[str, ...] = ()
    secret_name: str = ""


@dataclass(frozen=True, slots=True)
class Ingress:
    namespace: str
    name: str
    hosts: tuple[str, ...] = ()  # rule hosts; "" for a rule without host
    tls: tuple[IngressTLS, ...] = ()
    annotations: Labels = ()
    origin: str = ""


@dataclass(frozen=True, slots=True)
class PeerAuthentication:
    namespace: str
    name: str
    selector: LabelSelector | None = None  # None: namespace-wide (or mesh-wide in the root namespace)
    mode: str = "UNSET"  # STRICT | PERMISSIVE | DISABLE | UNSET
    port_modes: tuple[tuple[int, str], ...] = ()
    origin: str = ""


@dataclass(frozen=True, slots=True)
class DestinationRule:
    namespace: str
    name: str
    host: str = ""
    tls_mode: str = ""  # trafficPolicy.tls.mode; "" when unset
    port_tls_modes: tuple[tuple[int, str], ...] = ()
    subset_tls_modes: tuple[tuple[str, str], ...] = ()
    origin: str = ""


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Labels = ()
    annotations: Labels = ()


@dataclass(frozen=True, slots=True)
class Service:
    namespace: str
    name: str
    type: str = "ClusterIP"
    selector: Labels = ()
    ports: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class WatchState:
    """Health of one list+watch: for ztmon_watch_last_event_timestamp_seconds / _restarts_total."""

    resource: str
    last_event: datetime | None = None
    restarts: tuple[tuple[str, int], ...] = ()  # (reason, count) since start


@dataclass(frozen=True, slots=True)
class KubeObjects:
    """Everything Kubernetes-specific a Snapshot holds besides containers."""

    workloads: tuple[Workload, ...] = ()
    service_accounts: tuple[ServiceAccount, ...] = ()
    secrets: tuple[SecretMeta, ...] = ()
    certificates: tuple[Certificate, ...] = ()
    roles: tuple[Role, ...] = ()
    bindings: tuple[RoleBinding, ...] = ()
    network_policies: tuple[NetworkPolicy, ...] = ()
    ingresses: tuple[Ingress, ...] = ()
    peer_authentications: tuple[PeerAuthentication, ...] = ()
    destination_rules: tuple[DestinationRule, ...] = ()
    namespaces: tuple[Namespace, ...] = ()
    services: tuple[Service, ...] = ()
    watches: tuple[WatchState, ...] = ()
    observed: frozenset[str] = frozenset()  # kinds read completely (see the module docstring)
    offline: bool = False  # from manifest files: the given set of files is the whole world

    def saw(self, *kinds: str) -> bool:
        return all(k in self.observed for k in kinds)

    def merge(self, other: KubeObjects) -> KubeObjects:
        return KubeObjects(
            workloads=self.workloads + other.workloads,
            service_accounts=self.service_accounts + other.service_accounts,
            secrets=self.secrets + other.secrets,
            certificates=self.certificates + other.certificates,
            roles=self.roles + other.roles,
            bindings=self.bindings + other.bindings,
            network_policies=self.network_policies + other.network_policies,
            ingresses=self.ingresses + other.ingresses,
            peer_authentications=self.peer_authentications + other.peer_authentications,
            destination_rules=self.destination_rules + other.destination_rules,
            namespaces=self.namespaces + other.namespaces,
            services=self.services + other.services,
            watches=self.watches + other.watches,
            observed=self.observed | other.observed,
            offline=self.offline or other.offline,
        )


@dataclass(frozen=True, slots=True)
class SecretState:
    namespace: str
    name: str
    type: str
    last_changed: datetime


@dataclass(frozen=True, slots=True)
class KubeStates:
    """Per-object facts the Report carries for metrics (not findings): rendered by the Prometheus sink."""

    secrets: tuple[SecretState, ...] = ()
    certificates: tuple[Certificate, ...] = ()
    unsegmented: tuple[tuple[str, int], ...] = ()  # (namespace, pods no NetworkPolicy selects for ingress)
    watches: tuple[WatchState, ...] = ()
