"""dockerd restarts under a running ztmon: source_up goes 0 then 1, the watch resubscribes, new containers appear.

Never the shared dockerd: a private one on its own socket, data-root and exec-root, started and stopped
by this test (by pid).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ztharness import PREFIX, Containers, Daemons, Image, poll, record_latency

pytestmark = pytest.mark.integration


@dataclass
class PrivateDockerd:
    root: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: list[float] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"unix://{self.root}/docker.sock"

    def start(self) -> None:
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            pytest.fail("dockerd is not installed; scripts/test.sh installs docker.io", pytrace=False)
        args = [
            f"--host={self.host}",
            f"--data-root={self.root / 'data'}",
            f"--exec-root={self.root / 'exec'}",
            f"--pidfile={self.root / 'dockerd.pid'}",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
        ]
        with (self.root / "dockerd.log").open("ab") as log:
            self.proc = subprocess.Popen([dockerd, *args], stdout=log, stderr=log, start_new_session=True)

        def answers() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"private dockerd exited {self.proc.returncode}:\n{self.log_tail()}")
            cmd = ["docker", "-H", self.host, "version", "--format", "{{.Server.Version}}"]
            return subprocess.run(cmd, capture_output=True, timeout=10, check=False).returncode == 0

        poll(answers, timeout=30, what="the private dockerd to answer", interval=0.1)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            pidfile = self.root / "exec" / "containerd" / "containerd.pid"  # its managed containerd
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "dockerd.log").read_text(errors="replace")[-3000:]
        return ""

    def mounted(self) -> bool:
        with Path("/proc/mounts").open() as f:
            return any(str(self.root) in line for line in f)


@pytest.fixture
def private_dockerd(image: Image) -> Iterator[tuple[PrivateDockerd, Containers]]:
    root = Path(tempfile.mkdtemp(prefix="ztit-dd-", dir="/tmp"))  # short: socket paths are limited to 108 bytes
    dd = PrivateDockerd(root)
    box = Containers(prefix=f"{PREFIX}dd-", image=image.tag, host=dd.host)
    try:
        dd.start()
        with subprocess.Popen(["docker", "save", image.tag], stdout=subprocess.PIPE) as save:
            load = subprocess.run(
                ["docker", "-H", dd.host, "load", "-q"], stdin=save.stdout, capture_output=True, timeout=60, check=False
            )
        assert load.returncode == 0, load.stderr
        yield dd, box
    finally:
        if dd.proc is not None:
            box.cleanup()
        dd.stop()
        if not dd.mounted():  # never delete through a mount left behind
            shutil.rmtree(root, ignore_errors=True)


def test_dockerd_restart_resubscribes(private_dockerd: tuple[PrivateDockerd, Containers], daemons: Daemons) -> None:
    dd, box = private_dockerd
    d = daemons.start({"ZTMON_SOURCES__DOCKER__HOST": dd.host})

    def finding_of(name: str) -> list:
        return d.series("ztmon_finding_info", container=name, check="capabilities", severity="high")

    def docker_up() -> float:
        return d.value("ztmon_source_up", source="docker")

    before = box.run("before", "--cap-add", "SYS_ADMIN", "--stop-timeout", "1")
    poll(lambda: finding_of(before.name), timeout=5, what="the first container on /metrics")
    assert docker_up() == 1

    dd.stop()
    stopped = time.monotonic()
    poll(lambda: docker_up() == 0, timeout=10, what="ztmon_source_up{source=docker} 0 after dockerd stopped")
    record_latency("dockerd stopped -> source_up 0", time.monotonic() - stopped)
    d.assert_alive()
    assert d.request("/readyz")[0] == 200

    dd.start()
    restarted = time.monotonic()
    _, waited = poll(lambda: docker_up() == 1, timeout=40, what="ztmon_source_up{source=docker} 1 after restart")
    record_latency("dockerd answers again -> source_up 1", waited)
    assert any(e.get("event") == "docker_events_resubscribed" for e in d.log_events())
    # The first container did not survive the restart (no restart policy): the relist dropped it.
    poll(lambda: not finding_of(before.name), timeout=2, what="the stopped container to leave /metrics")

    after = box.run("after", "--cap-add", "SYS_ADMIN")
    _, latency = poll(lambda: finding_of(after.name), timeout=5, what="a container started after the restart")
    record_latency("after dockerd restart: docker run returned -> /metrics", latency)
    assert latency < 1.0, f"took {latency:.3f} s ({time.monotonic() - restarted:.1f} s after the restart)"
    d.assert_alive()
    assert not [e for e in d.log_events() if e.get("event") == "task_failed"]
