"""Network integration harness: real network namespaces, veth pairs and servers, nothing mocked.

Every namespace is named `ztn<session>-...` and deleted in teardown (its processes killed first), also
when a test fails. Addresses are 10.213.x.y on veths *inside* namespaces made here; servers run inside
those namespaces (`ip netns exec`), so nothing here touches the host's own network.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SERVERS = HERE.parents[1] / "unit" / "fixtures" / "netservers.py"
SESSION = uuid.uuid4().hex[:5]

_spec = importlib.util.spec_from_file_location("netservers", SERVERS)
assert _spec is not None
assert _spec.loader is not None
netservers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(netservers)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


@dataclass
class Netns:
    name: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv], capture_output=True, text=True, timeout=30, check=False
        )

    def start(self, *argv: str, ready: str | None = None, timeout: float = 15) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.name, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.procs.append(proc)
        if ready is not None:
            assert proc.stdout is not None
            deadline = time.monotonic() + timeout
            line = proc.stdout.readline()
            if ready not in line or time.monotonic() > deadline:
                pytest.fail(f"{argv}: not ready ({line!r})")
        return proc

    def server(self, kind: str, host: str, port: int, certdir: Path) -> subprocess.Popen[str]:
        return self.start(sys.executable, str(SERVERS), kind, host, str(port), str(certdir), ready="ready")

    def netns_id(self) -> str:
        """The namespace id ztmon reports: the ns/net link of a process inside it."""
        proc = self.start("sleep", "600")
        for _ in range(100):
            try:
                link = str(Path(f"/proc/{proc.pid}/ns/net").readlink())
            except OSError:
                link = ""
            if link and link != str(Path("/proc/self/ns/net").readlink()):
                return link
            time.sleep(0.02)  # `ip netns exec` has not exec'd into the namespace yet
        pytest.fail("process never entered the namespace")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
            if p.stdout is not None:
                p.stdout.close()
        pids = ip("netns", "pids", self.name, check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid), signal.SIGKILL)


@pytest.fixture(scope="session")
def netns_ok() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.fail("iproute2 is not installed; scripts/test.sh installs it", pytrace=False)


@pytest.fixture
def make_netns(netns_ok: None) -> Iterator[object]:
    made: list[Netns] = []

    def make(tag: str) -> Netns:
        name = f"ztn{SESSION}-{tag}"[:15]
        ip("netns", "add", name)
        ns = Netns(name)
        made.append(ns)
        ip("-n", name, "link", "set", "lo", "up")
        return ns

    yield make
    for ns in made:
        ns.stop()
        ip("netns", "del", ns.name, check=False)


_PAIRS = iter(range(1, 250))


@pytest.fixture
def veth_pair(make_netns):
    """Two namespaces joined by a veth: (client ns, client address, server ns, server address)."""

    def make() -> tuple[Netns, str, Netns, str]:
        n = next(_PAIRS)
        a, b = make_netns(f"a{n}"), make_netns(f"b{n}")
        va, vb = f"zta{SESSION}{n}"[:15], f"ztb{SESSION}{n}"[:15]
        ip("link", "add", va, "netns", a.name, "type", "veth", "peer", "name", vb, "netns", b.name)
        addr_a, addr_b = f"10.213.{n}.1", f"10.213.{n}.2"
        ip("-n", a.name, "addr", "add", f"{addr_a}/24", "dev", va)
        ip("-n", b.name, "addr", "add", f"{addr_b}/24", "dev", vb)
        ip("-n", a.name, "link", "set", va, "up")
        ip("-n", b.name, "link", "set", vb, "up")
        return a, addr_a, b, addr_b

    return make


@pytest.fixture(scope="session")
def certdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("net-certs")
    netservers.write_certs(d, cn="svc.ztmon.test", days=20)
    return d


@pytest.fixture(scope="session")
def expected() -> dict[str, tuple[str, str]]:
    return dict(netservers.EXPECTED)
