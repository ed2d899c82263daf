"""/proc/<pid>/cgroup -> (runtime, container id, pod UID), for every common runtime and cgroup layout.

Pure text parsing, so every format is a table-driven unit test. Formats (cgroup v1 lines
`N:controllers:/path`, v2 `0::/path`; paths may be made relative by a cgroup namespace, e.g. `/../..`):

- docker: `/docker/<id>` (cgroupfs driver), `/system.slice/docker-<id>.scope` (systemd driver)
- containerd: `cri-containerd-<id>.scope`, `...slice:cri-containerd:<id>` (v1 systemd), `/kubepods/.../<id>`
- CRI-O: `crio-<id>.scope` (not `crio-conmon-<id>.scope`: the monitor, not the container)
- podman: `libpod-<id>.scope`, `/libpod_parent/libpod-<id>` (not `libpod-conmon-<id>.scope`)
- Kubernetes pod UID: `pod<uid>` in a path (`-` in cgroupfs paths, `_` in systemd slice names)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ID = r"([0-9a-f]{64})"
# Order matters: the specific runtime patterns first, the bare kubepods id last.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("docker", re.compile(r"(?:^|/)docker-" + _ID + r"\.scope(?:/|$)")),
    ("docker", re.compile(r"(?:^|/)docker/" + _ID + r"(?:/|$)")),
    ("containerd", re.compile(r"(?:^|/)cri-containerd-" + _ID + r"\.scope(?:/|$)")),
    ("containerd", re.compile(r":cri-containerd:" + _ID + r"(?:/|$)")),
    ("cri-o", re.compile(r"(?:^|/)crio-" + _ID + r"\.scope(?:/|$)")),
    ("cri-o", re.compile(r":crio:" + _ID + r"(?:/|$)")),
    ("podman", re.compile(r"(?:^|/)libpod-" + _ID + r"\.scope(?:/|$)")),
    ("podman", re.compile(r"(?:^|/)libpod_parent/libpod-" + _ID + r"(?:/|$)")),
    ("kubernetes", re.compile(r"(?:^|/)kubepods[^:]*/pod[0-9a-f_-]{36}/" + _ID + r"(?:/|$)")),
)
_POD = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})")
_MONITOR = re.compile(r"(?:crio|libpod)-conmon-[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class CgroupInfo:
    runtime: str = ""  # docker | containerd | cri-o | podman | kubernetes ("" = not a container)
    container_id: str = ""
    pod_uid: str = ""  # with dashes
    monitor: bool = False  # conmon: belongs to a container's monitor, not the container


def _paths(text: str) -> list[str]:
    """The path of each line; the v2 line (`0::`) and name=systemd first: they carry the unit names."""
    first: list[str] = []
    rest: list[str] = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, controllers, path = parts
        (first if hid == "0" or controllers == "name=systemd" else rest).append(path.strip())
    return first + rest


def parse(text: str) -> CgroupInfo:
    """Parse /proc/<pid>/cgroup. Unknown formats give an empty CgroupInfo (the process is the node's)."""
    pod = ""
    for path in _paths(text):
        if not pod:
            m = _POD.search(path)
            if m:
                pod = m.group(1).replace("_", "-")
        if _MONITOR.search(path):
            return CgroupInfo(pod_uid=pod, monitor=True)
        for runtime, pattern in _PATTERNS:
            m = pattern.search(path)
            if m:
                if not pod:
                    pm = _POD.search(path)
                    pod = pm.group(1).replace("_", "-") if pm else ""
                return CgroupInfo(runtime=runtime, container_id=m.group(1), pod_uid=pod)
    return CgroupInfo(pod_uid=pod)
