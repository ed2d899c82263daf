"""Listeners, postures and flows through the pipeline to the Report, the metrics, the table and settings."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from tests.unit.conftest import make_container
from ztmon import settings as settings_mod
from ztmon import table
from ztmon.checks.registry import all_checks
from ztmon.engine import build, pipeline
from ztmon.model.inventory import Node, SourcePart
from ztmon.model.network import Listener, NetNamespace, PlaintextFlow, ProbeResult, ProcessPosture, Tls
from ztmon.model.policy import Policy
from ztmon.sinks import prometheus

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CID = "c0ffee" + "0" * 58
NS = "net:[4026532001]"
NOT_AFTER = NOW + timedelta(days=20)


def parts():
    web = make_container(namespace="shop", pod="web-1", name="web", labels=(("ztmon.io/allowed-ports", "8443/tcp"),))
    listeners = (
        Listener(NS, "tcp", "0.0.0.0", 8080, inode=1, container_id=CID, comm="app", pid=7,
                 probe=ProbeResult(Tls.PLAINTEXT, protocol="http", duration_seconds=0.01)),
        Listener(NS, "tcp", "::", 8443, inode=2, container_id=CID, comm="app", pid=7,
                 probe=ProbeResult(Tls.TLS, protocol="tls", tls_version="TLSv1.3", cert_subject_cn="web.shop",
                                   cert_not_after=NOT_AFTER, duration_seconds=0.02)),
        Listener(NS, "tcp", "127.0.0.1", 6379, inode=3, container_id=CID,
                 probe=ProbeResult(Tls.UNKNOWN, reason="timeout", duration_seconds=1.5)),
        Listener("net:[1]", "udp", "0.0.0.0", 68, inode=4, host_netns=True),
    )  # fmt: skip
    posture = ProcessPosture(CID, pid=7, cap_effective=("NET_BIND_SERVICE", "NET_RAW"), rootfs_read_only=False)
    return [
        SourcePart(containers=(web,)),
        SourcePart(
            listeners=listeners,
            namespaces=(NetNamespace(NS, pid=7, container_ids=(CID,), addresses=("10.0.0.2",)),),
            postures=(posture,),
        ),
        SourcePart(flows=(PlaintextFlow("10.0.0.2", 8080, "http", 12),)),
    ]


@pytest.fixture
def snapshot():
    return pipeline.build_snapshot(now=NOW, node_name="node-1", parts=parts(), policy=Policy())


@pytest.fixture
def report(snapshot):
    specs = [all_checks()[c] for c in ("plaintext", "cert-expiry", "runtime-mismatch", "open-port")]
    return pipeline.cycle(
        snapshot=snapshot,
        runner=pipeline.CheckRunner(specs),
        rules=(),
        known_checks=frozenset(all_checks()),
        sources=(),
    ).report


def test_postures_join_containers_by_id(snapshot):
    (c,) = snapshot.containers
    assert c.observed is not None
    assert c.observed.rootfs_read_only is False


def test_listeners_namespaces_and_flows_are_merged(snapshot):
    assert len(snapshot.listeners) == 4
    assert len(snapshot.namespaces) == 1
    assert len(snapshot.flows) == 1


def test_report_listeners_are_resolved_to_their_workload(report):
    by_port = {li.port: li for li in report.listeners}
    assert (by_port[8080].namespace, by_port[8080].pod, by_port[8080].container) == ("shop", "web-1", "web")
    assert by_port[8443].subject_cn == "web.shop"
    assert by_port[68].container == ""


def test_report_flows_are_attributed(report):
    (f,) = report.flows
    assert (f.namespace, f.pod, f.container, f.port, f.protocol, f.packets) == (
        "shop",
        "web-1",
        "web",
        8080,
        "http",
        12,
    )


def test_findings_from_the_network_data(report):
    checks = sorted(f.check for f in report.findings)
    # plaintext 8080; cert-expiry 20 days; runtime-mismatch rootfs + caps; open-port 8080 (8443 allowed by label)
    assert checks == ["cert-expiry", "open-port", "plaintext", "runtime-mismatch", "runtime-mismatch"]


def families(report):
    registry = CollectorRegistry(auto_describe=False)
    collector = prometheus.ReportCollector()
    collector.report = report
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_listener_info_metric(report):
    fam = families(report)["ztmon_listener_info"]
    by_port = {s.labels["port"]: s.labels for s in fam.samples}
    assert by_port["8080"] == {
        "namespace": "shop", "pod": "web-1", "container": "web", "address_scope": "all", "port": "8080",
        "protocol": "tcp", "tls": "plaintext",
    }  # fmt: skip
    assert by_port["6379"]["address_scope"] == "loopback"
    assert by_port["68"]["container"] == ""


def test_listener_counts_by_tls(report):
    fam = families(report)["ztmon_listeners"]
    assert {s.labels["tls"]: s.value for s in fam.samples} == {"tls": 1, "plaintext": 1, "unknown": 2}


def test_probe_duration_and_certificate_metrics(report):
    fams = families(report)
    durations = {s.labels["port"]: s.value for s in fams["ztmon_tls_probe_duration_seconds"].samples}
    assert durations == {"8080": 0.01, "8443": 0.02, "6379": 1.5}
    (cert,) = fams["ztmon_certificate_not_after_timestamp_seconds"].samples
    assert cert.labels["subject_cn"] == "web.shop"
    assert cert.value == NOT_AFTER.timestamp()


def test_capability_metric_lists_each_effective_capability(report):
    fam = families(report)["ztmon_container_capabilities_effective"]
    assert sorted(s.labels["capability"] for s in fam.samples) == ["NET_BIND_SERVICE", "NET_RAW"]


def test_plaintext_flows_counter(report):
    fam = families(report)["ztmon_plaintext_flows"]
    (s,) = [s for s in fam.samples if s.name == "ztmon_plaintext_flows_total"]
    assert (s.labels["port"], s.labels["protocol"], s.value) == ("8080", "http", 12)


def test_no_label_carries_an_address(report):
    text = generate_latest_text(report)
    assert "10.0.0.2" not in text
    assert "127.0.0.1" not in text


def generate_latest_text(report):
    registry = CollectorRegistry(auto_describe=False)
    collector = prometheus.ReportCollector()
    collector.report = report
    registry.register(collector)
    return generate_latest(registry).decode()


def test_table_shows_listeners(report):
    out = io.StringIO()
    table.print_report(report, console=Console(file=out, width=200))
    text = out.getvalue()
    assert "4 listeners" in text
    assert "0.0.0.0:8080/tcp" in text
    assert "TLSv1.3 web.shop" in text
    assert "(node)" in text


def test_settings_sections_and_defaults():
    s = settings_mod.Settings()
    assert s.sources.procfs.enabled is False
    assert s.sources.procfs.probe.timeout_seconds == 1.5
    assert s.capture.enabled is False
    assert s.checks.policy.network.cert_warning_days == 30


def test_policy_from_settings_carries_network_rules():
    s = settings_mod.Settings(
        checks={
            "policy": {"network": {"allowed_ports": [{"ports": ["8080/tcp"], "name": "web"}], "cert_warning_days": 10}}
        }
    )
    p = build.policy_of(s)
    assert p.network.cert_warning_days == 10
    assert p.network.allowed_ports[0].ports == ("8080/tcp",)


def test_procfs_source_is_opt_in_unless_named():
    s = settings_mod.Settings()
    assert "procfs" not in [src.name for src in build.make_sources(s)]
    assert [src.name for src in build.make_sources(s, ["procfs"])] == ["procfs"]


def test_example_config_loads():
    loaded = settings_mod.load(Path(__file__).parents[2] / "examples" / "config.yaml", environ_path=False)
    assert loaded.settings.sources.procfs.listing == "auto"


def test_pipeline_without_network_parts_is_unchanged():
    snap = pipeline.build_snapshot(now=NOW, node_name="n", parts=[SourcePart(node=Node(name=""))], policy=Policy())
    assert (snap.listeners, snap.namespaces, snap.flows) == ((), (), ())
