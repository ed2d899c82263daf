"""Settings -> sources for `mode: node|cluster`, the kube metric families, and SARIF URIs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from ztmon import settings
from ztmon.engine import build
from ztmon.model.findings import Finding, Report, Resource, Severity
from ztmon.model.kube import Certificate, KubeStates, SecretState, WatchState
from ztmon.sinks import sarif
from ztmon.sinks.prometheus import PrometheusSink
from ztmon.sources import kube

T = datetime(2025, 6, 1, tzinfo=UTC)


def load(monkeypatch, **env: str) -> settings.Settings:
    monkeypatch.delenv("ZTMON_CONFIG", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return settings.load(None, environ_path=False).settings


def test_default_mode_is_docker_without_kube_source(monkeypatch):
    s = load(monkeypatch)
    assert s.mode == "docker"
    assert not any(isinstance(x, kube._InformerSource) for x in build.make_sources(s, ["host", "docker"]))


def test_node_mode_adds_the_node_agent(monkeypatch):
    s = load(monkeypatch, ZTMON_MODE="node", ZTMON_NODE_NAME="node-7")
    (src,) = [x for x in build.make_sources(s, ["host", "kube"]) if isinstance(x, kube.KubeNodeSource)]
    assert src.options.node_name == "node-7"
    assert src.options.watchdog_seconds == 70.0


def test_cluster_mode_reads_the_api_only(monkeypatch):
    s = load(monkeypatch, ZTMON_MODE="cluster", ZTMON_KUBERNETES__READ_TLS_SECRETS="true")
    sources = build.make_sources(s)
    assert [type(x).__name__ for x in sources] == ["KubeClusterSource"]
    assert sources[0].options.read_tls_secrets is True  # type: ignore[attr-defined]


def test_kube_policy_settings_reach_the_checks(monkeypatch):
    s = load(monkeypatch, ZTMON_CHECKS__POLICY__KUBE__SECRET_MAX_AGE_DAYS="30")
    pol = build.policy_of(s)
    assert pol.kube.secret_max_age("Opaque") == 30
    assert pol.kube.secret_max_age("helm.sh/release.v1") == 0


def test_unknown_mode_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("ZTMON_MODE", "swarm")
    with pytest.raises(settings.ConfigError, match="mode"):
        settings.load(None, environ_path=False)


def _report() -> Report:
    f = Finding.make(
        check="privileged",
        severity=Severity.CRITICAL,
        resource=Resource(
            kind="Pod",
            namespace="shop",
            name="web-1",
            pod="web-1",
            container="app",
            workload_kind="Deployment",
            workload="web",
        ),
        message="m",
    )
    return Report(
        scan_id="s",
        taken_at=T,
        node="n",
        checks_enabled=("privileged",),
        findings=(f,),
        kube=KubeStates(
            secrets=(SecretState("shop", "db", "Opaque", T),),
            certificates=(Certificate("shop", "tls", "tls.crt", "shop.example.com", T),),
            unsegmented=(("shop", 3),),
            watches=(WatchState("pods", T, (("gone", 2), ("watchdog", 1))),),
        ),
    )


async def test_kube_metric_families_render():
    sink = PrometheusSink(registry=CollectorRegistry(auto_describe=False), process_metrics=False)
    await sink.publish(_report())
    text = sink.report_body().decode()
    series = 'ztmon_secret_last_changed_timestamp_seconds{namespace="shop",secret="db",type="Opaque"}'
    assert f"{series} 1.748736e+09" in text
    assert 'key="tls.crt",namespace="shop",pod="",port="",secret="tls"' in text
    assert text.count("# HELP ztmon_certificate_not_after_timestamp_seconds") == 1
    assert 'ztmon_pods_unsegmented{namespace="shop"} 3.0' in text
    assert 'ztmon_watch_restarts_total{reason="gone",resource="pods"} 2.0' in text
    assert 'ztmon_watch_last_event_timestamp_seconds{resource="pods"}' in text
    assert 'workload="web"' in text
    assert 'workload_kind="Deployment"' in text
    generate_latest(sink.registry)


@pytest.mark.parametrize(
    ("path", "uri"),
    [("deploy/app.yaml", "deploy/app.yaml"), ("dir with space/a.yaml", "dir%20with%20space/a.yaml")],
)
def test_sarif_uris_are_relative_and_escaped(path, uri):
    assert sarif.artifact_uri(path) == uri


def test_sarif_absolute_path_inside_base_becomes_relative(tmp_path: Path):
    assert sarif.artifact_uri(str(tmp_path / "x" / "a.yaml"), base=tmp_path) == "x/a.yaml"
    assert sarif.artifact_uri("/elsewhere/a.yaml", base=tmp_path).startswith("file:///elsewhere")
