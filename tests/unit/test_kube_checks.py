"""Checks on Kubernetes objects over the manifest corpus (scanned at 2025-06-01T12:00:00Z).

Each test names one behaviour: a positive and the negative beside it, edge cases as docs/checks.md
states them.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from tests.unit.kube_helpers import CORPUS, corpus_scan, found, scan
from ztmon.checks import k8s_cert_expiry, k8s_plaintext, kube_states, no_network_policy
from ztmon.model.findings import Severity
from ztmon.model.inventory import Node, Snapshot
from ztmon.model.kube import KubeObjects, SecretMeta
from ztmon.model.policy import KubePolicy, Policy

# -- container checks through pod templates -----------------------------------------------------------


def test_workload_findings_name_the_workload_and_container():
    f = found("privileged")[("Deployment", "shop/legacy-api", "api")]
    r = f.resource
    assert (r.kind, r.namespace, r.name, r.container, r.pod) == ("Deployment", "shop", "legacy-api", "api", "")
    assert r.origin.endswith("workloads/insecure.yaml:2")


@pytest.mark.parametrize(
    "kind_name",
    [
        "StatefulSet/data/db",
        "DaemonSet/kube-system/node-agent",
        "ReplicaSet/data/web-rs",
        "Job/data/migrate",
        "CronJob/data/backup",
        "ReplicationController/data/old-rc",
        "Pod/data/bare",
    ],
)
def test_every_workload_kind_is_checked_through_its_template(kind_name):
    kind, ns, name = kind_name.split("/")
    assert any(k == kind and n == f"{ns}/{name}" for k, n, _ in found("mutable-image"))


def test_hardened_deployment_has_no_findings():
    bad = [f for f in corpus_scan().report.findings if f.resource.name == "cart" and f.resource.namespace == "shop"]
    assert bad == []


def test_pod_from_kubectl_get_names_its_deployment():
    assert ("Deployment", "shop/web", "debugger-abcde") in found("readonly-rootfs")
    assert ("Deployment", "shop/web", "web") not in found("readonly-rootfs")


def test_container_overriding_pod_run_as_non_root_is_root():
    hits = found("run-as-root")
    assert ("Pod", "lab/inherit", "overrides-to-root") in hits
    assert ("Pod", "lab/inherit", "init-inherits") not in hits
    assert ("Pod", "lab/inherit", "escalation-unset") not in hits


def test_allow_privilege_escalation_unset_or_forced_by_sys_admin():
    hits = found("privilege-escalation")
    assert ("Pod", "lab/inherit", "escalation-unset") in hits
    assert ("Pod", "lab/inherit", "sysadmin-forces-escalation") in hits
    assert ("Pod", "lab/inherit", "init-inherits") not in hits
    assert "allowPrivilegeEscalation is not false" in hits[("Pod", "lab/inherit", "escalation-unset")].message


def test_capabilities_spelled_with_cap_prefix_or_lowercase():
    f = found("capabilities")[("Deployment", "shop/legacy-api", "sidecar")]
    assert f.evidence == (("added", "NET_RAW,SYS_ADMIN"),)


def test_privileged_container_is_not_also_a_capabilities_finding():
    assert ("Deployment", "shop/legacy-api", "api") not in found("capabilities")


def test_host_path_declared_but_not_mounted_is_not_reported():
    paths = [
        dict(f.evidence)["host_path"]
        for f in corpus_scan().report.findings
        if f.check == "host-path" and f.resource.name == "legacy-api"
    ]
    assert sorted(paths) == ["/etc", "/var/run/docker.sock"]


def test_secret_in_env_lists_variables_once_per_container():
    f = found("secret-in-env")[("Deployment", "shop/legacy-api", "api")]
    assert dict(f.evidence)["variables"] == "DB_PASSWORD"  # not API_TOKEN_FILE (path) nor SESSION_TIMEOUT


def test_secret_in_env_value_from_is_never_a_finding():
    assert not any(n == "shop/cart" for _, n, _ in found("secret-in-env"))


def test_detector_flags_value_whatever_the_name():
    f = found("secret-in-env")[("Deployment", "json/json-app", "app")]
    assert "GitHub" in dict(f.evidence)["env.UPSTREAM"]


# -- stale-secret ---------------------------------------------------------------------------------------------
def test_stale_secret_since_creation_when_data_never_changed():
    f = found("stale-secret")[("Secret", "shop/db-old", "")]
    assert dict(f.evidence)["since"] == "creation"


def test_stale_secret_recent_data_change_is_fresh():
    assert ("Secret", "shop/db-rotated", "") not in found("stale-secret")


def test_stale_secret_metadata_only_change_does_not_count_as_rotation():
    assert ("Secret", "shop/labels-touched-only", "") in found("stale-secret")


def test_stale_secret_without_any_timestamp_is_not_judged():
    assert ("Secret", "shop/from-git", "") not in found("stale-secret")


def test_stale_secret_rotation_annotation_counts():
    f = found("stale-secret")[("Secret", "shop/from-git-rotated", "")]
    assert dict(f.evidence)["since"] == "last data change"


def test_stale_secret_skips_helm_release_and_token_types_by_default():
    names = {n for _, n, _ in found("stale-secret")}
    assert "shop/sh.helm.release.v1.shop.v3" not in names
    assert "ci/build-robot-token" not in names


def test_stale_secret_per_type_override():
    s = SecretMeta("n", "s", type="Opaque", created=datetime(2025, 5, 1, tzinfo=UTC))
    pol = Policy(kube=KubePolicy(secret_max_age_by_type=(("Opaque", 7),)))
    snap = Snapshot(
        taken_at=datetime(2025, 6, 1, tzinfo=UTC), node=Node("n"), policy=pol, kube=KubeObjects(secrets=(s,))
    )
    from ztmon.checks import stale_secret  # noqa: PLC0415

    assert [f.check for f in stale_secret.run(snap)] == ["stale-secret"]
    assert list(stale_secret.run(dataclasses.replace(snap, policy=Policy()))) == []


def test_legacy_sa_token():
    f = found("legacy-sa-token")[("Secret", "ci/build-robot-token", "")]
    assert dict(f.evidence)["service_account"] == "build-robot"
    assert len(found("legacy-sa-token")) == 1


# -- rbac-overprivileged --------------------------------------------------------------------------------------
RBAC_EXPECTED = {
    ("ClusterRoleBinding", "/ci-admin"): (Severity.CRITICAL, "bound to cluster-admin"),
    ("ClusterRoleBinding", "/monitoring-reads-secrets"): (Severity.HIGH, "reads secrets in every namespace"),
    ("RoleBinding", "shop/app-reads-own-secrets"): (Severity.MEDIUM, "reads secrets in its namespace"),
    ("RoleBinding", "shop/oncall-debug"): (Severity.HIGH, "can exec into pods"),
    ("ClusterRoleBinding", "/platform-team"): (Severity.HIGH, "wildcard verbs and resources"),
    ("ClusterRoleBinding", "/rbac-operator"): (Severity.HIGH, "has the escalate verb"),
    ("RoleBinding", "shop/devs-edit"): (Severity.HIGH, "can exec into pods"),
}


def test_rbac_reports_exactly_the_overprivileged_bindings():
    got = {(k, n) for k, n, _ in found("rbac-overprivileged")}
    assert got == set(RBAC_EXPECTED)


@pytest.mark.parametrize(("key", "expected"), sorted(RBAC_EXPECTED.items()))
def test_rbac_severity_and_reason(key, expected):
    f = found("rbac-overprivileged")[(*key, "")]
    severity, reason = expected
    assert f.severity is severity
    assert reason in dict(f.evidence)["reasons"]


def test_rbac_skips_system_bindings_resource_names_and_harmless_roles():
    names = {n for _, n, _ in found("rbac-overprivileged")}
    assert not {"/system:node-proxier-custom", "shop/cart-reads-one-secret", "/viewers"} & names


def test_rbac_rbac_operator_lists_every_reason():
    reasons = dict(found("rbac-overprivileged")[("ClusterRoleBinding", "/rbac-operator", "")].evidence)["reasons"]
    assert reasons.split(";") == ["has the escalate verb", "has the bind verb", "has the impersonate verb"]


# -- no-network-policy ----------------------------------------------------------------------------------------
def test_policy_without_policy_types_governs_ingress():
    assert ("Deployment", "net/implicit", "") not in found("no-network-policy")


def test_egress_only_policy_leaves_ingress_open():
    assert ("Deployment", "net/egress-only", "") in found("no-network-policy")


def test_match_expressions_select():
    assert ("Deployment", "net/by-expression", "") not in found("no-network-policy")


def test_policies_do_not_cross_namespaces():
    assert ("Deployment", "net-other/other-namespace-policy", "") in found("no-network-policy")


def test_host_network_pods_are_not_judged():
    assert ("DaemonSet", "kube-system/node-agent", "") not in found("no-network-policy")


def test_no_network_policy_is_silent_when_policies_were_not_read():
    snap = corpus_scan()
    fr = scan(CORPUS / "workloads" / "insecure.yaml")
    kube = dataclasses.replace(fr.files.part.kube, observed=frozenset({"Pod"}), offline=False)
    s = Snapshot(taken_at=snap.report.taken_at, node=Node("n"), kube=kube)
    assert list(no_network_policy.run(s)) == []
    assert no_network_policy.unsegmented(s) == {}


def test_unsegmented_counts_per_namespace():
    counts = dict(corpus_scan().report.kube.unsegmented)
    assert counts["net"] == 1
    assert counts["shop"] >= 1
    assert counts["kube-system"] == 0


# -- automount-sa-token -----------------------------------------------------------------------------------------
def test_automount_pod_spec_false_wins():
    assert ("Deployment", "shop/cart", "") not in found("automount-sa-token")


def test_automount_service_account_false_applies_when_pod_unset():
    assert ("Pod", "json/json-pod", "") not in found("automount-sa-token")


def test_automount_default_is_mounted():
    f = found("automount-sa-token")[("StatefulSet", "data/db", "")]
    assert f.severity is Severity.LOW
    assert "default" in dict(f.evidence)["decided_by"]


# -- plaintext (configuration half) -----------------------------------------------------------------------------
def _pt() -> list:
    s = scan(CORPUS)
    from ztmon.engine import pipeline  # noqa: PLC0415

    snap = pipeline.build_snapshot(now=s.report.taken_at, node_name="", parts=[s.files.part], policy=Policy())
    return list(k8s_plaintext.findings(snap))


def _by(kind: str, name: str) -> list:
    return [f for f in _pt() if f.resource.kind == kind and f"{f.resource.namespace}/{f.resource.name}" == name]


def test_plaintext_ids_are_the_public_id():
    assert {f.check for f in _pt()} == {"plaintext"}


@pytest.mark.parametrize("name", ["shop/no-tls", "shop/empty-tls"])
def test_ingress_without_tls_or_empty_tls_list(name):
    (f,) = _by("Ingress", name)
    assert "has no TLS" in f.message


def test_ingress_partial_tls_names_uncovered_hosts():
    (f,) = _by("Ingress", "shop/partial-tls")
    assert dict(f.evidence)["hosts"] == "b.example.com"


@pytest.mark.parametrize("name", ["shop/wildcard-tls", "shop/default-cert"])
def test_ingress_covered_by_wildcard_or_hostless_tls(name):
    assert _by("Ingress", name) == []


def test_peer_authentication_namespace_permissive_blamed_for_the_workloads_it_decides():
    fs = _by("PeerAuthentication", "legacy/default")
    (f,) = fs
    assert f.severity is Severity.MEDIUM
    assert dict(f.evidence)["scope"] == "namespace"
    assert "reports" in f.message  # UNSET workload policy inherits PERMISSIVE
    assert "payments" not in f.message  # its own STRICT policy wins


def test_peer_authentication_port_level_disable():
    (f,) = _by("PeerAuthentication", "legacy/payments-strict")
    assert (f.severity, dict(f.evidence)["port"]) == (Severity.HIGH, "9090")


def test_peer_authentication_strict_mesh_is_not_reported():
    assert _by("PeerAuthentication", "istio-system/default") == []
    assert _by("PeerAuthentication", "legacy/reports-unset") == []


def test_destination_rule_disable_host_port_and_subset():
    assert len(_by("DestinationRule", "legacy/external-db")) == 1
    targets = sorted(dict(f.evidence)["target"] for f in _by("DestinationRule", "legacy/mixed"))
    assert targets == ["port:8081", "subset:canary"]


def test_linkerd_opt_out_and_skipped_ports():
    sev = {f.resource.name: f.severity for f in _pt() if dict(f.evidence).get("source") == "linkerd"}
    assert sev == {"voting": Severity.MEDIUM, "web": Severity.LOW}


# -- cert-expiry (TLS Secrets) ---------------------------------------------------------------------------------
def _certs() -> dict[str, Severity]:
    s = scan(CORPUS / "objects" / "secrets.yaml")
    from ztmon.engine import pipeline  # noqa: PLC0415

    snap = pipeline.build_snapshot(now=s.report.taken_at, node_name="", parts=[s.files.part], policy=Policy())
    return {f.resource.name: f.severity for f in k8s_cert_expiry.findings(snap)}


def test_cert_expiry_soon_expired_and_fresh():
    assert _certs() == {"shop-tls": Severity.MEDIUM, "old-tls": Severity.CRITICAL}


def test_cert_expiry_respects_now():
    later = scan(CORPUS / "objects" / "secrets.yaml", now=datetime(2025, 6, 18, tzinfo=UTC))
    assert [c.subject_cn for c in later.files.part.kube.certificates] == [
        "shop.example.com",
        "old.example.com",
        "fresh.example.com",
    ]


def test_private_keys_never_reach_the_model():
    kube = scan(CORPUS / "objects" / "secrets.yaml").files.part.kube
    assert {c.key for c in kube.certificates} == {"tls.crt"}
    assert "PRIVATE" not in repr(kube)


def test_kube_states_for_metrics():
    st = kube_states.states(
        Snapshot(
            taken_at=datetime(2025, 6, 1, tzinfo=UTC),
            node=Node("n"),
            kube=scan(CORPUS / "objects" / "secrets.yaml").files.part.kube,
        )
    )
    assert {s.name for s in st.secrets} >= {"db-old", "db-rotated", "shop-tls"}
    assert "from-git" not in {s.name for s in st.secrets}
    assert len(st.certificates) == 3
