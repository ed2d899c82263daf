"""The end-to-end stack: real Prometheus and Alertmanager (Debian packages), a webhook receiver, and a
TLS server for the probe; each on a free 127.0.0.1 port with its own temporary data directory.

Nothing here touches the system services of those packages.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from ztharness import Daemon

T = TypeVar("T")
TIMINGS: list[tuple[str, float]] = []  # printed in the terminal summary by conftest.py


def record(what: str, seconds: float) -> None:
    TIMINGS.append((what, seconds))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; scripts/test.sh installs prometheus and prometheus-alertmanager")
    return path


def wait_until(fn: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    last: T = fn()
    while not last:
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last value: {last!r}")
        time.sleep(interval)
        last = fn()
    return last


def http_get(port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@dataclass
class Service:
    """A server process of ours: started with a fresh data directory, stopped (and its log kept) at the end."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path

    def log(self) -> str:
        return (self.workdir / f"{self.name}.log").read_text(errors="replace")[-4000:]

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"{self.name} exited {self.proc.returncode}:\n{self.log()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            return http_get(self.port, "/-/ready")[0] == 200
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start(name: str, cmd: list[str], port: int, workdir: Path) -> Service:
    with (workdir / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    service = Service(name, proc, port, workdir)
    wait_until(service.ready, timeout=60, what=f"{name} /-/ready")
    return service


# -- Alertmanager ---------------------------------------------------------------------------------


def alertmanager_config(example: dict[str, Any], hook_port: int) -> dict[str, Any]:
    """The example configuration as shipped, with its receivers pointed at our webhook (one path per receiver)
    and its timers shortened so a test sees notifications within a second."""
    config = deepcopy(example)
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"http://127.0.0.1:{hook_port}/{receiver['name']}"

    def shorten(route: dict[str, Any]) -> None:
        route |= {"group_wait": "0s", "group_interval": "1s", "repeat_interval": "1h"}
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    return config


def start_alertmanager(workdir: Path, example: Path, hook_port: int) -> Service:
    port = free_port()
    config = workdir / "alertmanager.yml"
    config.write_text(yaml.safe_dump(alertmanager_config(yaml.safe_load(example.read_text()), hook_port)))
    cmd = [
        binary("prometheus-alertmanager"),
        f"--config.file={config}",
        f"--storage.path={workdir / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no HA gossip: a single test instance
        "--log.level=info",
    ]
    return start("alertmanager", cmd, port, workdir)


# -- Prometheus -----------------------------------------------------------------------------------


def e2e_rules(rules: Path, for_override: str) -> dict[str, Any]:
    """alerts/ztmon.rules.yml as shipped, every `for:` replaced by a short one."""
    data: dict[str, Any] = yaml.safe_load(rules.read_text())
    for group in data["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = for_override
    return data


def start_prometheus(
    workdir: Path, *, rules: dict[str, Any], ztmon_port: int, am_port: int, target_labels: dict[str, str]
) -> Service:
    port = free_port()
    (workdir / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [
            {
                "job_name": "ztmon",
                "static_configs": [{"targets": [f"127.0.0.1:{ztmon_port}"], "labels": target_labels}],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [
        binary("prometheus"),
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'prom-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=2h",
        "--rules.alert.resend-delay=5s",
        "--log.level=warn",
    ]
    return start("prometheus", cmd, port, workdir)


@dataclass
class Prometheus:
    service: Service

    def api(self, path: str, **params: str) -> dict[str, Any]:
        status, body = http_get(self.service.port, f"/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=30)
        reply: dict[str, Any] = json.loads(body)
        if status != 200 or reply.get("status") != "success":
            return {"status": "error", "error": reply.get("error", body[:300].decode(errors="replace"))}
        return reply

    def query(self, expr: str) -> dict[str, Any]:
        return self.api("query", query=expr)

    def query_range(self, expr: str, seconds: int = 30) -> dict[str, Any]:
        end = time.time()
        return self.api("query_range", query=expr, start=str(end - seconds), end=str(end), step="1")

    def vector(self, expr: str) -> list[dict[str, Any]]:
        reply = self.query(expr)
        assert reply["status"] == "success", f"{expr}: {reply.get('error')}"
        result: list[dict[str, Any]] = reply["data"]["result"]
        return result


# -- the webhook receiver ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    at: float  # time.monotonic() when it arrived
    receiver: str  # the URL path: the Alertmanager receiver's name
    payload: dict[str, Any]


@dataclass
class Webhook:
    """Collects Alertmanager webhook notifications: POST /<receiver> with the v4 JSON payload."""

    port: int = 0
    received: list[Notification] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Webhook:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hook._lock:
                    hook.received.append(Notification(time.monotonic(), self.path.strip("/"), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="webhook", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def first(
        self, *, alertname: str, status: str, after: float = 0.0, **labels: str
    ) -> tuple[Notification, dict[str, Any]] | None:
        """The first notification (after `after`) carrying this alert in this status, and the alert."""
        with self._lock:
            received = list(self.received)
        for n in received:
            if n.at < after:
                continue
            for alert in n.payload.get("alerts", []):
                al = alert.get("labels", {})
                if (
                    alert.get("status") == status
                    and al.get("alertname") == alertname
                    and all(al.get(k) == v for k, v in labels.items())
                ):
                    return n, alert
        return None


# -- a TLS listener for the probe -------------------------------------------------------------------


@dataclass
class TLSServer:
    """A TLS server on 127.0.0.1 whose certificate expires in `days`: the probe classifies it as TLS and
    exports its notAfter. It completes handshakes and closes; it never reads application data."""

    workdir: Path
    days: int = 5
    port: int = 0
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> TLSServer:
        key, cert = self.workdir / "tls.key", self.workdir / "tls.crt"
        openssl = binary("openssl")
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", str(self.days), "-subj", "/CN=ztmon-e2e.test"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]

        def serve() -> None:
            assert self._sock is not None
            while not self._stop.is_set():
                try:
                    conn, _ = self._sock.accept()
                except OSError:
                    continue
                with contextlib.suppress(OSError, ssl.SSLError), conn:
                    conn.settimeout(2)
                    with ctx.wrap_socket(conn, server_side=True):
                        pass

        threading.Thread(target=serve, name="tls-server", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            self._sock.close()


@dataclass
class Stack:
    ztmon: Daemon
    prometheus: Prometheus
    alertmanager: Service
    webhook: Webhook
    tls: TLSServer
    procfs: bool  # listeners, the TLS probe and the plaintext check are on

    def scraped(self) -> bool:
        return bool(self.prometheus.vector('up{job="ztmon"} == 1'))
