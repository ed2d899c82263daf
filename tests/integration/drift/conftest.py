"""Drift integration fixtures: the shared dockerd, images rebuilt under one tag, host fixture trees, baseline
documents. Builds on tests/integration/conftest.py (dockerd, image, containers, daemons).

Every image built here has a tag unique to the session (`ztmon-drift-it/app:<session>`) and is removed with
all its rebuilt generations in teardown; containers come from the parent `containers` fixture (labelled
`ztmon.test=1`, removed in teardown).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ztharness import BUSYBOX, SESSION, docker

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@dataclass
class RebuiltImage:
    """One tag, rebuilt with different content: each build is a new image id (digest) under the same tag."""

    tag: str
    ids: list[str] = field(default_factory=list)

    def build(self, generation: str) -> str:
        with tempfile.TemporaryDirectory(prefix="ztmon-drift-image-") as tmp:
            shutil.copy2(BUSYBOX, Path(tmp) / "busybox")
            (Path(tmp) / "Dockerfile").write_text(
                'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\n'
                f'RUN ["/bin/sh","-c","echo {generation} > /generation"]\n',
                encoding="utf-8",
            )
            proc = subprocess.run(
                ["docker", "build", "-q", "--label", "ztmon.test=1", "-t", self.tag, tmp],
                capture_output=True,
                text=True,
                env={**os.environ, "DOCKER_BUILDKIT": "0"},
                timeout=300,
                check=False,
            )
        if proc.returncode != 0:
            pytest.fail(f"building {self.tag} ({generation}) failed: {proc.stderr.strip()}")
        image_id = docker("image", "inspect", "--format", "{{.Id}}", self.tag)
        self.ids.append(image_id)
        return image_id

    def remove(self) -> None:
        docker("rmi", "-f", self.tag, *self.ids, check=False)


@pytest.fixture
def rebuilt_image(dockerd: str) -> Iterator[RebuiltImage]:
    img = RebuiltImage(tag=f"ztmon-drift-it/app:{SESSION}")
    yield img
    img.remove()


@dataclass
class HostTree:
    """An injected host root and /proc: the node's OS image and kernel are whatever the test writes."""

    root: Path
    proc: Path

    def set(self, *, kernel: str, os_image: str = "Fixture Linux 1") -> None:
        (self.root / "etc").mkdir(parents=True, exist_ok=True)
        (self.root / "etc/os-release").write_text(f'PRETTY_NAME="{os_image}"\n', encoding="utf-8")
        (self.proc / "sys/kernel").mkdir(parents=True, exist_ok=True)
        (self.proc / "sys/kernel/osrelease").write_text(kernel + "\n", encoding="utf-8")

    def env(self) -> dict[str, str]:
        return {"ZTMON_SOURCES__HOST__ROOT": str(self.root), "ZTMON_SOURCES__HOST__PROC_ROOT": str(self.proc)}


@pytest.fixture
def host_tree(tmp_path: Path) -> HostTree:
    tree = HostTree(tmp_path / "hostroot", tmp_path / "hostproc")
    tree.set(kernel="6.1.0-26-amd64")
    return tree
