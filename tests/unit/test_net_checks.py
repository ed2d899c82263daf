"""The network checks: plaintext, open-port, host-port, cert-expiry, runtime-mismatch. Pure: Snapshot in,
findings out; one behaviour per test."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from tests.unit.conftest import NOW, make_container, make_snapshot, run_check
from ztmon.model.findings import Severity
from ztmon.model.inventory import PublishedPort
from ztmon.model.network import Listener, NetNamespace, PlaintextFlow, ProbeResult, ProcessPosture, Tls
from ztmon.model.policy import NetworkPolicy, Policy, PortAllowRule

CID = "c0ffee" + "0" * 58  # the hardened container of conftest
NS = "net:[4026532001]"


def listener(port=8080, *, address="0.0.0.0", verdict=None, proto="tcp", cid=CID, host=False, **probe):
    result = ProbeResult(verdict, **probe) if verdict is not None else None
    return Listener(
        netns="net:[4026531840]" if host else NS,
        protocol=proto,
        address=address,
        port=port,
        inode=port,
        host_netns=host,
        container_id=cid,
        container_ids=(cid,) if cid else (),
        comm="app" if cid else "sshd",
        pid=42,
        probe=result,
    )


def snap(*listeners, containers=None, policy=None, flows=(), namespaces=()):
    s = make_snapshot(*(containers if containers is not None else (make_container(),)), policy=policy)
    return dataclasses.replace(s, listeners=listeners, flows=flows, namespaces=namespaces)


def net_policy(**kw):
    return Policy(network=NetworkPolicy(**kw))


# -- plaintext ---------------------------------------------------------------------------------------
def test_plaintext_on_all_interfaces_is_high():
    (f,) = run_check("plaintext", snap(listener(verdict=Tls.PLAINTEXT, protocol="http")))
    assert f.severity is Severity.HIGH
    assert f.resource.container == "web"
    assert dict(f.evidence)["app_protocol"] == "http"


def test_plaintext_on_loopback_is_low():
    (f,) = run_check("plaintext", snap(listener(address="127.0.0.1", verdict=Tls.PLAINTEXT)))
    assert f.severity is Severity.LOW


@pytest.mark.parametrize("verdict", [Tls.TLS, Tls.UNKNOWN, None])
def test_tls_and_unknown_are_never_plaintext(verdict):
    assert run_check("plaintext", snap(listener(verdict=verdict))) == []


def test_same_port_on_v4_and_v6_is_one_finding():
    both = (listener(verdict=Tls.PLAINTEXT), dataclasses.replace(listener(verdict=Tls.PLAINTEXT), address="::"))
    assert len(run_check("plaintext", snap(*both))) == 1


def test_node_listener_is_a_node_resource():
    (f,) = run_check("plaintext", snap(listener(port=23, cid="", host=True, verdict=Tls.PLAINTEXT)))
    assert (f.resource.kind, f.resource.name, f.resource.container) == ("Node", "node-1", "sshd")


def test_undeclared_container_is_named_by_short_id():
    (f,) = run_check("plaintext", snap(listener(verdict=Tls.PLAINTEXT), containers=()))
    assert (f.resource.kind, f.resource.name, f.resource.container_id) == ("Container", CID[:12], CID)


def test_plaintext_flow_seen_adds_evidence():
    ns = NetNamespace(NS, pid=1, container_ids=(CID,), addresses=("10.0.0.2",))
    s = snap(listener(verdict=Tls.PLAINTEXT), flows=(PlaintextFlow("10.0.0.2", 8080, "http", 7),), namespaces=(ns,))
    (f,) = run_check("plaintext", s)
    assert dict(f.evidence)["plaintext_packets_seen"] == "7"


def test_plaintext_flow_to_an_unprobed_listener_is_medium():
    ns = NetNamespace(NS, pid=1, container_ids=(CID,), addresses=("10.0.0.2",))
    s = snap(listener(), flows=(PlaintextFlow("10.0.0.2", 8080, "http", 3),), namespaces=(ns,))
    (f,) = run_check("plaintext", s)
    assert f.severity is Severity.MEDIUM
    assert "traffic seen" in f.message


def test_plaintext_finding_id_is_stable_across_inode_changes():
    a = run_check("plaintext", snap(listener(verdict=Tls.PLAINTEXT)))
    b = run_check("plaintext", snap(dataclasses.replace(listener(verdict=Tls.PLAINTEXT), inode=999)))
    assert [f.id for f in a] == [f.id for f in b]


# -- open-port ---------------------------------------------------------------------------------------
def test_unlisted_port_is_open():
    (f,) = run_check("open-port", snap(listener(8080)))
    assert f.severity is Severity.MEDIUM
    assert "8080/tcp" in f.message


def test_published_and_exposed_ports_are_allowed():
    c = make_container(ports=(PublishedPort(8080, "tcp", "127.0.0.1", 18080),), exposed_ports=("9090/tcp",))
    assert run_check("open-port", snap(listener(8080), listener(9090), containers=(c,))) == []


def test_declared_ports_can_be_ignored_by_policy():
    c = make_container(exposed_ports=("9090/tcp",))
    found = run_check("open-port", snap(listener(9090), containers=(c,), policy=net_policy(allow_declared_ports=False)))
    assert len(found) == 1


@pytest.mark.parametrize("source", ["labels", "annotations"])
def test_allowed_ports_label_or_annotation(source):
    c = make_container(**{source: (("ztmon.io/allowed-ports", "8080/tcp, 9090/tcp"),)})
    assert run_check("open-port", snap(listener(8080), listener(9090), containers=(c,))) == []
    assert len(run_check("open-port", snap(listener(7000), containers=(c,)))) == 1


def test_allowlist_rule_by_selector():
    rule = PortAllowRule(ports=("8080/tcp",), name="web")
    assert run_check("open-port", snap(listener(8080), policy=net_policy(allowed_ports=(rule,)))) == []
    other = PortAllowRule(ports=("8080/tcp",), name="api")
    assert len(run_check("open-port", snap(listener(8080), policy=net_policy(allowed_ports=(other,))))) == 1


def test_udp_port_needs_udp_in_the_allowlist():
    c = make_container(labels=(("ztmon.io/allowed-ports", "53"),))
    assert len(run_check("open-port", snap(listener(53, proto="udp"), containers=(c,)))) == 1


def test_loopback_listeners_are_skipped_unless_asked():
    assert run_check("open-port", snap(listener(6379, address="127.0.0.1"))) == []
    s = snap(listener(6379, address="127.0.0.1"), policy=net_policy(open_port_include_loopback=True))
    assert len(run_check("open-port", s)) == 1


def test_node_listeners_are_judged_only_once_a_node_rule_exists():
    sshd = listener(22, cid="", host=True)
    assert run_check("open-port", snap(sshd)) == []
    rule = PortAllowRule(ports=("9100/tcp",), name="node_exporter", node=True)
    (f,) = run_check("open-port", snap(sshd, policy=net_policy(allowed_ports=(rule,))))
    assert f.resource.kind == "Node"
    ok = PortAllowRule(ports=("22/tcp",), name="sshd", node=True)
    assert run_check("open-port", snap(sshd, policy=net_policy(allowed_ports=(ok,)))) == []


# -- host-port ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("host_ip", ["", "0.0.0.0", "::"])
def test_published_on_all_host_interfaces(host_ip):
    c = make_container(ports=(PublishedPort(80, "tcp", host_ip, 8080),))
    (f,) = run_check("host-port", snap(containers=(c,)))
    assert f.severity is Severity.MEDIUM
    assert dict(f.evidence)["host_port"] == "8080"


def test_published_on_one_host_address_is_fine():
    c = make_container(ports=(PublishedPort(80, "tcp", "127.0.0.1", 8080),))
    assert run_check("host-port", snap(containers=(c,))) == []


def test_v4_and_v6_bindings_of_one_port_are_one_finding():
    c = make_container(ports=(PublishedPort(80, "tcp", "0.0.0.0", 8080), PublishedPort(80, "tcp", "::", 8080)))
    assert len(run_check("host-port", snap(containers=(c,)))) == 1


def test_host_network_container_listening_on_all_interfaces():
    (f,) = run_check("host-port", snap(listener(9100, host=True)))
    assert "host-network" in f.message


# -- cert-expiry -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("days", "severity"),
    [(-3, Severity.CRITICAL), (2, Severity.CRITICAL), (6.9, Severity.CRITICAL), (20, Severity.MEDIUM), (45, None)],
    ids=["expired", "two-days", "under-a-week", "under-a-month", "fine"],
)
def test_cert_expiry_thresholds(days, severity):
    li = listener(8443, verdict=Tls.TLS, cert_subject_cn="api", cert_not_after=NOW + timedelta(days=days))
    found = run_check("cert-expiry", snap(li))
    assert [f.severity for f in found] == ([severity] if severity else [])


def test_cert_expiry_thresholds_are_configurable():
    li = listener(8443, verdict=Tls.TLS, cert_not_after=NOW + timedelta(days=45))
    (f,) = run_check("cert-expiry", snap(li, policy=net_policy(cert_warning_days=60, cert_critical_days=50)))
    assert f.severity is Severity.CRITICAL


def test_cert_expiry_evidence():
    li = listener(8443, verdict=Tls.TLS, cert_subject_cn="api", cert_not_after=NOW + timedelta(days=3))
    (f,) = run_check("cert-expiry", snap(li))
    ev = dict(f.evidence)
    assert (ev["subject_cn"], ev["days_left"]) == ("api", "3.0")


# -- runtime-mismatch --------------------------------------------------------------------------------
def observed(**kw):
    base = {"container_id": CID, "pid": 7, "no_new_privs": True, "uids": (1000,) * 4, "rootfs_read_only": True}
    return ProcessPosture(**{**base, **kw})


def test_matching_posture_gives_nothing():
    assert run_check("runtime-mismatch", snap(containers=(make_container(observed=observed()),))) == []


def test_declared_read_only_but_mounted_rw():
    c = make_container(observed=observed(rootfs_read_only=False))
    (f,) = run_check("runtime-mismatch", snap(containers=(c,)))
    assert f.severity is Severity.HIGH
    assert dict(f.evidence)["observed_from"] == "/proc"


def test_dropped_all_but_holding_capabilities():
    c = make_container(observed=observed(cap_effective=("NET_RAW", "SYS_ADMIN")))
    (f,) = run_check("runtime-mismatch", snap(containers=(c,)))
    assert "NET_RAW, SYS_ADMIN" in f.message


def test_added_capabilities_are_not_a_mismatch():
    c = make_container(cap_add=("NET_BIND_SERVICE",), observed=observed(cap_effective=("NET_BIND_SERVICE",)))
    assert run_check("runtime-mismatch", snap(containers=(c,))) == []


def test_no_new_privs_not_applied():
    c = make_container(observed=observed(no_new_privs=False))
    assert [f.evidence[2] for f in run_check("runtime-mismatch", snap(containers=(c,)))] == [
        ("declared", "no_new_privileges=true")
    ]


def test_declared_non_root_but_uid_zero():
    c = make_container(observed=observed(uids=(0, 0, 0, 0)))
    (f,) = run_check("runtime-mismatch", snap(containers=(c,)))
    assert "uid 0" in f.message


def test_unknown_observations_are_not_mismatches():
    c = make_container(observed=observed(rootfs_read_only=None, no_new_privs=None, uids=()))
    assert run_check("runtime-mismatch", snap(containers=(c,))) == []


def test_weak_declaration_is_left_to_the_posture_checks():
    c = make_container(read_only_rootfs=False, cap_drop=(), observed=observed(rootfs_read_only=False))
    assert run_check("runtime-mismatch", snap(containers=(c,))) == []


@pytest.mark.parametrize("check_id", ["plaintext", "open-port", "host-port", "cert-expiry", "runtime-mismatch"])
def test_hardened_snapshot_without_network_data_gives_nothing(check_id):
    assert run_check(check_id, snap()) == []
