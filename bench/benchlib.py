"""Shared helpers for the bench scripts: timing statistics, the busybox test image, labelled containers,
and a ztmon daemon run as a subprocess.

Every container a bench creates carries `ztmon.bench=1` and a per-run label, and is removed at the end
(also on error or Ctrl-C) by that per-run label, so concurrent runs never remove each other's containers.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
ZTMON = VENV_BIN / "ztmon"
IMAGE = "ztmon-bench/busybox:1"
BENCH_LABEL = "ztmon.bench=1"
BUSYBOX = Path("/usr/bin/busybox")
DOCKERFILE = 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\n'


# -- statistics ---------------------------------------------------------------------------------
def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): p99 of 200 samples is the 198th smallest, a real sample."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.3f} ms"


def stats_line(name: str, samples: Sequence[float], width: int = 58) -> str:
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    return f"  {name:<{width}} p50 {ms(p50)}   p99 {ms(p99)}   max {ms(max(samples))}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# -- docker ----------------------------------------------------------------------------------------
def docker(*args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, check=False, timeout=timeout)
    if check and out.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: exit {out.returncode}: {out.stderr.strip()}")
    return out


def ensure_image(tag: str = IMAGE) -> str:
    """Build the FROM-scratch busybox image once (no registry on the bench machines)."""
    if docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    with tempfile.TemporaryDirectory(prefix="ztmon-bench-image-") as tmp:
        shutil.copy2(BUSYBOX, Path(tmp) / "busybox")
        (Path(tmp) / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
        subprocess.run(
            ["docker", "build", "-q", "--force-rm", "--label", BENCH_LABEL, "-t", tag, tmp],
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
            check=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
    return tag


@dataclass
class Containers:
    """Containers created by this run; `cleanup()` removes them all (idempotent)."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def run_label(self) -> str:
        return f"ztmon.bench.run={self.run_id}"

    def run_args(self, *flags: str, name: str | None = None, verb: Sequence[str] = ("run", "-d")) -> list[str]:
        """`docker` arguments up to the image: the verb (run -d, create, run --rm), our labels, a name, flags."""
        args = [*verb, "--label", BENCH_LABEL, "--label", self.run_label]
        if name:
            args += ["--name", name]
        return [*args, *flags]

    def ids(self) -> list[str]:
        out = docker("ps", "-aq", "--no-trunc", "--filter", f"label={self.run_label}", check=False).stdout
        return out.split()

    def cleanup(self) -> int:
        ids = self.ids()
        for start in range(0, len(ids), 50):
            docker("rm", "-f", *ids[start : start + 50], check=False, timeout=300)
        return len(ids)


@contextlib.contextmanager
def bench_containers() -> Iterator[Containers]:
    """Yield a Containers registry; remove its containers on exit, error, Ctrl-C or SIGTERM."""
    reg = Containers()

    def on_term(signum: int, frame: object) -> None:
        del frame
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield reg
    finally:
        removed = reg.cleanup()
        signal.signal(signal.SIGTERM, previous)
        print(f"# cleanup: removed {removed} bench container(s) (label {reg.run_label})", file=sys.stderr)


# -- the daemon ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback URLs built here
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as e:
        return int(e.code), e.read()


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    ready_after: float = 0.0  # seconds from spawn to /readyz 200

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metrics(self) -> str:
        status, body = http_get(f"{self.base}/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return body.decode()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def daemon(
    *, argv: Sequence[str] | None = None, env: dict[str, str] | None = None, ready_timeout: float = 60.0
) -> Iterator[Daemon]:
    """Start `ztmon run` on a free loopback port, wait for /readyz, stop it with SIGTERM on exit."""
    port = free_port()
    full_env = {
        **os.environ,
        "ZTMON_SERVER__ADDRESS": "127.0.0.1",
        "ZTMON_SERVER__PORT": str(port),
        "ZTMON_LOG__LEVEL": "warning",
        **(env or {}),
    }
    with tempfile.NamedTemporaryFile(prefix="ztmon-bench-daemon-", suffix=".log", delete=False) as logf:
        log_path = Path(logf.name)
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv or [str(ZTMON), "run"]), env=full_env, stdout=logf, stderr=subprocess.STDOUT)
    d = Daemon(proc=proc, port=port, log_path=log_path)
    try:
        deadline = start + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode} before ready:\n{d.log_tail()}")
            with contextlib.suppress(OSError):
                if http_get(f"{d.base}/readyz", timeout=1.0)[0] == 200:
                    break
            if time.perf_counter() > deadline:
                raise RuntimeError(f"daemon not ready after {ready_timeout} s:\n{d.log_tail()}")
            time.sleep(0.01)
        d.ready_after = time.perf_counter() - start
        yield d
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log_path.unlink(missing_ok=True)


def proc_status(pid: int | str) -> dict[str, int]:
    """VmRSS, VmHWM, ... of /proc/<pid>/status in kB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if key.startswith(("Vm", "Rss")):
            out[key] = int(parts[0])
    return out
