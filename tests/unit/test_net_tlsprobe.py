"""The TLS probe against real local servers (loopback): TLS 1.2 / 1.3 / mTLS, plaintext protocols, hostile
servers; plus the pure parts (record and banner classification, certificate fields, the cache)."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import socket
import ssl
import time
from pathlib import Path

import pytest
import trustme

from ztmon.model.network import Listener, NetNamespace, ProbeResult, Tls
from ztmon.sources import tlsprobe

_spec = importlib.util.spec_from_file_location("netservers", Path(__file__).parent / "fixtures" / "netservers.py")
assert _spec is not None
assert _spec.loader is not None
netservers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(netservers)


# -- pure ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "verdict", "protocol"),
    [
        (b"\x16\x03\x03\x00\x7a", Tls.TLS, "tls"),
        (b"\x15\x03\x01\x00\x02\x02\x46", Tls.TLS, "tls"),
        (b"HTTP/1.1 400 Bad Request\r\n", Tls.PLAINTEXT, "http"),
        (b"HTTP/1.0 200 OK\r\n", Tls.PLAINTEXT, "http"),
        (b"-ERR unknown command\r\n", Tls.PLAINTEXT, "redis"),
        (b"E\x00\x00\x00\x10SFATAL\x00VFATAL\x00", Tls.PLAINTEXT, "postgres"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", Tls.UNKNOWN, "ssh"),
        (b"some words the server says\r\n", Tls.PLAINTEXT, ""),
        (bytes(range(200, 256)), Tls.UNKNOWN, ""),
        (b"\x16", Tls.UNKNOWN, ""),
    ],
    ids=["handshake", "alert", "http11", "http10", "redis", "postgres", "ssh", "readable", "binary", "one-byte"],
)
def test_classify_reply(data, verdict, protocol):
    r = tlsprobe.classify_reply(data)
    assert (r.verdict, r.protocol) == (verdict, protocol)


@pytest.mark.parametrize(
    ("banner", "protocol"),
    [
        (b"220 mail.example ESMTP Postfix\r\n", "smtp"),
        (b"220 ProFTPD Server ready\r\n", "ftp"),
        (b"+OK Dovecot ready.\r\n", "pop3"),
        (b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n", "imap"),
        (b"SSH-2.0-OpenSSH\r\n", "ssh"),
        (b"hello\r\n", ""),
    ],
)
def test_banner_protocol(banner, protocol):
    assert tlsprobe.banner_protocol(banner) == protocol


def test_client_hello_is_a_tls_handshake_record():
    _, hello = tlsprobe.Probe().client_hello()
    assert hello[0] == 0x16
    assert hello[1] == 0x03
    assert hello[5] == 0x01  # ClientHello


def test_certificate_fields_from_der():
    ca = trustme.CA()
    not_after = dt.datetime(2031, 5, 17, 12, 0, 0, tzinfo=dt.UTC)
    cert = ca.issue_cert("api.example.test", common_name="api.example.test", not_after=not_after)
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    assert tlsprobe.cert_fields(der) == ("api.example.test", not_after)


@pytest.mark.parametrize("der", [b"", b"\x30", b"\x30\x84\xff\xff\xff\xff", b"\x30\x03\x02\x01\x01", b"\xff" * 40])
def test_unreadable_certificate_gives_nothing(der):
    assert tlsprobe.cert_fields(der) == ("", None)


# -- real servers on loopback -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    netservers.write_certs(d, cn="svc.example.test", days=20)
    return d


@pytest.fixture
async def serve(certdir):
    servers = []

    async def start(kind: str) -> int:
        server = await netservers.start(kind, "127.0.0.1", 0, certdir)
        servers.append(server)
        return server.sockets[0].getsockname()[1]

    yield start
    for s in servers:
        s.close()
    await asyncio.sleep(0)


PROBE = tlsprobe.Probe(timeout=1.5, banner_wait=0.3)


@pytest.mark.parametrize("kind", sorted(netservers.EXPECTED))
async def test_each_server_kind_is_classified(kind, serve):
    port = await serve(kind)
    start = time.perf_counter()
    r = await PROBE.run(tlsprobe.Target("127.0.0.1", port))
    assert (r.verdict.value, r.protocol) == netservers.EXPECTED[kind], r.reason
    assert time.perf_counter() - start < PROBE.timeout + 0.5  # never a hang past the timeout


@pytest.mark.parametrize(("kind", "version"), [("tls12", "TLSv1.2"), ("tls13", "TLSv1.3"), ("mtls13", "TLSv1.3")])
async def test_tls_version_and_certificate_are_recorded(kind, version, serve):
    r = await PROBE.run(tlsprobe.Target("127.0.0.1", await serve(kind)))
    assert r.tls_version == version
    assert r.cert_subject_cn == "svc.example.test"
    assert r.cert_not_after is not None
    days = (r.cert_not_after - dt.datetime.now(dt.UTC)).days
    assert 18 <= days <= 20


@pytest.mark.parametrize("kind", ["mtls12", "mtls13"])
async def test_mtls_server_is_tls_and_asks_for_a_client_certificate(kind, serve):
    r = await PROBE.run(tlsprobe.Target("127.0.0.1", await serve(kind)))
    assert r.verdict is Tls.TLS
    assert r.client_cert_required, r.reason


async def test_refused_is_unknown():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = await PROBE.run(tlsprobe.Target("127.0.0.1", port))
    assert (r.verdict, r.reason) == (Tls.UNKNOWN, "connection refused")


async def test_smtp_with_starttls_is_not_called_plaintext(serve):
    r = await PROBE.run(tlsprobe.Target("127.0.0.1", await serve("smtp-starttls")))
    assert r.verdict is Tls.UNKNOWN
    assert "STARTTLS" in r.reason


async def test_postgres_sslrequest_answered_n_is_plaintext(serve):
    r = await PROBE.sslrequest(tlsprobe.Target("127.0.0.1", await serve("postgres")))
    assert (r.verdict, r.reason) == (Tls.PLAINTEXT, "SSLRequest answered N")


# -- the prober: cache, targets, bounded concurrency ---------------------------------------------------
def _listener(port: int, *, netns: str = "net:[1]", address: str = "127.0.0.1", inode: int = 1, proto: str = "tcp"):
    return Listener(netns=netns, protocol=proto, address=address, port=port, inode=inode)


def _prober(**kw):
    defaults = {"probe": PROBE, "own_netns": "net:[1]", "can_enter": False, "ns_path": lambda ns: f"/proc/{ns.pid}"}
    return tlsprobe.Prober(**{**defaults, **kw})


async def test_results_are_cached_until_the_listener_changes(serve):
    port = await serve("http")
    prober = _prober()
    first = await prober.probe_all([_listener(port)], [])
    again = await prober.probe_all([_listener(port)], [])
    assert prober.probes_total == 1
    assert again[0].probe is first[0].probe
    await prober.probe_all([_listener(port, inode=2)], [])  # re-created socket: probed again
    assert prober.probes_total == 2


async def test_cache_forgets_vanished_listeners(serve):
    port = await serve("http")
    prober = _prober()
    await prober.probe_all([_listener(port)], [])
    await prober.probe_all([], [])
    await prober.probe_all([_listener(port)], [])
    assert prober.probes_total == 2


async def test_unknown_results_expire_sooner():
    now = [0.0]
    prober = _prober(clock=lambda: now[0], unknown_ttl=10, cache_ttl=1000)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await prober.probe_all([_listener(port)], [])
    now[0] = 11
    await prober.probe_all([_listener(port)], [])
    assert prober.probes_total == 2


async def test_udp_listeners_are_not_probed():
    prober = _prober()
    (li,) = await prober.probe_all([_listener(53, proto="udp")], [])
    assert li.probe is None
    assert prober.probes_total == 0


def test_loopback_listener_in_another_namespace_without_privilege_is_unknown_with_reason():
    t = _prober().target(_listener(6379, netns="net:[2]"), NetNamespace("net:[2]", pid=5))
    assert isinstance(t, ProbeResult)
    assert t.verdict is Tls.UNKNOWN
    assert "CAP_SYS_ADMIN" in t.reason


def test_wildcard_listener_in_another_namespace_is_reached_at_its_address_without_privilege():
    ns = NetNamespace("net:[2]", pid=5, addresses=("10.244.1.7",))
    assert _prober().target(_listener(80, netns="net:[2]", address="0.0.0.0"), ns) == tlsprobe.Target("10.244.1.7", 80)


def test_with_privilege_the_probe_enters_the_namespace():
    ns = NetNamespace("net:[2]", pid=5)
    t = _prober(can_enter=True).target(_listener(6379, netns="net:[2]"), ns)
    assert t == tlsprobe.Target("127.0.0.1", 6379, ns_path="/proc/5")


def test_own_namespace_wildcards_connect_to_loopback():
    p = _prober()
    assert p.target(_listener(80, address="0.0.0.0"), None) == tlsprobe.Target("127.0.0.1", 80)
    assert p.target(_listener(80, address="::"), None) == tlsprobe.Target("::1", 80)


async def test_concurrency_bounds_a_round_of_silent_servers(serve):
    ports = [await serve("silent") for _ in range(6)]
    probe = tlsprobe.Probe(timeout=0.4, banner_wait=0.05)
    prober = _prober(probe=probe, concurrency=3)
    start = time.perf_counter()
    out = await prober.probe_all([_listener(p, inode=p) for p in ports], [])
    took = time.perf_counter() - start
    assert all(li.tls is Tls.UNKNOWN for li in out)
    assert 0.75 < took < 1.6  # two waves of three, each one timeout


async def test_rate_limit_spaces_connections(serve):
    ports = [await serve("http") for _ in range(5)]
    prober = _prober(rate_per_second=10)
    start = time.perf_counter()
    out = await prober.probe_all([_listener(p, inode=p) for p in ports], [])
    assert all(li.tls is Tls.PLAINTEXT for li in out)
    assert time.perf_counter() - start >= 0.35  # five connections at 10/s: the last starts at 0.4 s
