"""MQTT against a real mosquitto: TLS with client certificates, a broker refusing our credentials, and
payloads larger than the broker (or we) accept."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
import structlog
import trustme
from mosquitto import Mosquitto, Recorder, finding, options, report, running_sink, until

from ztmon.sinks import mqtt, outbox

pytestmark = pytest.mark.integration


# -- mTLS ----------------------------------------------------------------------------------------------
@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("ztmon-node-1")
    files = {
        "ca": tmp_path / "ca.pem",
        "server_cert": tmp_path / "server.pem",
        "server_key": tmp_path / "server.key",
        "client_cert": tmp_path / "client.pem",
        "client_key": tmp_path / "client.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    server.cert_chain_pems[0].write_to_path(str(files["server_cert"]))
    server.private_key_pem.write_to_path(str(files["server_key"]))
    client.cert_chain_pems[0].write_to_path(str(files["client_cert"]))
    client.private_key_pem.write_to_path(str(files["client_key"]))
    return files


@pytest.fixture
def tls_broker(tmp_path: Path, pki: dict[str, Path]):
    extra = "\n".join(
        [
            f"cafile {pki['ca']}",
            f"certfile {pki['server_cert']}",
            f"keyfile {pki['server_key']}",
            "require_certificate true",  # mTLS: no client certificate, no TLS session
        ]
    )
    with Mosquitto(tmp_path / "broker", extra=extra) as b:
        yield b


def client_context(pki: dict[str, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    ctx.load_cert_chain(str(pki["client_cert"]), str(pki["client_key"]))
    return ctx


async def test_mtls_with_client_certificate_delivers(tls_broker: Mosquitto, pki: dict[str, Path], tmp_path: Path):
    tls = mqtt.TLSOptions(enabled=True, ca_file=pki["ca"], cert_file=pki["client_cert"], key_file=pki["client_key"])
    async with (
        Recorder(tls_broker.port, client_kwargs={"tls_context": client_context(pki)}) as rec,
        running_sink(options(tls_broker.port, tmp_path / "o.sqlite", tls=tls)) as sink,
    ):
        await sink.publish(report([finding(1)]))
        await rec.wait_for(lambda r: len(r.events()) == 1)
        assert rec.events()[0]["type"] == "opened"
        assert sink.stats.errors["tls"] == 0


async def test_tls_without_client_certificate_is_refused_and_retried(
    tls_broker: Mosquitto, pki: dict[str, Path], tmp_path: Path
):
    tls = mqtt.TLSOptions(enabled=True, ca_file=pki["ca"])  # no client certificate
    async with running_sink(options(tls_broker.port, tmp_path / "o.sqlite", tls=tls)) as sink:
        await sink.publish(report([finding(1)]))
        await until(lambda: sum(sink.stats.errors.values()) >= 2, what="retried connection errors")
        assert not sink.stats.connected
        assert sink.outbox.size == 1  # kept for when the certificate is fixed


async def test_tls_with_untrusted_server_is_a_tls_error(tls_broker: Mosquitto, tmp_path: Path):
    other_ca = trustme.CA()
    ca_file = tmp_path / "other-ca.pem"
    other_ca.cert_pem.write_to_path(str(ca_file))
    async with running_sink(
        options(tls_broker.port, tmp_path / "o.sqlite", tls=mqtt.TLSOptions(enabled=True, ca_file=ca_file))
    ) as sink:
        await sink.publish(report([finding(1)]))
        await until(lambda: sink.stats.errors["tls"] >= 2, what="tls errors")
        assert "tls" in sink.stats.last_error


# -- authentication ------------------------------------------------------------------------------------
@pytest.fixture
def auth_broker(tmp_path: Path):
    passwd = shutil.which("mosquitto_passwd")
    if passwd is None:
        pytest.skip("mosquitto_passwd (package mosquitto) is missing")
    users = tmp_path / "passwd"
    subprocess.run([passwd, "-c", "-b", str(users), "ztmon", "right-password"], check=True, capture_output=True)
    users.chmod(0o600)
    with Mosquitto(tmp_path / "broker", extra=f"allow_anonymous false\npassword_file {users}") as b:
        yield b


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_auth_refused_is_clear_counted_retried_then_recovers(
    auth_broker: Mosquitto, tmp_path: Path, protocol: str
):
    secret = tmp_path / "mqtt-password"
    secret.write_text("wrong-password\n")
    opts = options(auth_broker.port, tmp_path / "o.sqlite", username="ztmon", password_file=secret, protocol=protocol)
    creds = {"username": "ztmon", "password": "right-password"}
    with structlog.testing.capture_logs() as logs:
        async with Recorder(auth_broker.port, client_kwargs=creds) as rec, running_sink(opts) as sink:
            await sink.publish(report([finding(1)]))
            await until(lambda: sink.stats.errors["auth"] >= 3, what="three refused attempts")
            assert not sink.stats.connected
            assert sink.outbox.size == 1
            assert sink._task is not None
            assert not sink._task.done()  # no crash

            secret.write_text("right-password\n")  # re-read at the next attempt
            await rec.wait_for(lambda r: len(r.events()) == 1)
            await until(lambda: sink.stats.connected, what="connection")
    refused = [e for e in logs if e["event"] == "mqtt_auth_failed"]
    assert len(refused) == 1  # once per streak, not once per retry
    assert refused[0]["log_level"] == "error"
    assert "password" in refused[0]["hint"]
    assert "wrong-password" not in repr(logs)
    assert "right-password" not in repr(logs)


# -- size limits ---------------------------------------------------------------------------------------
async def test_event_over_our_limit_is_truncated_and_delivered(tmp_path: Path):
    with Mosquitto(tmp_path / "broker") as broker:
        async with (
            Recorder(broker.port) as rec,
            running_sink(options(broker.port, tmp_path / "o.sqlite", max_payload_bytes=2048)) as sink,
        ):
            await sink.publish(report([finding(1, note="n" * 5000)]))
            await rec.wait_for(lambda r: len(r.events()) == 1)
            event = rec.events()[0]
            assert event["truncated"] is True
            assert event["finding"]["evidence"] == {}


async def test_event_over_the_brokers_limit_is_dropped_and_the_rest_delivered(tmp_path: Path):
    """mosquitto drops the connection on a packet over max_packet_size; that event must not block the rest."""
    with Mosquitto(tmp_path / "broker", extra="max_packet_size 4096") as broker:
        async with (
            Recorder(broker.port) as rec,
            running_sink(options(broker.port, tmp_path / "o.sqlite", rejected_after_attempts=3)) as sink,
        ):
            await sink.publish(report([finding(1), finding(2, note="n" * 8000), finding(3)]))
            await rec.wait_for(lambda r: len(unique(r.events())) == 2, within=30)
            names = [e["finding"]["resource"]["name"] for e in unique(rec.events())]
            assert names == ["app-1", "app-3"]  # app-1 may arrive twice: its ack can be lost with the connection
            await until(lambda: sink.outbox.size == 0, what="empty outbox")
            assert sink.outbox.dropped[outbox.DROP_REJECTED] == 1
            assert sink.stats.errors["lost"] >= 3
            await sink.publish(report([finding(1), finding(3), finding(4)], n=2))  # and life goes on
            await rec.wait_for(lambda r: len(unique(r.events())) == 3)
            assert unique(rec.events())[-1]["finding"]["resource"]["name"] == "app-4"


def unique(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a consumer does: de-duplicate by event id, keeping the first copy."""
    seen: dict[str, dict[str, Any]] = {}
    for e in events:
        seen.setdefault(e["event_id"], e)
    return list(seen.values())
