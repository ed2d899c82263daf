"""Integration helpers: containers on a real dockerd, `ztmon` run as a subprocess, polling with deadlines.

A module of its own (not conftest) so that test modules can import it by a name no other conftest shares.
Tests only talk to loopback and unix sockets.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

T = TypeVar("T")

SESSION = uuid.uuid4().hex[:6]
PREFIX = f"ztit-{SESSION}-"
TEST_LABEL = "ztmon.test=1"
SESSION_LABEL = f"ztmon.test.session={SESSION}"
BUSYBOX = Path("/usr/bin/busybox")
DOCKERFILE = b'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\n'
# The ztmon console script of the interpreter running pytest (.venv/bin/ztmon), else the one on PATH.
ZTMON = str(Path(sys.executable).with_name("ztmon")) if Path(sys.executable).with_name("ztmon").exists() else "ztmon"
SLEEP = ("sleep", "3600")  # PID 1 that does nothing; `docker rm -f` kills it at once
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key id
URL_PASSWORD = "pa55-w0rd-x9"  # a fixture value that must never leave ztmon

LATENCIES: dict[str, list[float]] = {}  # printed in the terminal summary: measured, not asserted only


def record_latency(what: str, seconds: float) -> None:
    LATENCIES.setdefault(what, []).append(seconds)


def poll(fn: Callable[[], T], *, timeout: float, what: str, interval: float = 0.01) -> tuple[T, float]:
    """Call `fn` until it returns something truthy; (value, seconds waited). Fails naming `what`."""
    start = time.monotonic()
    last: T = fn()
    while not last:
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout:.1f} s waiting for {what}; last value: {last!r}")
        time.sleep(interval)
        last = fn()
    return last, time.monotonic() - start


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment without any ZTMON_* of the caller (a stray variable must not change a test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZTMON_")}
    env.update(extra or {})
    return env


def docker(*args: str, host: str | None = None, timeout: float = 60, check: bool = True) -> str:
    cmd = ["docker", *(["-H", host] if host else []), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def ztmon_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ZTMON, *args], capture_output=True, text=True, env=clean_env(env), timeout=timeout, check=False
    )


def scan_json(*args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    proc = ztmon_cli("scan", "--output", "json", *args, env=env)
    assert proc.returncode in {0, 1}, f"ztmon scan exited {proc.returncode}: {proc.stderr}"
    return json.loads(proc.stdout), proc


def findings_of(report: dict[str, Any], name: str, *, key: str = "findings") -> list[dict[str, Any]]:
    return [f for f in report[key] if f["resource"]["name"] == name]


# -- containers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Container:
    name: str
    id: str
    host: str | None = None  # the dockerd it runs on (None = the shared one)


@dataclass
class Containers:
    """Creates labelled, uniquely named containers and force-removes every one of them on cleanup."""

    prefix: str
    image: str
    host: str | None = None
    names: list[str] = field(default_factory=list)

    def run(
        self,
        suffix: str,
        *flags: str,
        image: str | None = None,
        cmd: tuple[str, ...] = SLEEP,
        start: bool = True,
    ) -> Container:
        """`docker run -d` (or `docker create` when not `start`) with the test labels."""
        name = f"{self.prefix}{suffix}"
        self.names.append(name)  # before the call: a run that fails half-way still leaves a container
        verb = ("run", "-d") if start else ("create",)
        labels = ("--label", TEST_LABEL, "--label", SESSION_LABEL)
        cid = docker(*verb, "--name", name, *labels, *flags, image or self.image, *cmd, host=self.host)
        return Container(name, cid, self.host)

    def run_many(self, specs: dict[str, Spec]) -> dict[str, Container]:
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = {
                k: pool.submit(self.run, k, *s.flags, image=s.image or None, start=s.start) for k, s in specs.items()
            }
            return {k: f.result() for k, f in futures.items()}

    def remove(self, container: Container) -> None:
        docker("rm", "-f", container.name, host=self.host, check=False)

    def cleanup(self) -> None:
        if self.names:
            docker("rm", "-f", *self.names, host=self.host, check=False)
        self.names.clear()


# -- the daemon -----------------------------------------------------------------------------------

_NO_TOKEN = object()


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    workdir: Path
    port: int = 0
    token: str | None = None
    started: float = field(default_factory=time.monotonic)

    # HTTP
    def request(
        self, path: str, *, token: object = _NO_TOKEN, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, dict[str, str]]:
        use = self.token if token is _NO_TOKEN else token
        headers = {**({"Authorization": f"Bearer {use}"} if use else {}), **(headers or {})}
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()

    def metrics_text(self) -> str:
        status, body, _ = self.request("/metrics")
        assert status == 200, f"/metrics answered {status}: {body[:200]!r}"
        return body.decode()

    def samples(self, text: str | None = None) -> list[Sample]:
        text = self.metrics_text() if text is None else text
        return [s for fam in text_string_to_metric_families(text) for s in fam.samples]

    def series(self, name: str, text: str | None = None, **labels: str) -> list[Sample]:
        """Samples of `name` with these exact label values. Lines are pre-filtered as text before parsing:
        polling loops call this every few milliseconds on a large exposition, on a small machine."""
        text = self.metrics_text() if text is None else text
        wanted = [f'{k}="{v}"' for k, v in labels.items()]
        lines = [
            line
            for line in text.splitlines()
            if line.startswith((name + "{", name + " ")) and all(w in line for w in wanted)
        ]
        return [
            s
            for s in self.samples("\n".join(lines) + "\n")
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, text: str | None = None, **labels: str) -> float:
        found = self.series(name, text, **labels)
        assert len(found) == 1, f"expected one {name}{labels} series, got {found}"
        return found[0].value

    def findings(self, query: str = "") -> dict[str, Any]:
        status, body, _ = self.request("/findings" + query)
        assert status == 200, f"/findings answered {status}: {body[:200]!r}"
        return json.loads(body)

    # process and log
    def log_text(self) -> str:
        parts = []
        for fname in ("stdout.log", "stderr.log"):
            with contextlib.suppress(OSError):
                parts.append((self.workdir / fname).read_text(errors="replace"))
        return "".join(parts)

    def log_events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                obj = json.loads(line)
                if isinstance(obj, dict):
                    out.append(obj)
        return out

    def alive(self) -> bool:
        return self.proc.poll() is None

    def assert_alive(self) -> None:
        if not self.alive():
            pytest.fail(f"ztmon run exited {self.proc.returncode}; log:\n{self.log_text()[-4000:]}")

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=6)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@dataclass
class Daemons:
    root: Path
    running: list[Daemon] = field(default_factory=list)

    def start(self, env: dict[str, str] | None = None, *, args: tuple[str, ...] = (), ready: bool = True) -> Daemon:
        workdir = Path(tempfile.mkdtemp(prefix="daemon-", dir=self.root))
        full = {
            "ZTMON_SERVER__PORT": "0",  # the bound port is read back from the "listening" log line
            "ZTMON_SERVER__ADDRESS": "127.0.0.1",
            "ZTMON_LOG__FORMAT": "json",
            "ZTMON_LOG__LEVEL": "info",
            # No periodic relist during a test: what a test sees comes from the events feed.
            "ZTMON_ENGINE__RESYNC_INTERVAL_SECONDS": "3600",
            "ZTMON_ENGINE__RESYNC_JITTER_SECONDS": "0",
            **(env or {}),
        }
        with (workdir / "stdout.log").open("wb") as out, (workdir / "stderr.log").open("wb") as err:
            proc = subprocess.Popen(
                [ZTMON, "run", *args], stdout=out, stderr=err, env=clean_env(full), start_new_session=True
            )
        token = full.get("ZTMON_SERVER__AUTH__BEARER_TOKEN")
        daemon = Daemon(proc, workdir, token=token)
        self.running.append(daemon)

        def port() -> int:
            daemon.assert_alive()
            for ev in daemon.log_events():
                if ev.get("event") == "listening":
                    return int(ev["port"])
            return 0

        daemon.port, _ = poll(port, timeout=20, what="the daemon's 'listening' log line")
        if ready:
            wait_ready(daemon)
            record_latency("ztmon run spawned -> /readyz 200", time.monotonic() - daemon.started)
        return daemon

    def stop_all(self) -> None:
        for d in self.running:
            d.stop()
        self.running.clear()


def wait_ready(daemon: Daemon, timeout: float = 20) -> float:
    def ready() -> bool:
        daemon.assert_alive()
        return daemon.request("/readyz")[0] == 200

    return poll(ready, timeout=timeout, what="/readyz 200")[1]


@dataclass(frozen=True)
class Image:
    tag: str  # ztmon-it/busybox:<hash>
    id: str  # sha256:...
    untagged: str  # ztmon-it/busybox-<hash>, i.e. ":latest"


@dataclass(frozen=True)
class Scenario:
    containers: dict[str, Container]
    image: Image
    bind_dir: Path

    def __getitem__(self, key: str) -> Container:
        return self.containers[key]


@dataclass(frozen=True)
class Spec:
    flags: tuple[str, ...] = ()
    image: str = ""  # "" = the image's tag
    start: bool = True


def scenario_specs(image: Image, bind_dir: Path) -> dict[str, Spec]:
    """Each differs from `default` in one setting, so a missing finding cannot come from elsewhere."""
    return {
        "default": Spec(),
        "readonly": Spec(("--read-only",)),
        # This machine's capability bounding set lacks CAP_SYS_RESOURCE, so runc cannot start a privileged
        # container ("unable to apply caps"). ztmon reads the same inspect for a created one; the scenario
        # scan and daemon include stopped containers for it (test_stopped_container_* covers the default).
        "privileged": Spec(("--privileged",), start=False),
        "user1000": Spec(("--user", "1000")),
        "nnp": Spec(("--security-opt", "no-new-privileges")),
        "sysadmin": Spec(("--cap-add", "SYS_ADMIN")),
        "dropall": Spec(("--cap-drop", "ALL")),
        "hostnet": Spec(("--network", "host")),
        "hostpid": Spec(("--pid", "host")),
        "hostroot": Spec(("-v", "/:/host")),
        "tmpbind": Spec(("-v", f"{bind_dir}:/data")),
        "secret": Spec(("-e", "DB_PASSWORD=hunter2")),
        # Names that say nothing, values that detectors recognise (an AWS key id, URL credentials).
        "secret-value": Spec(("-e", f"MIRROR={AWS_KEY}", "-e", f"UPSTREAM_URL=https://app:{URL_PASSWORD}@db.local/x")),
        "notsecret": Spec(("-e", "PASSWORD_FILE=/run/x", "-e", "TOKEN_TTL=3600")),
        "ignored": Spec(("--label", "ztmon.io/ignore=readonly-rootfs reason=test fixture")),
        "ignored-noreason": Spec(("--label", "ztmon.io/ignore=readonly-rootfs")),
        "byid": Spec(image=image.id),  # sha256:... instead of the tag
        "latest": Spec(image=image.untagged),  # no tag at all, i.e. :latest
        "hardened": Spec(
            ("--read-only", "--user", "1000", "--security-opt", "no-new-privileges", "--cap-drop", "ALL"),
            image=image.id,
        ),
    }


# -- fault injection ------------------------------------------------------------------------------


def docker_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else "/var/run/docker.sock"


@dataclass
class HoldingDockerProxy:
    """A unix-socket pass-through to dockerd: holds the first container inspect for `hold` seconds, and with
    `block_events` never forwards an events request (the subscriber waits for an answer that never comes).

    Byte-level: each client connection gets its own upstream connection and two pump threads. Requests of
    the docker SDK arrive in one chunk each, so matching the request line of a chunk is enough.
    """

    path: Path
    hold: float = 0.0
    block_events: bool = False
    upstream: str = field(default_factory=docker_socket)
    inspect_seen: threading.Event = field(default_factory=threading.Event)
    _server: socket.socket | None = None
    _socks: list[socket.socket] = field(default_factory=list)
    _held: bool = False

    def start(self) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.path))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.upstream)
            self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, requests: bool) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                if requests and self.block_events and re.match(rb"GET /v[0-9.]+/events", chunk):
                    continue  # swallowed: no answer, no events
                if requests and not self._held and re.match(rb"GET /v[0-9.]+/containers/[0-9a-f]+/json", chunk):
                    self._held = True
                    self.inspect_seen.set()
                    time.sleep(self.hold)
                dst.sendall(chunk)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        for s in [*([self._server] if self._server else []), *self._socks]:
            with contextlib.suppress(OSError):
                s.close()
