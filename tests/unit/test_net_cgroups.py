"""/proc/<pid>/cgroup -> runtime, container id and pod UID, for every runtime's path style."""

from __future__ import annotations

import pytest

from ztmon.sources import cgroups

CID = "0123456789abcdef" * 4
POD = "5f0d8c1e-2b3a-4c5d-8e9f-0a1b2c3d4e5f"
POD_ = POD.replace("-", "_")

CASES = [
    # (name, /proc/<pid>/cgroup text, runtime, container id, pod uid)
    ("docker cgroupfs v1", f"12:pids:/docker/{CID}\n11:memory:/docker/{CID}\n", "docker", CID, ""),
    ("docker systemd v2", f"0::/system.slice/docker-{CID}.scope\n", "docker", CID, ""),
    ("docker systemd v1", f"1:name=systemd:/system.slice/docker-{CID}.scope\n", "docker", CID, ""),
    (
        "containerd systemd v2",
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_}.slice/cri-containerd-{CID}.scope\n",
        "containerd",
        CID,
        POD,
    ),
    (
        "containerd systemd v1 (colon form)",
        f"1:name=systemd:/kubepods-besteffort-pod{POD_}.slice:cri-containerd:{CID}\n",
        "containerd",
        CID,
        POD,
    ),
    ("kubepods cgroupfs v1", f"4:memory:/kubepods/besteffort/pod{POD}/{CID}\n", "kubernetes", CID, POD),
    ("cri-o v2", f"0::/kubepods.slice/kubepods-pod{POD_}.slice/crio-{CID}.scope\n", "cri-o", CID, POD),
    ("podman v2", f"0::/machine.slice/libpod-{CID}.scope/container\n", "podman", CID, ""),
    ("podman v1 cgroupfs", f"3:cpu:/libpod_parent/libpod-{CID}\n", "podman", CID, ""),
    ("cgroup namespace (relative path)", f"0::/../../system.slice/docker-{CID}.scope\n", "docker", CID, ""),
    ("node process", "0::/system.slice/ssh.service\n", "", "", ""),
    ("inside a cgroup namespace: root only", "0::/\n", "", "", ""),
    ("empty", "", "", "", ""),
    ("garbage", "not a cgroup line\n\x00\x01\n", "", "", ""),
    ("short id is not an id", "0::/system.slice/docker-abc123.scope\n", "", "", ""),
]


@pytest.mark.parametrize(("text", "runtime", "cid", "pod"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cgroup_formats(text, runtime, cid, pod):
    info = cgroups.parse(text)
    assert (info.runtime, info.container_id, info.pod_uid) == (runtime, cid, pod)
    assert not info.monitor


@pytest.mark.parametrize(
    "text",
    [
        f"0::/machine.slice/crio-conmon-{CID}.scope\n",
        f"0::/machine.slice/libpod-conmon-{CID}.scope\n",
    ],
    ids=["crio-conmon", "podman-conmon"],
)
def test_conmon_is_a_monitor_not_the_container(text):
    info = cgroups.parse(text)
    assert info.monitor
    assert info.container_id == ""


def test_v2_line_wins_over_v1_controllers():
    other = "f" * 64
    text = f"5:memory:/docker/{other}\n0::/system.slice/docker-{CID}.scope\n"
    assert cgroups.parse(text).container_id == CID
