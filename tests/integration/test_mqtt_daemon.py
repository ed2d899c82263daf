"""`ztmon run` with MQTT on: the sink is wired, its metrics are on /metrics, status and summary are
published; SIGTERM says `offline` itself, SIGKILL leaves it to the broker's last will."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mosquitto import Mosquitto, Recorder, free_port

pytestmark = pytest.mark.integration

ZTMON = Path(sys.executable).with_name("ztmon")


@pytest.fixture
def broker(tmp_path: Path):
    with Mosquitto(tmp_path / "broker") as b:
        yield b


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback URL built here
            return int(r.status), r.read().decode()
    except OSError:
        return 0, ""


@contextlib.contextmanager
def daemon(broker_port: int, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = {
        **os.environ,
        "ZTMON_NODE_NAME": "daemon-node",
        "ZTMON_SERVER__ADDRESS": "127.0.0.1",
        "ZTMON_SERVER__PORT": str(port),
        "ZTMON_SOURCES__DOCKER__ENABLED": "false",  # no container runtime needed to test the wiring
        "ZTMON_SOURCES__PROCFS__ENABLED": "false",
        "ZTMON_MQTT__ENABLED": "true",
        "ZTMON_MQTT__HOST": "127.0.0.1",
        "ZTMON_MQTT__PORT": str(broker_port),
        "ZTMON_MQTT__CLUSTER": "it",
        "ZTMON_MQTT__OUTBOX_PATH": str(tmp_path / "outbox.sqlite"),
    }
    with (tmp_path / "daemon.log").open("ab") as log:
        proc = subprocess.Popen([str(ZTMON), "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while get(f"{base}/readyz")[0] != 200:
            assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
            assert time.monotonic() < deadline, "daemon not ready"
            time.sleep(0.05)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def test_daemon_publishes_status_summary_and_metrics(broker: Mosquitto, tmp_path: Path):
    async with Recorder(broker.port) as rec:
        with daemon(broker.port, tmp_path) as (proc, base):
            await rec.wait_for(lambda r: bool(r.on("it/daemon-node/status")) and bool(r.on("it/daemon-node/summary")))
            assert rec.on("/status")[0].payload == b"online"
            assert rec.on("/summary")[-1].json()["node"] == "daemon-node"
            deadline = time.monotonic() + 10
            while metric(get(f"{base}/metrics")[1], "ztmon_mqtt_connected") != 1.0:
                assert time.monotonic() < deadline, get(f"{base}/metrics")[1]
                await asyncio.sleep(0.05)
            text = get(f"{base}/metrics")[1]
            for name in (
                "ztmon_mqtt_outbox_events",
                "ztmon_mqtt_outbox_degraded",
                "ztmon_mqtt_publish_duration_seconds_count",
            ):
                assert metric(text, name) is not None, name
            assert 'ztmon_mqtt_events_published_total{type="opened"}' in text
            assert 'ztmon_mqtt_outbox_dropped_total{reason="full"}' in text

            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
            await rec.wait_for(lambda r: [m.payload for m in r.on("/status")][-1:] == [b"offline"])


async def test_last_will_when_the_daemon_is_killed(broker: Mosquitto, tmp_path: Path):
    async with Recorder(broker.port) as rec:
        with daemon(broker.port, tmp_path) as (proc, _):
            await rec.wait_for(lambda r: [m.payload for m in r.on("/status")] == [b"online"])
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            await rec.wait_for(lambda r: [m.payload for m in r.on("/status")] == [b"online", b"offline"])
