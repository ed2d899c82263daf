"""MQTT sink throughput against a local mosquitto, next to raw-client baselines measured in the same run.

  1. baseline: raw paho-mqtt QoS 1 publish loop (network thread, 100 in flight), N messages
  2. baseline: raw aiomqtt QoS 1, batches of 100 concurrent publishes
  3. ztmon: sustained events through MqttSink (diff -> sqlite outbox -> QoS 1 -> ack -> delete)
     target >= 2,000 events/s
  4. ztmon: replay of 10,000 events queued while the broker was down, timed from broker start to an
     empty outbox; target < 10 s

Usage: .venv/bin/python bench/mqtt.py [--events 20000] [--replay 10000]
Needs the `mosquitto` binary (apt-get install mosquitto); starts its own on a free loopback port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import paho.mqtt.client as paho
from benchlib import free_port, verdict
from paho.mqtt.enums import CallbackAPIVersion

from ztmon.model.findings import Finding, Report, Resource, Severity, SourceStatus
from ztmon.sinks import mqtt

PAYLOAD = b"x" * 900  # about the size of one finding event
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@contextlib.contextmanager
def broker(workdir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    conf = workdir / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false", "log_type error"]
    if os.geteuid() == 0:
        lines.append("user root")
    conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.02)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def paho_baseline(port: int, n: int) -> float:
    client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-paho")
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        start = time.perf_counter()
        infos = [client.publish("bench/paho", PAYLOAD, qos=1) for _ in range(n)]
        for info in infos:
            info.wait_for_publish(timeout=60)
        return time.perf_counter() - start
    finally:
        client.disconnect()
        client.loop_stop()


async def aiomqtt_baseline(port: int, n: int) -> float:
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-aiomqtt", max_inflight_messages=100) as client:
        client.pending_calls_threshold = 1000
        start = time.perf_counter()
        for first in range(0, n, 100):
            await asyncio.gather(
                *(client.publish("bench/aiomqtt", PAYLOAD, qos=1) for _ in range(first, min(n, first + 100)))
            )
        return time.perf_counter() - start


def findings(first: int, count: int) -> list[Finding]:
    return [
        Finding.make(
            check="privileged",
            severity=Severity.HIGH,
            resource=Resource(kind="Container", name=f"app-{i}", container=f"app-{i}", image="registry.example/app:1"),
            message=f"container app-{i} runs privileged",
            evidence={"setting": "HostConfig.Privileged"},
        )
        for i in range(first, first + count)
    ]


def report(open_findings: list[Finding], n: int) -> Report:
    return Report(
        scan_id=f"bench-{n}",
        taken_at=T0 + timedelta(seconds=n),
        node="bench-node",
        checks_enabled=("privileged",),
        findings=tuple(open_findings),
        sources=(SourceStatus("docker", up=True, last_success=T0, duration_seconds=0.0),),
    )


def sink_for(port: int, outbox: Path) -> mqtt.MqttSink:
    return mqtt.MqttSink(
        mqtt.MqttOptions(
            host="127.0.0.1",
            port=port,
            node="bench-node",
            outbox_path=outbox,
            reconnect_min_seconds=0.05,
            reconnect_max_seconds=0.2,
            outbox_max_events=1_000_000,
        )
    )


async def wait_empty(sink: mqtt.MqttSink, within: float = 300.0) -> None:
    deadline = time.perf_counter() + within
    while sink.outbox.size:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"outbox still holds {sink.outbox.size}")
        await asyncio.sleep(0.005)


async def sustained(port: int, total: int, workdir: Path) -> tuple[float, float]:
    """Reports each open 500 findings and resolve the previous 500: 1,000 events per report."""
    sink = sink_for(port, workdir / "sustained.sqlite")
    per = 500
    try:
        await sink.publish(report([], 0))  # connect first: measure steady state, not the handshake
        while not sink.stats.connected:  # noqa: ASYNC110 - polls the sink's own state; no event to wait on
            await asyncio.sleep(0.01)
        start = time.perf_counter()
        enqueue = 0.0
        made, n = 0, 0
        while made < total:
            n += 1
            t = time.perf_counter()
            await sink.publish(report(findings(n * per, per), n))
            enqueue = max(enqueue, time.perf_counter() - t)
            made += per if n == 1 else 2 * per
            await asyncio.sleep(0)  # scans are spaced in life; here the next one comes at once
        await wait_empty(sink)
        elapsed = time.perf_counter() - start
        return made / elapsed, enqueue
    finally:
        await sink.close()


async def replay(port: int, total: int, workdir: Path) -> tuple[float, int]:
    """Broker down: queue `total` events; start it; time to an empty outbox."""
    sink = sink_for(port, workdir / "replay.sqlite")
    try:
        await sink.publish(report(findings(0, total), 1))  # `total` opened events, broker absent
        queued = sink.outbox.size
        with broker(workdir, port):
            start = time.perf_counter()
            await wait_empty(sink)
            return time.perf_counter() - start, queued
    finally:
        await sink.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--replay", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ztmon-bench-mqtt-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        with broker(workdir, port):
            paho_s = await asyncio.to_thread(paho_baseline, port, args.events)
            aio_s = await aiomqtt_baseline(port, args.events)
            rate, worst_enqueue = await sustained(port, args.events, workdir)
        replay_port = free_port()
        replay_s, queued = await replay(replay_port, args.replay, workdir)

    print(f"# MQTT QoS 1 to a local mosquitto, {args.events} messages; payload ~{len(PAYLOAD)} B")
    print(f"{'what':48} {'events/s':>10} {'seconds':>9}  target")
    print(f"{'baseline: raw paho publish loop (100 in flight)':48} {args.events / paho_s:10.0f} {paho_s:9.2f}")
    print(f"{'baseline: raw aiomqtt, batches of 100':48} {args.events / aio_s:10.0f} {aio_s:9.2f}")
    print(
        f"{'ztmon MqttSink sustained (diff+outbox+ack)':48} {rate:10.0f} {args.events / rate:9.2f}"
        f"  >= 2000/s {verdict(rate >= 2000)}"
    )
    print(f"{'  worst publish() (a 1,000-event report)':48} {'':>10} {worst_enqueue:9.3f}  (scan-side cost)")
    print(
        f"{f'ztmon replay of {queued} queued events':48} {queued / replay_s:10.0f} {replay_s:9.2f}"
        f"  < 10 s {verdict(replay_s < 10)}"
    )


if __name__ == "__main__":
    asyncio.run(main())
