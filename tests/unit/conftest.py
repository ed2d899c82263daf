"""Factories for unit tests: a hardened container that no check flags, and snapshots around it.

A test states only what differs from the hardened baseline, so the one field under test is visible in
the test itself (`container(privileged=True)` rather than a full literal).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ztmon.checks.registry import CheckSpec, all_checks
from ztmon.model.findings import Finding
from ztmon.model.inventory import Container, Node, Snapshot
from ztmon.model.policy import Policy

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
NODE = "node-1"
DIGEST = "sha256:" + "ab" * 32

# Passes every check: read-only root, non-root user, ALL dropped, no-new-privileges, pinned image.
HARDENED = Container(
    runtime="docker",
    id="c0ffee" + "0" * 58,
    name="web",
    image=f"registry.example.com/web@{DIGEST}",
    read_only_rootfs=True,
    user="1000:1000",
    cap_drop=("ALL",),
    no_new_privileges=True,
)


# The container-posture checks this suite covers. Reports are built from these only, so that a check
# added later (for Kubernetes objects, listeners, ...) does not change what these tests count.
CONTAINER_CHECKS = (
    "capabilities",
    "host-namespaces",
    "host-path",
    "mutable-image",
    "privilege-escalation",
    "privileged",
    "readonly-rootfs",
    "run-as-root",
    "secret-in-env",
)


def container_specs() -> list[CheckSpec]:
    registry = all_checks()
    return [registry[i] for i in CONTAINER_CHECKS]


def make_container(**changes: Any) -> Container:
    return dataclasses.replace(HARDENED, **changes)


def make_snapshot(*containers: Container, policy: Policy | None = None, taken_at: datetime = NOW) -> Snapshot:
    return Snapshot(taken_at=taken_at, node=Node(name=NODE), containers=containers, policy=policy or Policy())


def run_check(check_id: str, snapshot: Snapshot) -> list[Finding]:
    return list(all_checks()[check_id].fn(snapshot))


def check_containers(check_id: str, *containers: Container, policy: Policy | None = None) -> list[Finding]:
    return run_check(check_id, make_snapshot(*containers, policy=policy))


@pytest.fixture
def container() -> Callable[..., Container]:
    """`container(**changes)`: the hardened baseline with `changes` applied."""
    return make_container


@pytest.fixture
def snapshot() -> Callable[..., Snapshot]:
    """`snapshot(*containers, policy=None, taken_at=NOW)`."""
    return make_snapshot


@pytest.fixture
def specs() -> list[CheckSpec]:
    """The registered specs of the container checks, in id order."""
    return container_specs()


@pytest.fixture
def check() -> Callable[..., list[Finding]]:
    """`check(check_id, *containers, policy=None)`: the findings of one registered check."""
    return check_containers
