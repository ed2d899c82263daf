"""Integration fixtures: the real dockerd, the real `ztmon` executable, nothing mocked.

scripts/test.sh guarantees a running dockerd, so a missing one is a FAILURE here, never a skip.
Everything a test creates is named `ztit-<session>-...`, labelled `ztmon.test=1` (and the session), and
removed in teardown even when the test fails. Helpers live in ztharness.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# --import-mode=importlib puts no test directory on sys.path; the test modules import the helpers by name.
sys.path.insert(0, str(Path(__file__).parent))
from ztharness import (
    BUSYBOX,
    DOCKERFILE,
    LATENCIES,
    PREFIX,
    SESSION_LABEL,
    Containers,
    Daemon,
    Daemons,
    Image,
    Scenario,
    docker,
    scan_json,
    scenario_specs,
)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if LATENCIES:
        terminalreporter.section("ztmon integration latencies")
        for what, values in LATENCIES.items():
            shown = ", ".join(f"{v * 1000:.0f} ms" for v in values)
            terminalreporter.write_line(f"{what}: {shown} (max {max(values) * 1000:.0f} ms)")


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def image(dockerd: str, tmp_path_factory: pytest.TempPathFactory) -> Image:
    """A busybox image FROM scratch, built once per content (tag = hash of Dockerfile + busybox)."""
    if not BUSYBOX.is_file():
        pytest.fail(f"{BUSYBOX} is missing; scripts/test.sh installs busybox-static", pytrace=False)
    digest = hashlib.sha256(DOCKERFILE + BUSYBOX.read_bytes()).hexdigest()[:12]
    tag = f"ztmon-it/busybox:{digest}"
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode != 0:
        ctx = tmp_path_factory.mktemp("image")
        (ctx / "Dockerfile").write_bytes(DOCKERFILE)
        shutil.copy2(BUSYBOX, ctx / "busybox")
        proc = subprocess.run(
            ["docker", "build", "-q", "-t", tag, str(ctx)],
            capture_output=True,
            text=True,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
            timeout=300,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(f"building {tag} failed: {proc.stderr.strip()}", pytrace=False)
    image_id = docker("image", "inspect", "--format", "{{.Id}}", tag)
    untagged = f"ztmon-it/busybox-{digest}"
    docker("tag", tag, f"{untagged}:latest")
    return Image(tag=tag, id=image_id, untagged=untagged)


@pytest.fixture(scope="session", autouse=True)
def _sweep_session_containers() -> Iterator[None]:
    """Last line of defence: whatever this session labelled goes, even after an interrupted test."""
    yield
    if shutil.which("docker") is None:
        return
    ids = docker("ps", "-aq", "--filter", f"label={SESSION_LABEL}", check=False).split()
    if ids:
        docker("rm", "-f", *ids, check=False)


_counter = iter(range(1, 1_000_000))


@pytest.fixture
def containers(image: Image, request: pytest.FixtureRequest) -> Iterator[Containers]:
    short = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:24]
    box = Containers(prefix=f"{PREFIX}{next(_counter)}-{short}-", image=image.tag)
    yield box
    box.cleanup()


@pytest.fixture
def daemons(tmp_path: Path, dockerd: str) -> Iterator[Daemons]:
    pool = Daemons(tmp_path)
    yield pool
    pool.stop_all()


# -- the shared scenario: one container per check setting, one scan, one daemon --------------------


@pytest.fixture(scope="session")
def scenario(image: Image, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    bind_dir = tmp_path_factory.mktemp("bind")
    box = Containers(prefix=f"{PREFIX}s-", image=image.tag)
    try:
        yield Scenario(box.run_many(scenario_specs(image, bind_dir)), image, bind_dir)
    finally:
        box.cleanup()


SCENARIO_ENV = {"ZTMON_SOURCES__DOCKER__INCLUDE_STOPPED": "true"}  # for the created privileged container


@pytest.fixture(scope="session")
def scan_report(scenario: Scenario) -> dict[str, Any]:
    """`ztmon scan --output json --source docker --show-suppressed`, once, over the scenario."""
    report, _ = scan_json("--source", "docker", "--show-suppressed", env=SCENARIO_ENV)
    return report


@pytest.fixture(scope="session")
def scenario_daemon(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    pool = Daemons(tmp_path_factory.mktemp("scenario-daemon"))
    try:
        yield pool.start(SCENARIO_ENV)
    finally:
        pool.stop_all()


@pytest.fixture(scope="session")
def live_daemon(dockerd: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon with the default docker settings (running containers only), for the event-path tests."""
    pool = Daemons(tmp_path_factory.mktemp("live-daemon"))
    try:
        yield pool.start()
    finally:
        pool.stop_all()
