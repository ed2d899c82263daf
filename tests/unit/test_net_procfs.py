"""procfs parsing and the scan, on fixture /proc trees in the kernel's real formats."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ztmon.model.network import Scope
from ztmon.sources import procfs

NODE1 = Path(__file__).parent / "fixtures" / "proc" / "node1"
DOCKER_ID = "d0c4e7" + "1" * 58
PAUSE_ID = "9a05e0" + "2" * 58
APP_ID = "a99000" + "3" * 58
CRIO_ID = "c410a0" + "4" * 58
HOSTNET_ID = "b057ae" + "5" * 58
POD_UID = "5f0d8c1e-2b3a-4c5d-8e9f-0a1b2c3d4e5f"

HEAD = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def line(local: str, remote: str, state: str, inode: int, uid: int = 0) -> str:
    return (
        f"   0: {local} {remote} {state} 00000000:00000000 00:00000000 00000000 {uid:5d}        0 {inode} 1 0 100 0 0\n"
    )


# -- /proc/net tables -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("local", "address", "port"),
    [
        ("00000000:1F90", "0.0.0.0", 8080),
        ("0100007F:0050", "127.0.0.1", 80),
        ("0A02000A:01BB", "10.0.2.10", 443),
        ("00000000000000000000000000000000:0016", "::", 22),
        ("00000000000000000000000001000000:2382", "::1", 9090),
        ("0000000000000000FFFF00000100007F:1F90", "::ffff:127.0.0.1", 8080),
        ("B80D0120000000000000000010000000:0050", "2001:db8::10", 80),
    ],
    ids=["v4-any", "v4-loopback", "v4-specific", "v6-any", "v6-loopback", "v4-mapped", "v6-global"],
)
def test_net_table_addresses(local, address, port):
    entries, odd = procfs.parse_net_table(HEAD + line(local, "00000000:0000", "0A", 42, uid=1000), "tcp")
    assert odd == 0
    (e,) = entries
    assert (e.address, e.port, e.inode, e.uid) == (address, port, 42, 1000)


def test_net_table_keeps_only_listen_for_tcp():
    text = HEAD + line("00000000:0016", "00000000:0000", "0A", 1) + line("0100007F:0016", "0100007F:C350", "01", 2)
    assert [e.inode for e in procfs.parse_net_table(text, "tcp")[0]] == [1]


def test_net_table_udp_keeps_unconnected_only():
    text = HEAD + line("00000000:0044", "00000000:0000", "07", 1) + line("0100007F:9C40", "08080808:0035", "07", 2)
    text += line("0100007F:9C41", "08080808:0035", "01", 3)
    assert [e.inode for e in procfs.parse_net_table(text, "udp")[0]] == [1]


@pytest.mark.parametrize(
    "bad",
    [
        "   1: truncated\n",
        "   1: ZZZZZZZZ:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 7 1\n",
        "   1: 00000000:XYZ 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 7 1\n",
        "   1: 000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 7 1\n",
        "   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 notanumber 1\n",
    ],
    ids=["truncated", "bad-hex", "bad-port", "short-address", "bad-inode"],
)
def test_net_table_odd_lines_are_counted_not_fatal(bad):
    text = HEAD + bad + line("00000000:0016", "00000000:0000", "0A", 9)
    entries, odd = procfs.parse_net_table(text, "tcp")
    assert [e.inode for e in entries] == [9]
    assert odd == 1


def test_net_table_empty_and_header_only():
    assert procfs.parse_net_table("", "tcp") == ([], 0)
    assert procfs.parse_net_table(HEAD, "tcp") == ([], 0)


# -- status and mountinfo ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mask", "caps"),
    [
        ("0000000000000000", ()),
        ("0000000000200000", ("SYS_ADMIN",)),
        ("0000000000003000", ("NET_ADMIN", "NET_RAW")),
        ("00000000a80425fb", ("AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                              "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT")),
        ("0000040000000000", ("CAP_42",)),
    ],
    ids=["none", "sys-admin", "net", "docker-default", "unknown-bit"],
)  # fmt: skip
def test_capability_masks(mask, caps):
    assert procfs.capabilities(mask) == tuple(sorted(caps))


def test_posture_from_status():
    text = (
        "Name:\tapp\nUid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000400\nCapBnd:\t0000000000000400\n"
        "NoNewPrivs:\t1\nSeccomp:\t2\n"
    )
    p = procfs.posture_from_status(text, container_id="c", pid=7)
    assert p.cap_effective == ("NET_BIND_SERVICE",)
    assert (p.no_new_privs, p.seccomp, p.uids, p.effective_uid) == (True, 2, (1000, 1000, 1000, 1000), 1000)


def test_posture_from_odd_status_keeps_what_it_can():
    p = procfs.posture_from_status("Uid:\tx y\nNoNewPrivs:\t0\ngarbage\n", container_id="c", pid=7)
    assert (p.no_new_privs, p.uids, p.seccomp, p.cap_effective) == (False, (), None, ())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("650 520 0:55 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/l\n", False),
        ("650 520 0:55 / / ro,relatime master:1 - overlay overlay rw,lowerdir=/l\n", True),
        ("650 520 0:55 / / rw,relatime - overlay overlay ro\n", True),
        (
            "650 520 0:55 / / ro,relatime - overlay overlay rw\n700 650 0:60 / / rw,relatime - tmpfs tmpfs rw\n",
            False,
        ),
        ("651 650 0:58 / /proc rw,relatime - proc proc rw\n", None),
        ("garbage\n", None),
        ("", None),
    ],
    ids=["rw", "ro", "ro-superblock", "later-mount-wins", "no-root", "garbage", "empty"],
)
def test_rootfs_read_only(text, expected):
    assert procfs.rootfs_read_only(text) is expected


def test_fib_trie_local_addresses():
    text = (NODE1 / "1" / "net" / "fib_trie").read_text()
    assert procfs.parse_fib_trie_local(text) == ["192.0.2.10"]


def test_if_inet6_global_addresses_only():
    text = (NODE1 / "1" / "net" / "if_inet6").read_text()
    assert procfs.parse_if_inet6(text) == ["2001:db8::10"]


# -- the scan over a fixture tree ---------------------------------------------------------------------
@pytest.fixture
def inventory():
    return procfs.Scanner(proc_root=NODE1, worker=None, listing="proc").scan()


def _by_port(inventory):
    return {(li.protocol, li.port, li.address): li for li in inventory.listeners}


def test_namespaces_are_grouped_by_ns_link(inventory):
    ids = {ns.id: ns for ns in inventory.namespaces}
    assert set(ids) == {"net:[4026531840]", "net:[4026532001]", "net:[4026532002]", "net:[4026532003]"}
    assert ids["net:[4026531840]"].host
    assert not ids["net:[4026532001]"].host
    assert ids["net:[4026532002]"].container_ids == (PAUSE_ID, APP_ID)
    assert ids["net:[4026532002]"].pod_uid == POD_UID


def test_each_namespace_is_listed_once_and_host_sockets_are_not_repeated(inventory):
    assert len(inventory.listeners) == len({li.inode for li in inventory.listeners}) == 10


def test_node_listener_is_the_nodes_with_its_process(inventory):
    ssh = _by_port(inventory)[("tcp", 22, "0.0.0.0")]
    assert (ssh.host_netns, ssh.container_id, ssh.pid, ssh.comm) == (True, "", 100, "sshd")
    assert _by_port(inventory)[("tcp", 22, "::")].scope is Scope.ALL


def test_established_and_connected_sockets_are_not_listeners(inventory):
    ports = {(li.protocol, li.port) for li in inventory.listeners}
    assert ("udp", 40000) not in ports
    assert ("udp", 68) in ports


def test_busybox_httpd_binds_v6_any_and_is_attributed_to_its_container(inventory):
    httpd = _by_port(inventory)[("tcp", 80, "::")]
    assert (httpd.container_id, httpd.pid, httpd.comm) == (DOCKER_ID, 200, "httpd")


def test_pod_listeners_go_to_the_owning_container_not_pause(inventory):
    redis = _by_port(inventory)[("tcp", 6379, "127.0.0.1")]
    assert (redis.container_id, redis.pod_uid, redis.scope) == (APP_ID, POD_UID, Scope.LOOPBACK)
    assert _by_port(inventory)[("tcp", 9090, "::1")].container_id == APP_ID


def test_unreadable_fd_falls_back_to_the_namespaces_only_container(inventory):
    nginx = _by_port(inventory)[("tcp", 443, "0.0.0.0")]
    assert (nginx.container_id, nginx.pid) == (CRIO_ID, 0)


def test_host_network_container_listener_is_its_own(inventory):
    exporter = _by_port(inventory)[("tcp", 9100, "0.0.0.0")]
    assert (exporter.host_netns, exporter.container_id, exporter.comm) == (True, HOSTNET_ID, "node_exporter")


def test_conmon_is_not_taken_for_the_crio_container(inventory):
    host = next(ns for ns in inventory.namespaces if ns.host)
    assert CRIO_ID not in host.container_ids


def test_postures_of_main_processes(inventory):
    by_id = {p.container_id: p for p in inventory.postures}
    assert by_id[DOCKER_ID].rootfs_read_only is False
    assert by_id[DOCKER_ID].pid == 200
    assert "NET_RAW" in by_id[DOCKER_ID].cap_effective
    assert by_id[APP_ID].cap_effective == ()
    assert by_id[APP_ID].rootfs_read_only is True
    assert by_id[CRIO_ID].rootfs_read_only is None  # garbage mountinfo
    assert "SYS_ADMIN" in by_id[CRIO_ID].cap_effective
    assert PAUSE_ID not in by_id  # no status file: skipped, not a crash


def test_namespace_addresses(inventory):
    ids = {ns.id: ns for ns in inventory.namespaces}
    assert ids["net:[4026532002]"].addresses == ("10.244.1.7",)
    assert ids["net:[4026531840]"].addresses == ("192.0.2.10", "2001:db8::10")


def test_odd_lines_are_counted(inventory):
    scanner = procfs.Scanner(proc_root=NODE1, worker=None, listing="proc")
    scanner.scan()
    assert scanner.odd.counts == {"net-table-odd-line": 1}


def test_without_ns_links_processes_group_by_container(tmp_path):
    root = tmp_path / "proc"
    shutil.copytree(NODE1, root, symlinks=True)
    for pid_dir in root.iterdir():
        link = pid_dir / "ns" / "net"
        if link.is_symlink():
            link.unlink()
    inv = procfs.Scanner(proc_root=root, worker=None, listing="proc").scan()
    ids = {ns.id for ns in inv.namespaces}
    assert f"cgroup:{DOCKER_ID}" in ids
    host = next(ns for ns in inv.namespaces if ns.host)
    assert host.id == "host"
    # the host-network container's group reads the host's tables too: each socket is still listed once
    assert len(inv.listeners) == len({li.inode for li in inv.listeners})
    assert {li.port for li in inv.listeners if li.container_id == DOCKER_ID} == {80}


def test_process_exiting_mid_scan_is_skipped(tmp_path):
    root = tmp_path / "proc"
    shutil.copytree(NODE1, root, symlinks=True)
    shutil.rmtree(root / "201")
    (root / "300" / "status").unlink()  # exited between listing and posture
    (root / "200" / "fd" / "3").unlink()  # fd closed between listing and the fd walk
    inv = procfs.Scanner(proc_root=root, worker=None, listing="proc").scan()
    httpd = next(li for li in inv.listeners if li.port == 80)
    assert (httpd.container_id, httpd.pid) == (DOCKER_ID, 0)
    assert APP_ID not in {p.container_id for p in inv.postures}


def test_missing_root_raises_a_clear_error(tmp_path):
    with pytest.raises(OSError, match="nowhere"):
        procfs.Scanner(proc_root=tmp_path / "nowhere", worker=None, listing="proc").scan()


def test_representative_process_gone_lists_nothing_rather_than_failing(tmp_path):
    root = tmp_path / "proc"
    shutil.copytree(NODE1, root, symlinks=True)
    (root / "400" / "net" / "tcp").unlink()
    inv = procfs.Scanner(proc_root=root, worker=None, listing="proc").scan()
    assert all(li.netns != "net:[4026532003]" for li in inv.listeners)


@pytest.mark.skipif(os.geteuid() != 0, reason="reads other processes' /proc entries")
def test_real_proc_scan_does_not_crash():
    inv = procfs.Scanner(proc_root=Path("/proc"), worker=None, listing="proc", postures=True).scan()
    assert any(ns.host for ns in inv.namespaces)


async def test_source_refresh_on_a_fixture_tree_publishes_its_part():
    source = procfs.ProcfsSource(proc_root=NODE1, listing="proc", probe=False)
    try:
        await source.refresh()
    finally:
        await source.close()
    part = source.part()
    assert source.up
    assert source.method == "proc"
    assert len(part.listeners) == 10
    assert len(part.namespaces) == 4
    assert {p.container_id for p in part.postures} == {DOCKER_ID, APP_ID, CRIO_ID, HOSTNET_ID}


def test_second_scan_reuses_unchanged_listeners_and_owners():
    scanner = procfs.Scanner(proc_root=NODE1, worker=None, listing="proc")
    first = scanner.scan()
    second = scanner.scan()
    assert all(a is b for a, b in zip(first.listeners, second.listeners, strict=True))
    assert [li.pid for li in second.listeners] == [li.pid for li in first.listeners]


def test_a_new_socket_is_looked_up_in_its_own_namespace(tmp_path):
    root = tmp_path / "proc"
    shutil.copytree(NODE1, root, symlinks=True)
    scanner = procfs.Scanner(proc_root=root, worker=None, listing="proc")
    scanner.scan()
    tcp6 = root / "200" / "net" / "tcp6"
    extra = "   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 "
    tcp6.write_text(tcp6.read_text() + extra + "00:00000000 00000000     0        0 2002 1 0 100 0 0 10 0\n")
    (root / "201" / "fd").mkdir()
    (root / "201" / "fd" / "7").symlink_to("socket:[2002]")
    again = scanner.scan()
    new = next(li for li in again.listeners if li.inode == 2002)
    assert (new.pid, new.comm, new.container_id) == (201, "sh", DOCKER_ID)
