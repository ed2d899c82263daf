"""drift-port: a listener not in the baseline (high), TLS dropped or exposure widened (medium)."""

from __future__ import annotations

from tests.unit.conftest import make_container
from tests.unit.drift_helpers import locked, run, snapshot, workload
from ztmon.model.baseline import ContainerBaseline, ListenerBaseline
from ztmon.model.findings import Finding, Severity
from ztmon.model.network import Listener, ProbeResult, Tls

ID = "drift-port"
WEB = make_container(name="web")


def listener(port: int, *, address: str = "0.0.0.0", tls: Tls | None = None, protocol: str = "tcp", **kw) -> Listener:
    probe = ProbeResult(verdict=tls) if tls is not None else None
    kw.setdefault("container_id", WEB.id)
    return Listener(netns="net:[9]", protocol=protocol, address=address, port=port, probe=probe, **kw)


def findings(*listeners: Listener, recorded: tuple[ListenerBaseline, ...] | None = ()) -> list[Finding]:
    base = workload("web", ContainerBaseline("web"), listeners=recorded)
    return run(ID, snapshot(WEB, view=locked(base), listeners=listeners))


def test_listener_in_the_baseline_is_no_drift() -> None:
    assert findings(listener(8080, tls=Tls.TLS), recorded=(ListenerBaseline(8080, tls=True, scope="all"),)) == []


def test_port_opened_after_locking_is_high() -> None:
    [f] = findings(listener(4444), recorded=(ListenerBaseline(8080),))
    assert f.severity is Severity.HIGH
    assert "listens on 0.0.0.0:4444/tcp, not in the baseline" in f.message


def test_ipv4_and_ipv6_on_one_port_are_one_finding() -> None:
    assert len(findings(listener(4444), listener(4444, address="::"))) == 1


def test_protocol_matters() -> None:
    [f] = findings(listener(53, protocol="udp"), recorded=(ListenerBaseline(53, protocol="tcp"),))
    assert "53/udp" in f.message


def test_tls_dropped_is_medium_and_gained_is_low() -> None:
    [dropped] = findings(listener(8443, tls=Tls.PLAINTEXT), recorded=(ListenerBaseline(8443, tls=True),))
    assert dropped.severity is Severity.MEDIUM
    [gained] = findings(listener(8080, tls=Tls.TLS), recorded=(ListenerBaseline(8080, tls=False),))
    assert gained.severity is Severity.LOW
    assert findings(listener(8443, tls=Tls.UNKNOWN), recorded=(ListenerBaseline(8443, tls=True),)) == []


def test_exposure_widened_is_medium() -> None:
    [f] = findings(listener(6379), recorded=(ListenerBaseline(6379, scope="loopback"),))
    assert f.severity is Severity.MEDIUM
    assert "binds 0.0.0.0 (all)" in f.message
    assert findings(listener(6379, address="127.0.0.1"), recorded=(ListenerBaseline(6379, scope="all"),)) == []


def test_listeners_not_recorded_are_not_judged() -> None:
    assert findings(listener(4444), recorded=None) == []


def test_listener_attributed_by_namespace_when_the_process_is_unknown() -> None:
    [f] = findings(listener(4444, container_id="", container_ids=(WEB.id,)))
    assert f.resource.container == "web"
    [shared] = findings(listener(4444, container_id="", container_ids=("f" * 64, WEB.id)))  # a pod: lowest id
    assert shared.resource.container == "web"


def test_host_listeners_without_a_container_are_not_workload_drift() -> None:
    assert findings(listener(22, container_id="", host_netns=True)) == []
