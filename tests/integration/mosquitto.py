"""Helpers for the MQTT integration tests: a private mosquitto per test, a recording subscriber, synthetic
reports, and a child process running the MQTT sink (for the SIGKILL test).

Each broker is our own process: a config file in a temporary directory, `listener <free port> 127.0.0.1`,
no system service, nothing but loopback. Persistence is off unless a test asks for it (the outage test
keeps the *subscriber's* session across a broker restart, as a real consumer would).

Run as a script, this module is the sink child: `python mosquitto.py sink-child --port P --outbox F ...`.
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
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import aiomqtt
import orjson
import pytest
import structlog

from ztmon.model.findings import Finding, Report, Resource, Severity, SourceStatus
from ztmon.sinks import mqtt

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
CHECKS = ("privileged", "run-as-root", "readonly-rootfs")


def require_mosquitto() -> str:
    """The broker binary; skipped outside CI when missing (scripts/test.sh installs it), failed in CI."""
    if MOSQUITTO is None:
        if os.environ.get("CI"):
            pytest.fail("mosquitto is not installed (scripts/test.sh installs it)")
        pytest.skip("mosquitto is not installed (apt-get install mosquitto mosquitto-clients)")
    return MOSQUITTO


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mosquitto:
    """One broker process on 127.0.0.1. `stop()` / `start()` again keep the same port and config."""

    workdir: Path
    port: int = field(default_factory=free_port)
    extra: str = ""  # more config lines (TLS, auth, limits)
    persistence: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log(self) -> Path:
        return self.workdir / "mosquitto.log"

    def write_conf(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "max_queued_messages 0",  # no limit for a persistent subscriber's queue during the outage test
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to user mosquitto, who cannot read our 0700 tmp dirs
        if "allow_anonymous" not in self.extra:
            lines.append("allow_anonymous true")
        self.conf.write_text("\n".join([*lines, self.extra, ""]), encoding="utf-8")

    def start(self, timeout: float = 10.0) -> Mosquitto:
        binary = require_mosquitto()
        self.write_conf()
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err}\n{self.log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return self
            time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen on {self.port}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def log_tail(self, n: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return orjson.loads(self.payload)


@dataclass
class Recorder:
    """A subscriber that records every message; reconnects by itself (e.g. across a broker restart).

    `persistent=True` uses a fixed client id and clean_session=False with QoS 1, so a broker with
    persistence keeps its subscription and queues messages for it while it is away.
    """

    port: int
    topic: str = "#"
    persistent: bool = False
    identifier: str = field(default_factory=lambda: f"recorder-{os.getpid()}-{time.monotonic_ns()}")
    client_kwargs: dict[str, Any] = field(default_factory=dict)  # TLS, credentials
    messages: list[Received] = field(default_factory=list)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            try:
                client = aiomqtt.Client(
                    "127.0.0.1",
                    self.port,
                    identifier=self.identifier,
                    clean_session=not self.persistent,
                    timeout=5,
                    **self.client_kwargs,
                )
                try:
                    async with client:
                        await client.subscribe(self.topic, qos=1)
                        self.subscribed.set()
                        async for m in client.messages:
                            self._record(m)
                finally:
                    # aiomqtt's iterator raises on disconnect even with messages still queued (already
                    # acked to the broker): record those too, or the harness itself would lose events
                    while len(client.messages):
                        self._record(client._queue.get_nowait())
            except aiomqtt.MqttError:
                self.subscribed.clear()
                await asyncio.sleep(0.05)

    def _record(self, m: aiomqtt.Message) -> None:
        payload = m.payload if isinstance(m.payload, bytes) else str(m.payload).encode()
        self.messages.append(Received(str(m.topic), payload, bool(m.retain)))

    async def __aenter__(self) -> Self:
        self.task = asyncio.create_task(self._run(), name="recorder")
        await asyncio.wait_for(self.subscribed.wait(), timeout=10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def on(self, suffix: str) -> list[Received]:
        return [m for m in self.messages if m.topic.endswith(suffix)]

    def events(self) -> list[dict[str, Any]]:
        return [m.json() for m in self.messages if "/findings/" in m.topic]

    async def wait_for(self, predicate: Callable[[Recorder], bool], within: float = 15.0) -> None:
        deadline = time.monotonic() + within
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; {len(self.messages)} messages: {self.messages[-5:]}")
            await asyncio.sleep(0.02)


# -- synthetic findings and reports -----------------------------------------------------------------
def finding(i: int, *, severity: Severity = Severity.HIGH, check: str = "privileged", note: str = "") -> Finding:
    resource = Resource(kind="Container", name=f"app-{i}", container=f"app-{i}", image="registry.example/app:1")
    evidence = {"setting": "HostConfig.Privileged", **({"note": note} if note else {})}
    return Finding.make(
        check=check,
        severity=severity,
        resource=resource,
        message=f"container app-{i} runs privileged",
        evidence=evidence,
    )


def report(findings: list[Finding], *, n: int = 1, node: str = "node-1", up: bool = True) -> Report:
    return Report(
        scan_id=f"scan-{n}",
        taken_at=T0 + timedelta(seconds=n),
        node=node,
        checks_enabled=CHECKS,
        findings=tuple(findings),
        sources=(SourceStatus("docker", up=up, last_success=T0 if up else None, duration_seconds=0.01),),
    )


def options(port: int, outbox: Path | None, **changes: Any) -> mqtt.MqttOptions:
    """Fast-reconnecting options for tests (the defaults are tuned for a fleet, not a test)."""
    base: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "node": "node-1",
        "cluster": "test",
        "outbox_path": outbox,
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.5,
        "publish_timeout_seconds": 3.0,
        "keepalive_seconds": 5,
    }
    base.update(changes)
    return mqtt.MqttOptions(**base)


@contextlib.asynccontextmanager
async def running_sink(opts: mqtt.MqttOptions) -> AsyncIterator[mqtt.MqttSink]:
    sink = mqtt.MqttSink(opts)
    try:
        yield sink
    finally:
        await sink.close()


async def until(predicate: Callable[[], bool], within: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.contextmanager
def child_sink(
    port: int, outbox: Path, *, reports: int, per_report: int, audit: Path
) -> Iterator[subprocess.Popen[str]]:
    """A process running the sink over `reports` synthetic reports; prints `ENQUEUED <n>` then idles."""
    cmd = [
        sys.executable,
        str(Path(__file__)),
        "sink-child",
        "--port", str(port),
        "--outbox", str(outbox),
        "--reports", str(reports),
        "--per-report", str(per_report),
        "--audit", str(audit),
    ]  # fmt: skip
    with (outbox.parent / "child.log").open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


async def wait_enqueued(proc: subprocess.Popen[str], within: float = 30.0) -> int:
    """The child's `ENQUEUED <n>` line (its logs go to child.log beside the outbox)."""
    assert proc.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout=within)
    assert line.startswith("ENQUEUED "), f"child said {line!r} (exit {proc.poll()})"
    return int(line.split()[1])


def scripted_reports(reports: int, per_report: int) -> list[Report]:
    """Report k opens `per_report` new findings and resolves the ones report k-1 opened."""
    return [report([finding(k * per_report + i) for i in range(per_report)], n=k + 1) for k in range(reports)]


async def _child_main(args: argparse.Namespace) -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is the protocol
    opts = options(args.port, Path(args.outbox), audit_log=args.audit)
    sink = mqtt.MqttSink(opts)
    await sink.start()  # a restarted child has no report: it only delivers what the outbox holds
    for r in scripted_reports(args.reports, args.per_report):
        await sink.publish(r)
    print(f"ENQUEUED {sink.outbox.size}", flush=True)
    await asyncio.Event().wait()  # until SIGKILL, or until the test's broker took everything


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["sink-child"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--outbox", required=True)
    parser.add_argument("--reports", type=int, default=0)
    parser.add_argument("--per-report", type=int, default=0)
    parser.add_argument("--audit", default="")
    asyncio.run(_child_main(parser.parse_args()))


if __name__ == "__main__":
    main()
