"""Every panel query of dashboards/*.json, run against the end-to-end Prometheus: it parses, and it returns
data wherever the scenario guarantees some. Run twice: with every variable on "All" (`.*`), and with the
cluster and node of this scenario selected.
"""

from __future__ import annotations

import time

import pytest
from e2eharness import Stack, wait_until
from opslib import PanelQuery, dashboards, panel_queries, substitute

KUBE = "Kubernetes cluster mode (kube source) is off: there is no kube-apiserver in this environment"
MQTT = "the MQTT sink is off in this scenario (it needs a broker; the MQTT tests scrape these metrics)"
DRIFT = "drift findings need a baseline learnt before the change; this scenario records none"
# Panels that may be empty here, and why. Every other panel must return data.
NO_DATA = {
    "ztmon-workloads.json: Pods without a NetworkPolicy [A]": KUBE,
    "ztmon-workloads.json: Secret age [A]": KUBE,
    "ztmon-agent.json: Watch restarts [A]": KUBE,
    "ztmon-workloads.json: Drift findings [A]": DRIFT,
    "ztmon-agent.json: MQTT connected [A]": MQTT,
    "ztmon-agent.json: MQTT outbox [A]": MQTT,
    "ztmon-agent.json: MQTT outbox [B]": MQTT,
}
# Panels fed by the procfs source (listeners, TLS probe): data when that source exists in this tree.
PROCFS = {
    "ztmon-workloads.json: Listeners by TLS status [A]",
    "ztmon-workloads.json: Listeners [A]",
    "ztmon-workloads.json: Plaintext and unexpected listeners [A]",
    "ztmon-workloads.json: Certificate expiry [A]",
}
SELECTED = {"$cluster": "e2e", "$node": "e2e-node"}
QUERIES = panel_queries()


def test_the_exemption_lists_name_real_panels() -> None:
    keys = {q.key for q in QUERIES}
    assert set(NO_DATA) <= keys, set(NO_DATA) - keys
    assert keys >= PROCFS, PROCFS - keys


@pytest.fixture(scope="module")
def populated(stack: Stack, scenario_containers: dict) -> Stack:
    """Wait until Prometheus has what the scenario promises: its containers' findings, a second cycle (sink
    status), enough samples for rate(), and, with procfs, the probed TLS server's certificate."""
    prom = stack.prometheus
    priv = scenario_containers["privileged"].name
    wait_until(lambda: prom.vector(f'ztmon_finding_info{{check="privileged", container="{priv}"}}'), timeout=60,
               what="the scenario's privileged finding in Prometheus")  # fmt: skip
    wait_until(lambda: prom.vector("ztmon_sink_up"), timeout=60, what="ztmon_sink_up (second cycle)")
    if stack.procfs:
        port = str(stack.tls.port)
        wait_until(lambda: prom.vector(f'ztmon_certificate_not_after_timestamp_seconds{{port="{port}"}}'),
                   timeout=90, what="the TLS server's certificate probed")  # fmt: skip
    wait_until(lambda: prom.vector("count_over_time(ztmon_cycles_total[15s]) >= 3"), timeout=30, what="3 samples")
    time.sleep(1)
    return stack


def _run(stack: Stack, q: PanelQuery, values: dict[str, str] | None) -> list:
    expr = substitute(q.expr, values)
    reply = stack.prometheus.query(expr) if q.instant else stack.prometheus.query_range(expr)
    assert reply["status"] == "success", f"{q.key}: {reply.get('error')}\n{expr}"
    result: list = reply["data"]["result"]
    return result


@pytest.mark.parametrize("selection", ["all", "selected"])
@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.key)
def test_panel_query_runs_and_returns_data(populated: Stack, query: PanelQuery, selection: str) -> None:
    result = _run(populated, query, SELECTED if selection == "selected" else None)
    if query.key in NO_DATA:
        return  # parsed and ran; empty by design here (NO_DATA says why)
    if query.key in PROCFS and not populated.procfs:
        pytest.skip("the procfs source (listeners, TLS probe) is not in this tree")
    assert result, f"{query.key} returned no data:\n{substitute(query.expr)}"


@pytest.mark.parametrize("variable", ["cluster", "node", "namespace"])
def test_variable_query_runs(populated: Stack, variable: str) -> None:
    """label_values(metric{selector}, label) is Grafana's /api/v1/label/<label>/values?match[]=..."""
    (model, *_) = dashboards().values()
    (var,) = [v for v in model["templating"]["list"] if v["name"] == variable]
    inner = var["query"]["query"].removeprefix("label_values(").removesuffix(f", {variable})")
    reply = populated.prometheus.api(f"label/{variable}/values", **{"match[]": substitute(inner)})
    assert reply["status"] == "success", reply
    expected = {"cluster": ["e2e"], "node": ["e2e-node"]}
    if variable in expected:
        assert reply["data"] == expected[variable]
