"""Kubernetes metric families, rendered from the immutable Report by the Prometheus sink (docs/metrics.md).

Cardinality: one series per Secret (cluster scan; bounded by the cluster's Secrets, which the operator
already pays for in kube-state-metrics' `kube_secret_info`), per certificate key, per namespace and per
watched resource. No label carries a secret value.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ztmon.model.findings import Report


def certificate_samples(report: Report) -> Iterator[tuple[list[str], float]]:
    """TLS Secret certificates as samples of the one `ztmon_certificate_not_after_timestamp_seconds` family
    (labels namespace, pod, container, port, subject_cn, secret, key; pod/container/port empty)."""
    for c in report.kube.certificates:
        yield [c.namespace, "", "", "", c.subject_cn, c.secret, c.key], c.not_after.timestamp()


def families(report: Report) -> Iterator[Metric]:
    kube = report.kube
    g = GaugeMetricFamily(
        "ztmon_secret_last_changed_timestamp_seconds",
        "Unix time the Secret's data last changed (managedFields or ztmon.io/rotated-at), else its creation",
        labels=["namespace", "secret", "type"],
    )
    for s in kube.secrets:
        g.add_metric([s.namespace, s.name, s.type], s.last_changed.timestamp())
    yield g
    g = GaugeMetricFamily(
        "ztmon_pods_unsegmented",
        "Pods no NetworkPolicy selects for ingress, per namespace (cluster scan; workloads offline)",
        labels=["namespace"],
    )
    for ns, n in kube.unsegmented:
        g.add_metric([ns], n)
    yield g
    last = GaugeMetricFamily(
        "ztmon_watch_last_event_timestamp_seconds",
        "Unix time of the last event, bookmark or list of a Kubernetes watch",
        labels=["resource"],
    )
    restarts = CounterMetricFamily(
        "ztmon_watch_restarts",
        "Kubernetes watch restarts by reason (closed, gone, watchdog, forbidden, throttled, error, resync)",
        labels=["resource", "reason"],
    )
    for w in kube.watches:
        if w.last_event is not None:
            last.add_metric([w.resource], w.last_event.timestamp())
        for reason, n in w.restarts:
            restarts.add_metric([w.resource, reason], n)
    yield last
    yield restarts
