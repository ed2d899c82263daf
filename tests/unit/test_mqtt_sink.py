"""The MQTT sink without a broker: outbox writes, state across restarts, audit log, size limits,
backoff, error classes, metrics, settings and the engine wiring."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiomqtt.exceptions import MqttConnectError, MqttError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from ztmon import settings
from ztmon.engine import build
from ztmon.model.findings import Finding, Report, Resource, Severity, SourceStatus
from ztmon.sinks import mqtt, outbox
from ztmon.sinks.prometheus import PrometheusSink

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def finding(name: str, **evidence: str) -> Finding:
    return Finding.make(
        check="privileged",
        severity=Severity.HIGH,
        resource=Resource(kind="Container", name=name),
        message=f"{name} is privileged",
        evidence=evidence or {"setting": "Privileged"},
    )


def report(*findings: Finding, n: int = 1) -> Report:
    return Report(
        scan_id=f"scan-{n}",
        taken_at=T0 + timedelta(minutes=n),
        node="node-1",
        checks_enabled=("privileged",),
        findings=findings,
        sources=(SourceStatus("docker", up=True, last_success=T0, duration_seconds=0.0),),
    )


def make_sink(tmp_path: Path, **changes: Any) -> mqtt.MqttSink:
    opts: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": closed_port(),
        "node": "node-1",
        "outbox_path": tmp_path / "outbox.sqlite",
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.1,
    }
    opts.update(changes)
    return mqtt.MqttSink(mqtt.MqttOptions(**opts))


async def test_publish_stores_events_without_a_broker(tmp_path: Path):
    sink = make_sink(tmp_path)
    await sink.publish(report(finding("a"), finding("b")))
    assert sink.outbox.size == 2
    rows = sink.outbox.take(10)
    assert [r.topic for r in rows] == ["ztmon/default/node-1/findings/privileged"] * 2
    assert [orjson.loads(r.payload)["type"] for r in rows] == ["opened", "opened"]
    assert not sink.stats.connected
    await sink.close()


async def test_state_survives_a_restart(tmp_path: Path):
    """Open findings are remembered: after a restart only real changes become events."""
    first = make_sink(tmp_path)
    await first.publish(report(finding("a"), finding("b")))
    await first.close()
    second = make_sink(tmp_path)
    await second.publish(report(finding("a"), n=2))
    types = [orjson.loads(r.payload)["type"] for r in second.outbox.take(10)]
    assert types == ["opened", "opened", "resolved"]  # two from before the restart, still undelivered
    await second.close()


async def test_audit_log_has_every_event_as_a_json_line(tmp_path: Path):
    audit = tmp_path / "audit" / "events.jsonl"
    sink = make_sink(tmp_path, audit_log=str(audit))
    await sink.publish(report(finding("a"), finding("b")))
    await sink.publish(report(finding("a"), n=2))
    await sink.close()
    lines = [orjson.loads(line) for line in audit.read_text().splitlines()]
    assert [e["type"] for e in lines] == ["opened", "opened", "resolved"]
    assert len({e["event_id"] for e in lines}) == 3


async def test_audit_log_to_stdout(tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]):
    sink = make_sink(tmp_path, audit_log="-")
    await sink.publish(report(finding("a")))
    await sink.close()
    out = capfdbinary.readouterr().out  # unconfigured structlog also prints here: pick the event lines
    lines = [line for line in out.splitlines() if line.startswith(b'{"schema_version"')]
    assert [orjson.loads(line)["type"] for line in lines] == ["opened"]


async def test_oversized_event_loses_evidence_then_is_dropped(tmp_path: Path):
    sink = make_sink(tmp_path, max_payload_bytes=1500)
    await sink.publish(report(finding("fits"), finding("big", blob="x" * 5000), finding("huge" + "y" * 3000)))
    payloads = [orjson.loads(r.payload) for r in sink.outbox.take(10)]
    assert [p["finding"]["resource"]["name"][:4] for p in payloads] == ["fits", "big"]
    assert payloads[1]["truncated"] is True
    assert payloads[1]["finding"]["evidence"] == {}
    assert sink.outbox.dropped[outbox.DROP_OVERSIZED] == 1
    await sink.close()


async def test_close_without_publish_is_harmless(tmp_path: Path):
    sink = make_sink(tmp_path)
    await sink.close()


async def test_unreachable_broker_is_retried_and_counted(tmp_path: Path):
    sink = make_sink(tmp_path)
    await sink.publish(report(finding("a")))
    for _ in range(200):
        if sink.stats.errors["network"] >= 2:
            break
        await _sleep(0.02)
    assert sink.stats.errors["network"] >= 2
    assert sink.outbox.size == 1
    await sink.close()


async def _sleep(seconds: float) -> None:
    import asyncio  # noqa: PLC0415

    await asyncio.sleep(seconds)


def test_backoff_grows_with_jitter_and_caps():
    lows = mqtt.Backoff(base=1, cap=8, rand=lambda: 0.0)
    highs = mqtt.Backoff(base=1, cap=8, rand=lambda: 1.0)
    assert [lows.next() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert [highs.next() for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    highs.reset()
    assert highs.next() == 1


@pytest.mark.parametrize(
    ("error", "connected", "reason"),
    [
        (MqttConnectError(5), False, "auth"),
        (MqttConnectError(4), False, "auth"),
        (MqttConnectError(ReasonCode(PacketTypes.CONNACK, identifier=0x86)), False, "auth"),
        (MqttConnectError(ReasonCode(PacketTypes.CONNACK, identifier=0x87)), False, "auth"),
        (MqttConnectError(3), False, "refused"),
        (mqtt.CredentialsError("cannot read"), False, "auth"),
        (MqttError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), False, "tls"),
        (MqttError("Operation timed out"), False, "timeout"),
        (MqttError("[Errno 111] Connection refused"), False, "network"),
        (MqttError("Disconnected during message iteration"), True, "lost"),
        (ValueError("paho refuses an option"), False, "other"),
    ],
)
def test_classify(error: BaseException, connected: bool, reason: str):
    assert mqtt.classify(error, connected=connected) == reason


async def test_metrics_render_every_family(tmp_path: Path):
    sink = make_sink(tmp_path)
    sink.stats.observe(0.003)
    sink.stats.published["opened"] = 2
    reg = CollectorRegistry(auto_describe=False)
    reg.register(sink.collector)
    text = generate_latest(reg).decode()
    for line in (
        "ztmon_mqtt_connected 0.0",
        'ztmon_mqtt_events_published_total{type="opened"} 2.0',
        'ztmon_mqtt_events_published_total{type="resolved"} 0.0',
        "ztmon_mqtt_outbox_events 0.0",
        'ztmon_mqtt_outbox_dropped_total{reason="full"} 0.0',
        "ztmon_mqtt_outbox_degraded 0.0",
        'ztmon_mqtt_connection_errors_total{reason="auth"} 0.0',
        'ztmon_mqtt_publish_duration_seconds_bucket{le="0.0025"} 0.0',
        'ztmon_mqtt_publish_duration_seconds_bucket{le="0.005"} 1.0',
        'ztmon_mqtt_publish_duration_seconds_bucket{le="+Inf"} 1.0',
        "ztmon_mqtt_publish_duration_seconds_count 1.0",
    ):
        assert line in text, line
    await sink.close()


async def test_prometheus_sink_renders_live_collector_at_every_scrape(tmp_path: Path):
    sink = make_sink(tmp_path)
    prom = PrometheusSink(process_metrics=False)
    prom.add_live_collector(sink.collector)
    assert b"ztmon_mqtt_connected 0.0" in prom.exposition()
    sink.stats.connected = True  # no new Report: still visible at the next scrape
    assert b"ztmon_mqtt_connected 1.0" in prom.exposition()
    await sink.close()


# -- settings and wiring ----------------------------------------------------------------------------
def test_mqtt_is_off_by_default():
    assert settings.Settings().mqtt.enabled is False


def test_password_is_redacted():
    s = settings.Settings(mqtt={"enabled": True, "password": "hunter2"})
    assert s.mqtt.password is not None
    dumped = orjson.dumps(settings.redacted(s))
    assert b"hunter2" not in dumped
    assert settings.redacted(s)["mqtt"]["password"] == "**********"


@pytest.mark.parametrize(
    ("mqtt_cfg", "message"),
    [
        ({"topic_prefix": "a/#"}, "wildcards"),
        ({"password": "x", "password_file": "/run/secrets/p"}, "not both"),
        ({"tls": {"cert_file": "/c.pem"}}, "go together"),
        ({"reconnect_min_seconds": 10, "reconnect_max_seconds": 1}, "reconnect_max_seconds"),
        ({"protocol": "4"}, "protocol"),
    ],
)
def test_invalid_mqtt_settings(mqtt_cfg: dict[str, Any], message: str):
    with pytest.raises(ValidationError, match=message):
        settings.Settings(mqtt=mqtt_cfg)


def test_environment_sets_the_password(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ZTMON_MQTT__PASSWORD", "from-env")
    monkeypatch.setenv("ZTMON_MQTT__ENABLED", "true")
    s = settings.load(None, environ_path=False).settings
    assert s.mqtt.enabled
    assert s.mqtt.password is not None
    assert s.mqtt.password.get_secret_value() == "from-env"


async def test_engine_builds_the_sink_from_settings(tmp_path: Path):
    s = settings.Settings(
        node_name="n1",
        mqtt={
            "enabled": True,
            "host": "broker.example",
            "port": 8883,
            "cluster": "prod",
            "tls": {"enabled": True, "ca_file": "/ca.pem", "cert_file": "/c.pem", "key_file": "/k.pem"},
            "outbox_path": str(tmp_path / "o.sqlite"),
        },
    )
    sink = build.make_mqtt_sink(s)
    o = sink.options
    assert (o.host, o.port, o.node, o.cluster, o.identifier) == ("broker.example", 8883, "n1", "prod", "ztmon-n1")
    assert o.tls == mqtt.TLSOptions(
        enabled=True, ca_file=Path("/ca.pem"), cert_file=Path("/c.pem"), key_file=Path("/k.pem")
    )
    assert sink.topics.status == "ztmon/prod/n1/status"
    assert set(mqtt.MqttOptions.__dataclass_fields__) - {
        "node",
        "close_timeout_seconds",
        "rejected_after_attempts",
    } <= set(settings.MqttConfig.model_fields) | {"tls"}
    await sink.close()


async def test_password_file_is_read_at_connect(tmp_path: Path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    sink = make_sink(tmp_path, username="u", password_file=secret)
    assert sink._credentials() == ("s3cret", None)
    secret.unlink()
    with pytest.raises(mqtt.CredentialsError, match="password_file"):
        sink._credentials()
    await sink.close()
