"""Listeners of real network namespaces: sock_diag and /proc agree, owners are found, and every server kind
(TLS 1.2, TLS 1.3, mTLS, plain HTTP, banners, silent, reset, hostile) is classified by the real probe."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ztmon.model.network import Scope, Tls
from ztmon.sources import procfs, sockdiag, tlsprobe

KINDS = ["tls12", "tls13", "mtls12", "mtls13", "http", "smtp", "redis", "postgres", "silent", "reset", "slow-drip",
         "garbage", "huge-banner", "ssh"]  # fmt: skip


def _scan(listing: str) -> procfs.Inventory:
    worker = sockdiag.NetnsWorker() if listing != "proc" else None
    try:
        return procfs.Scanner(proc_root=Path("/proc"), worker=worker, listing=listing).scan()  # type: ignore[arg-type]
    finally:
        if worker is not None:
            worker.close()


@pytest.fixture
def busy_namespace(veth_pair, certdir):
    """Server namespace with one server per kind on its veth address, and two on loopback only."""
    _, _, server_ns, addr = veth_pair()
    ports = {}
    for i, kind in enumerate(KINDS):
        ports[kind] = 20000 + i
        server_ns.server(kind, addr, ports[kind], certdir)
    server_ns.server("http", "127.0.0.1", 21000, certdir)
    server_ns.server("tls13", "::1", 21001, certdir)
    server_ns.server("http", "0.0.0.0", 21002, certdir)
    return server_ns, server_ns.netns_id(), addr, ports


def _in(inv: procfs.Inventory, netns: str) -> dict[int, object]:
    return {li.port: li for li in inv.listeners if li.netns == netns}


def test_sock_diag_and_proc_fallback_list_the_same_listeners(busy_namespace):
    _, netns, _, _ = busy_namespace
    diag, proc = _scan("sock_diag"), _scan("proc")
    assert diag.method in {"sock_diag", "mixed"}
    a, b = _in(diag, netns), _in(proc, netns)
    assert set(a) == set(b) == {*range(20000, 20000 + len(KINDS)), 21000, 21001, 21002}
    for port in a:
        assert (a[port].address, a[port].inode) == (b[port].address, b[port].inode)  # type: ignore[attr-defined]


def test_listeners_carry_scope_and_owning_process(busy_namespace):
    _, netns, addr, ports = busy_namespace
    found = _in(_scan("auto"), netns)
    http = found[ports["http"]]
    assert (http.address, http.scope, http.host_netns) == (addr, Scope.SPECIFIC, False)  # type: ignore[attr-defined]
    assert http.pid > 0  # type: ignore[attr-defined]
    assert http.comm.startswith("python")  # type: ignore[attr-defined]
    assert found[21000].scope is Scope.LOOPBACK  # type: ignore[attr-defined]
    assert found[21001].address == "::1"  # type: ignore[attr-defined]
    assert found[21002].scope is Scope.ALL  # type: ignore[attr-defined]


async def test_every_server_kind_is_classified_by_entering_its_namespace(busy_namespace, expected):
    _, netns, _, ports = busy_namespace
    source = procfs.ProcfsSource(probe_timeout=1.5)
    try:
        start = time.perf_counter()
        await source.refresh()
        took = time.perf_counter() - start
    finally:
        await source.close()
    found = {li.port: li for li in source.part().listeners if li.netns == netns}
    wrong = {}
    for kind, port in ports.items():
        li = found[port]
        assert li.probe is not None
        got = (li.probe.verdict.value, li.probe.protocol)
        if got != expected[kind]:
            wrong[kind] = (got, li.probe.reason)
    assert wrong == {}
    assert found[21000].tls is Tls.PLAINTEXT  # loopback-only, reached by entering the namespace
    assert found[21001].tls is Tls.TLS
    assert found[21001].probe is not None
    assert found[21001].probe.cert_subject_cn == "svc.ztmon.test"
    assert found[ports["tls12"]].probe.tls_version == "TLSv1.2"  # type: ignore[union-attr]
    assert found[ports["mtls12"]].probe.client_cert_required  # type: ignore[union-attr]
    assert took < 10


async def test_without_privilege_a_loopback_listener_elsewhere_is_unknown_with_the_reason(busy_namespace):
    _, netns, _, _ = busy_namespace
    inv = _scan("proc")
    prober = tlsprobe.Prober(
        probe=tlsprobe.Probe(), own_netns="not-this-one", can_enter=False, ns_path=lambda ns: f"/proc/{ns.pid}/ns/net"
    )
    out = await prober.probe_all([li for li in inv.listeners if li.netns == netns], inv.namespaces)
    loop = next(li for li in out if li.port == 21000)
    assert loop.tls is Tls.UNKNOWN
    assert loop.probe is not None
    assert "CAP_SYS_ADMIN" in loop.probe.reason


def test_processes_exiting_mid_scan_never_crash(make_netns):
    ns = make_netns("churn")
    churn = ns.start("sh", "-c", "while true; do sleep 0.01 & python3 -c 'import socket; s=socket.socket(); "
                     "s.bind((\"127.0.0.1\", 0)); s.listen()' & wait; done")  # fmt: skip
    try:
        for listing in ("sock_diag", "proc"):
            for _ in range(10):
                _scan(listing)
    finally:
        churn.kill()


async def test_second_refresh_uses_the_cache(busy_namespace):
    source = procfs.ProcfsSource(probe_timeout=1.0)
    try:
        await source.refresh()
        assert source.prober is not None
        first = source.prober.probes_total
        start = time.perf_counter()
        await source.refresh()
        assert source.prober.last_round_probes < first  # only new/unknown-expired listeners again
        assert time.perf_counter() - start < 3
    finally:
        await source.close()


def test_namespace_addresses_come_from_fib_trie(busy_namespace):
    _, netns, addr, _ = busy_namespace
    ns = next(n for n in _scan("sock_diag").namespaces if n.id == netns)
    assert addr in ns.addresses


def test_worker_returns_to_its_namespace_after_a_failed_entry():
    worker = sockdiag.NetnsWorker()
    try:
        with pytest.raises(OSError):
            worker.call_in("/proc/does-not-exist/ns/net", lambda: None)
        inside = worker.call_in("/proc/self/ns/net", lambda: Path("/proc/thread-self/ns/net").readlink())
        assert inside == Path("/proc/self/ns/net").readlink()
    finally:
        worker.close()
