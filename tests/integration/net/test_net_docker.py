"""A real dockerd container listening (busybox httpd) is attributed to the right container, probed by
entering its namespace, and its runtime posture is read from /proc."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from ztmon.checks.registry import all_checks
from ztmon.engine import pipeline
from ztmon.model.network import Tls
from ztmon.model.policy import Policy
from ztmon.sources import procfs
from ztmon.sources.docker import DockerSource

IMAGE = "ztmon-net-it/busybox:1"
DOCKERFILE = 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\n'
RUN_LABEL = f"ztmon.test.net={uuid.uuid4().hex[:8]}"


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=120).stdout.strip()


@pytest.fixture(scope="module")
def image(dockerd: str) -> str:
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, check=False).returncode == 0:
        return IMAGE
    with tempfile.TemporaryDirectory(prefix="ztmon-net-image-") as tmp:
        shutil.copy2("/usr/bin/busybox", Path(tmp) / "busybox")
        (Path(tmp) / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
        subprocess.run(
            ["docker", "build", "-q", "--label", "ztmon.test=1", "-t", IMAGE, tmp],
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
            check=True,
            capture_output=True,
            timeout=300,
        )
    return IMAGE


@pytest.fixture
def run_container(image: str):
    made: list[str] = []

    def run(*args: str, cmd: tuple[str, ...]) -> str:
        name = f"ztnet-{uuid.uuid4().hex[:8]}"
        cid = docker("run", "-d", "--name", name, "--label", "ztmon.test=1", "--label", RUN_LABEL, *args, image, *cmd)
        made.append(cid)
        for _ in range(100):  # until httpd is listening
            if any(f":{cmd[-1]} " in line or f":{int(cmd[-1]):04X} " in line for line in _tcp_lines(cid)):
                break
            time.sleep(0.05)
        return cid

    yield run
    for cid in made:
        docker("rm", "-f", cid, check=False)


def _tcp_lines(cid: str) -> list[str]:
    pid = docker("inspect", "-f", "{{.State.Pid}}", cid)
    lines = []
    for name in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            lines += Path(f"/proc/{pid}/net/{name}").read_text().splitlines()
    return lines


async def _report(*, probe: bool = True):
    docker_src = DockerSource()
    proc_src = procfs.ProcfsSource(probe=probe)
    try:
        await docker_src.refresh()
        await proc_src.refresh()
    finally:
        await docker_src.close()
        await proc_src.close()
    snap = pipeline.build_snapshot(
        now=pipeline_now(), node_name="it", parts=[docker_src.part(), proc_src.part()], policy=Policy()
    )
    specs = [all_checks()[c] for c in ("plaintext", "open-port", "runtime-mismatch", "readonly-rootfs")]
    return snap, pipeline.cycle(
        snapshot=snap, runner=pipeline.CheckRunner(specs), rules=(), known_checks=frozenset(all_checks()), sources=()
    ).report


def pipeline_now():
    from datetime import UTC, datetime  # noqa: PLC0415

    return datetime.now(UTC)


async def test_busybox_httpd_is_attributed_to_its_container_and_probed(run_container):
    cid = run_container(cmd=("httpd", "-f", "-p", "8080"))
    snap, report = await _report()
    (li,) = [li for li in snap.listeners if li.container_id == cid]
    assert (li.address, li.port, li.protocol, li.comm) == ("::", 8080, "tcp", "httpd")  # busybox binds [::]
    assert li.tls is Tls.PLAINTEXT
    assert li.probe is not None
    assert li.probe.protocol == "http"
    (state,) = [s for s in report.listeners if s.container_id == cid]
    assert state.container.startswith("ztnet-")
    mine = [f for f in report.findings if f.resource.container_id == cid]
    assert {f.check for f in mine} >= {"plaintext", "open-port"}
    assert next(f for f in mine if f.check == "plaintext").severity.label == "high"


async def test_exposed_port_is_not_an_open_port(run_container):
    cid = run_container("--expose", "8080", cmd=("httpd", "-f", "-p", "8080"))
    _, report = await _report(probe=False)
    assert not [f for f in report.findings if f.resource.container_id == cid and f.check == "open-port"]


async def test_runtime_posture_is_observed_from_proc(run_container):
    hardened = run_container(
        "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--user", "1000",
        cmd=("httpd", "-f", "-p", "8081"),
    )  # fmt: skip
    default = run_container(cmd=("httpd", "-f", "-p", "8082"))
    snap, report = await _report(probe=False)
    by_id = {c.id: c for c in snap.containers}
    h, d = by_id[hardened].observed, by_id[default].observed
    assert h is not None
    assert d is not None
    assert (h.rootfs_read_only, h.cap_effective, h.no_new_privs, h.effective_uid) == (True, (), True, 1000)
    assert d.rootfs_read_only is False
    assert "NET_RAW" in d.cap_effective
    assert d.effective_uid == 0
    assert not [f for f in report.findings if f.check == "runtime-mismatch" and f.resource.container_id == hardened]
    state = next(c for c in report.containers if c.id == default)
    assert state.capabilities_effective is not None
    assert "CHOWN" in state.capabilities_effective


def test_scan_source_procfs_shows_listeners_in_the_table(run_container):
    cid = run_container(cmd=("httpd", "-f", "-p", "8083"))
    name = docker("inspect", "-f", "{{.Name}}", cid).lstrip("/")
    ztmon = str(Path(sys.executable).with_name("ztmon"))
    out = subprocess.run(
        [ztmon, "scan", "--source", "procfs", "--source", "docker"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "240"},
    )
    assert out.returncode == 0, out.stderr
    assert "listeners" in out.stdout
    rows = [line for line in out.stdout.splitlines() if name in line and "[::]:8083/tcp" in line]
    listener_row = next(line for line in rows if "httpd (" in line)  # owner, process, address, tls, detail
    assert "plaintext" in listener_row
    assert any("accepts plaintext" in line for line in rows)  # and the finding
