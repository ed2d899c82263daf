"""Settings -> the Kubernetes source of `mode: node` or `mode: cluster` (sources do not read settings)."""

from __future__ import annotations

from ztmon.model.policy import KubePolicy
from ztmon.settings import Settings
from ztmon.sources.base import Source


def kube_policy(settings: Settings) -> KubePolicy:
    k = settings.checks.policy.kube
    return KubePolicy(
        secret_max_age_days=k.secret_max_age_days,
        secret_max_age_by_type=tuple(sorted(k.secret_max_age_by_type.items())),
        istio_root_namespace=k.istio_root_namespace,
        rbac_ignored_binding_prefixes=k.rbac_ignored_binding_prefixes,
    )


def make_kube_source(settings: Settings, *, host: str = "") -> Source:
    """`host` overrides the API server address (tests); otherwise in-cluster config or the kubeconfig."""
    from ztmon.sources import kube, kubeapi  # noqa: PLC0415 - kubernetes.aio only in Kubernetes modes

    k = settings.kubernetes
    options = kube.KubeOptions(
        connect=kubeapi.ConnectOptions(
            kubeconfig=k.kubeconfig, context=k.context, host=host, request_timeout=k.request_timeout_seconds
        ),
        node_name=settings.resolved_node_name(),
        watchdog_seconds=k.watchdog_seconds,
        watch_timeout_seconds=k.watch_timeout_seconds,
        resync_seconds=k.resync_seconds,
        read_tls_secrets=k.read_tls_secrets,
        lease_namespace=k.lease_namespace,
        lease_name=k.lease_name,
        lease_duration_seconds=k.lease_duration_seconds,
        lease_retry_seconds=k.lease_retry_seconds,
    )
    if settings.mode == "cluster":
        return kube.KubeClusterSource(options)
    return kube.KubeNodeSource(options)
