"""The node itself: name, kernel and OS image, read from injectable host paths. Always available."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from pathlib import Path

from ztmon.model.inventory import Node, SourcePart
from ztmon.sources.base import Source


def parse_os_release(text: str) -> dict[str, str]:
    """os-release(5): KEY=value lines, values optionally shell-quoted; odd lines are skipped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or not key or key.startswith("#"):
            continue
        try:
            parts = shlex.split(value)
        except ValueError:
            continue
        out[key] = parts[0] if parts else ""
    return out


def read_node(*, name: str, root: Path, proc_root: Path) -> Node:
    kernel = ""
    with contextlib.suppress(OSError):
        kernel = (proc_root / "sys/kernel/osrelease").read_text(encoding="utf-8").strip()
    os_image = ""
    for rel in ("etc/os-release", "usr/lib/os-release"):
        try:
            info = parse_os_release((root / rel).read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
        os_image = info.get("PRETTY_NAME") or info.get("NAME", "")
        break
    return Node(name=name, kernel=kernel, os_image=os_image)


class HostSource(Source):
    name = "host"

    def __init__(self, *, node_name: str, root: Path, proc_root: Path) -> None:
        super().__init__()
        self._node_name = node_name
        self._root = root
        self._proc_root = proc_root
        self._part = SourcePart(node=Node(name=node_name))

    def part(self) -> SourcePart:
        return self._part

    async def refresh(self) -> None:
        node = await asyncio.to_thread(read_node, name=self._node_name, root=self._root, proc_root=self._proc_root)
        self._part = SourcePart(node=node)
        self.mark_up()
