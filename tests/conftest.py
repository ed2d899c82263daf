"""Fixtures shared by every test folder."""

from __future__ import annotations

import shutil
import subprocess

import pytest


@pytest.fixture(scope="session")
def dockerd() -> str:
    """The shared dockerd answers, or the tests that need it fail loudly (scripts/test.sh starts it)."""
    if shutil.which("docker") is None:
        pytest.fail("the docker CLI is not installed; scripts/test.sh installs docker.io", pytrace=False)
    proc = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"dockerd does not answer (`docker version` exited {proc.returncode}: {proc.stderr.strip()}); "
            "scripts/test.sh starts one",
            pytrace=False,
        )
    return proc.stdout.strip()
