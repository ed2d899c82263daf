"""The cluster scanner (`mode: cluster`) against the fake API: metadata-only Secrets, RBAC, policies,
Istio when installed, a 403 on one resource, and leader election between two replicas."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubetest import eventually, pod, secret

from ztmon.checks.registry import all_checks
from ztmon.engine import pipeline
from ztmon.model.findings import Finding
from ztmon.model.policy import Policy
from ztmon.sources import kube

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
CORPUS = Path(__file__).parents[2] / "unit" / "fixtures" / "manifests"


def scanner(connect, **kw) -> kube.KubeClusterSource:
    kw.setdefault("lease_retry_seconds", 0.1)
    return kube.KubeClusterSource(
        kube.KubeOptions(
            connect=connect,
            watchdog_seconds=2.0,
            identity=kw.pop("identity", "replica-a"),
            lease_namespace="ztmon",
            forbidden_retry_seconds=0.2,
            **kw,
        )
    )


def findings(src: kube.KubeClusterSource) -> list[Finding]:
    snap = pipeline.build_snapshot(now=NOW, node_name="", parts=[src.part()], policy=Policy())
    out: list[Finding] = []
    for spec in all_checks().values():
        out.extend(spec.fn(snap))
    return out


def by_check(src) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in findings(src):
        out.setdefault(f.check, set()).add(f"{f.resource.kind}/{f.resource.namespace}/{f.resource.name}")
    return out


def seed(fake) -> None:
    fake.add("v1", "namespaces", {"metadata": {"name": "shop"}})
    fake.add("v1", "secrets", secret("db-old"))
    fake.add(
        "v1",
        "secrets",
        {
            "metadata": {
                "name": "robot-token",
                "namespace": "ci",
                "annotations": {"kubernetes.io/service-account.name": "robot"},
                "creationTimestamp": "2025-05-01T00:00:00Z",
            },
            "type": "kubernetes.io/service-account-token",
            "data": {"token": "c2VjcmV0"},
        },
    )
    fake.add(
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        {
            "metadata": {"name": "ci-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
        },
    )
    fake.add(
        "networking.k8s.io/v1",
        "networkpolicies",
        {"metadata": {"name": "web", "namespace": "shop"}, "spec": {"podSelector": {"matchLabels": {"app": "web"}}}},
    )
    fake.add("v1", "pods", pod("web-1", labels={"app": "web"}))
    fake.add("v1", "pods", pod("db-0", labels={"app": "db"}, owner=("StatefulSet", "db")))
    fake.add(
        "networking.k8s.io/v1",
        "ingresses",
        {"metadata": {"name": "shop", "namespace": "shop"}, "spec": {"rules": [{"host": "shop.example.com"}]}},
    )


async def test_cluster_scan_reports_secrets_rbac_and_segmentation(fake, connect):
    seed(fake)
    src = scanner(connect)
    await src.refresh()
    got = by_check(src)
    assert got["stale-secret"] == {"Secret/shop/db-old"}
    assert got["legacy-sa-token"] == {"Secret/ci/robot-token"}
    assert got["rbac-overprivileged"] == {"ClusterRoleBinding//ci-admin"}
    assert got["no-network-policy"] == {"StatefulSet/shop/db"}
    assert src.is_leader
    await src.close()


async def test_secrets_and_pods_are_read_metadata_only(fake, connect):
    seed(fake)
    src = scanner(connect)
    await src.refresh()
    task = asyncio.create_task(src.watch(lambda: None))
    try:
        await eventually(lambda: any("/secrets" in r["path"] for r in fake.watch_requests))
        fake.add("v1", "secrets", secret("new"))
        await eventually(lambda: any(s.name == "new" for s in src.part().kube.secrets))
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for r in fake.list_requests + fake.watch_requests:
        if r["path"].endswith(("/secrets", "/pods")):
            assert "as=PartialObjectMetadata" in r["accept"], r
            assert "application/json;as" in r["accept"]
            assert ",application/json" not in r["accept"]  # no full-object fallback
    assert "c2VjcmV0" not in repr(src.part())
    await src.close()


async def test_a_reply_with_data_is_refused_and_the_rest_keeps_running(fake, connect):
    seed(fake)
    fake.ignore_accept = True
    src = scanner(connect)
    await src.refresh()
    assert src.part().kube.secrets == ()
    assert "ignored the metadata-only Accept" in src.error
    assert "rbac-overprivileged" in by_check(src)
    assert "Secret" not in src.part().kube.observed
    await src.close()


async def test_forbidden_network_policies_name_the_permission_and_silence_only_that_check(fake, connect):
    seed(fake)
    fake.forbidden.add("networkpolicies")
    src = scanner(connect)
    await src.refresh()
    assert src.up
    assert 'cannot list resource "networkpolicies"' in src.error
    got = by_check(src)
    assert "no-network-policy" not in got
    assert "rbac-overprivileged" in got
    assert kube.missing_permissions(src.informers) == ["list/watch networkpolicies"]
    await src.close()


async def test_istio_objects_are_read_only_when_the_crds_exist(fake, connect):
    fake.add("v1", "pods", pod("web-1", ns="legacy", labels={"app": "web"}))
    src = scanner(connect)
    await src.refresh()
    assert src.crds == {"peerauthentications.security.istio.io": False, "destinationrules.networking.istio.io": False}
    assert not any("istio" in r["path"] for r in fake.list_requests)
    await src.close()

    fake.crds |= {"security.istio.io/v1/peerauthentications", "networking.istio.io/v1/destinationrules"}
    fake.add(
        "security.istio.io/v1",
        "peerauthentications",
        {"metadata": {"name": "default", "namespace": "legacy"}, "spec": {"mtls": {"mode": "PERMISSIVE"}}},
    )
    src = scanner(connect)
    await src.refresh()
    (pa,) = src.part().kube.peer_authentications
    assert pa.mode == "PERMISSIVE"
    assert "PeerAuthentication" in src.part().kube.observed
    await src.close()


async def test_tls_secrets_are_read_only_when_enabled(fake, connect):
    text = (CORPUS / "objects" / "secrets.yaml").read_text()
    crt = text.split("name: shop-tls", 1)[1].split("tls.crt: ", 1)[1].split("\n", 1)[0]
    fake.add(
        "v1",
        "secrets",
        {
            "metadata": {"name": "shop-tls", "namespace": "shop"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": crt, "tls.key": base64.b64encode(b"k").decode()},
        },
    )
    off = scanner(connect)
    await off.refresh()
    assert off.part().kube.certificates == ()
    await off.close()
    on = scanner(connect, read_tls_secrets=True)
    await on.refresh()
    (cert,) = on.part().kube.certificates
    assert (cert.secret, cert.key, cert.subject_cn) == ("shop-tls", "tls.crt", "shop.example.com")
    assert len(on.part().kube.secrets) == 1
    assert any(r.get("fieldSelector") == "type=kubernetes.io/tls" for r in fake.list_requests)
    await on.close()


async def test_two_replicas_never_both_report(fake, connect):
    seed(fake)
    a = scanner(connect, identity="a", lease_duration_seconds=2.0)
    b = scanner(connect, identity="b", lease_duration_seconds=2.0)
    await a.refresh()
    await b.refresh()
    assert a.is_leader != b.is_leader
    leader, standby = (a, b) if a.is_leader else (b, a)
    assert findings(leader)
    assert findings(standby) == []
    tasks = [asyncio.create_task(s.watch(lambda: None)) for s in (a, b)]
    try:
        await asyncio.sleep(0.5)
        assert a.is_leader != b.is_leader
        # The leader dies (its watch and lease renewal stop): the standby takes over after the lease expires.
        idx = 0 if leader is a else 1
        tasks[idx].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[idx]
        await eventually(lambda: standby.is_leader, within=6)
        await eventually(lambda: bool(findings(standby)))
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await a.close()
        await b.close()


@pytest.mark.parametrize("kind", ["pods", "secrets"])
async def test_watch_restarts_and_last_event_are_exposed(fake, connect, kind):
    seed(fake)
    src = scanner(connect)
    await src.refresh()
    (state,) = [w for w in src.part().kube.watches if w.resource == kind]
    assert state.last_event is not None
    await src.close()
