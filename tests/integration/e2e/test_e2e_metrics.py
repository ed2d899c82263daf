"""Every metric an alert rule or a dashboard panel uses is documented (tests/ops checks that) and is in a
live scrape of `ztmon run` here — except the metrics of optional components that are off in this scenario,
each listed below with the reason.
"""

from __future__ import annotations

import pytest
from e2eharness import Stack, record, wait_until
from opslib import CHART, load_yaml, metric_names, panel_queries, rules
from prometheus_client.parser import text_string_to_metric_families

MQTT = "the MQTT sink is off in this scenario (it needs a broker; the MQTT integration tests scrape it)"
KUBE = "Kubernetes cluster mode is off: there is no kube-apiserver in this environment"
# Exactly these are not expected in the live scrape.
LIVE_SKIP = {
    "ztmon_mqtt_connected": MQTT,
    "ztmon_mqtt_outbox_events": MQTT,
    "ztmon_mqtt_outbox_dropped_total": MQTT,
    "ztmon_secret_last_changed_timestamp_seconds": KUBE,
    "ztmon_pods_unsegmented": KUBE,
    "ztmon_watch_restarts_total": KUBE,
}
PROCFS = {"ztmon_listener_info", "ztmon_certificate_not_after_timestamp_seconds"}
USED = sorted(
    {m for r in rules() for m in metric_names(r["expr"])} | {m for q in panel_queries() for m in metric_names(q.expr)}
)


def test_skip_list_names_only_used_metrics() -> None:
    assert set(LIVE_SKIP) <= set(USED), set(LIVE_SKIP) - set(USED)


@pytest.fixture(scope="module")
def scraped(stack: Stack) -> set[str]:
    def names() -> set[str]:
        text = stack.ztmon.metrics_text()
        return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}

    if stack.procfs:  # the probed TLS server's certificate: the probe runs shortly after the listener appears
        wait_until(lambda: "ztmon_certificate_not_after_timestamp_seconds" in names(), timeout=90,
                   what="ztmon_certificate_not_after_timestamp_seconds in /metrics")  # fmt: skip
    wait_until(lambda: "ztmon_sink_up" in names(), timeout=60, what="ztmon_sink_up (from the second cycle on)")
    return names()


@pytest.mark.parametrize("metric", USED)
def test_metric_is_in_the_live_scrape(stack: Stack, scraped: set[str], metric: str) -> None:
    if metric in LIVE_SKIP:
        pytest.skip(LIVE_SKIP[metric])
    if metric in PROCFS and not stack.procfs:
        pytest.skip("the procfs source (listeners, TLS probe) is not in this tree")
    if metric == "up":
        assert stack.prometheus.vector('up{job="ztmon"}')
        return
    assert metric in scraped, f"{metric} is used by alerts/ or dashboards/ but `ztmon run` does not emit it"


def _mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    return float(quantity[:-2]) * units[quantity[-2:]]


def test_footprint_fits_the_charts_requests_and_limits(stack: Stack, scraped: set[str]) -> None:
    """The chart's node-agent memory request and limit are sized from this measurement (docs/operations.md)."""
    rss = stack.prometheus.vector('process_resident_memory_bytes{job="ztmon"}')[0]["value"][1]
    cpu = stack.prometheus.vector('rate(process_cpu_seconds_total{job="ztmon"}[30s])')[0]["value"][1]
    containers = stack.prometheus.vector('sum(ztmon_containers{job="ztmon"})')[0]["value"][1]
    record(f"ztmon resident memory with {float(containers):.0f} containers (MiB)", float(rss) / 2**20)
    record("ztmon CPU over the last 30 s, scraped every second (cores)", float(cpu))
    resources = load_yaml(CHART / "values.yaml")["nodeAgent"]["resources"]
    assert float(rss) / 2**20 < _mebibytes(resources["limits"]["memory"]) / 2, "keep the limit at twice the use"
