"""Does a listener speak TLS? A raw probe over a plain stream, classifying the server's first bytes.

stdlib `open_connection(ssl=...)` cannot tell an mTLS server that drops a client without a certificate
from a plaintext server that closes (FACTS.md). So: connect, wait briefly for a server-first banner
(SMTP, FTP, SSH, ...), else send a real ClientHello made by `ssl.MemoryBIO` and read the reply's record
header: 0x16/0x15 then 0x03 is TLS (mTLS included); HTTP or other readable bytes is plaintext, named
where recognisable; a timeout, a reset or silence is unknown, never plaintext.

Every probe has one deadline and reads at most `_MAX_READ` bytes, so a slow-drip, garbage or huge-banner
server costs one timeout and a few kilobytes. Results are cached per listener (its socket inode) so a
steady node is probed once; probes are bounded in concurrency and in connection rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import structlog

from ztmon.model.network import Listener, NetNamespace, ProbeResult, Scope, Tls

log = structlog.get_logger("ztmon.sources.tlsprobe")

_MAX_READ = 4096  # enough for any banner or reply line we classify; a huge banner is cut here
_HANDSHAKE_READ = 16384
# (family, type) -> a socket created inside a namespace; None = connect from the agent's own namespace
SocketFactory = Callable[[str, int], socket.socket]
_POSTGRES_SSLREQUEST = b"\x00\x00\x00\x08\x04\xd2\x16\x2f"
_SSL_ALERT_CERT = ("CERTIFICATE_REQUIRED", "HANDSHAKE_FAILURE", "BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN")


# -- certificate fields (a minimal DER walk: the stdlib parses certificates only when it verifies them) --
def _tlv(data: bytes, off: int) -> tuple[int, int, int]:
    """(tag, content offset, content end) of the DER element at `off`. Raises ValueError when truncated."""
    if off + 2 > len(data):
        raise ValueError("truncated DER")
    tag = data[off]
    length = data[off + 1]
    off += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4 or off + n > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[off : off + n], "big")
        off += n
    end = off + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, off, end


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    out = []
    off = start
    while off < end:
        tag, c0, c1 = _tlv(data, off)
        out.append((tag, c0, c1))
        off = c1
    return out


def _der_time(tag: int, raw: bytes) -> datetime:
    text = raw.decode("ascii").rstrip("Z")
    if tag == 0x17:  # UTCTime YYMMDDHHMM[SS]
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    fmt = "%Y%m%d%H%M%S" if len(text) >= 14 else "%Y%m%d%H%M"
    return datetime.strptime(text[:14], fmt).replace(tzinfo=UTC)


_OID_CN = bytes.fromhex("550403")


def cert_fields(der: bytes) -> tuple[str, datetime | None]:
    """(subject CN, notAfter) of a DER certificate; ("", None) when it cannot be read."""
    try:
        _, c0, _c1 = _tlv(der, 0)
        _, t0, t1 = _tlv(der, c0)  # tbsCertificate
        fields = _children(der, t0, t1)
        if fields and fields[0][0] == 0xA0:
            fields = fields[1:]  # explicit version
        _serial, _alg, _issuer, validity, subject = fields[:5]
        times = _children(der, validity[1], validity[2])
        not_after = _der_time(times[1][0], der[times[1][1] : times[1][2]])
        cn = ""
        for _set_tag, s0, s1 in _children(der, subject[1], subject[2]):
            for _seq_tag, q0, q1 in _children(der, s0, s1):
                parts = _children(der, q0, q1)
                if len(parts) == 2 and der[parts[0][1] : parts[0][2]] == _OID_CN:
                    cn = der[parts[1][1] : parts[1][2]].decode("utf-8", "replace")
    except (ValueError, IndexError, UnicodeDecodeError):
        return "", None
    return cn, not_after


# -- classification of bytes ------------------------------------------------------------------------
def is_tls_record(head: bytes) -> bool:
    return len(head) >= 2 and head[0] in (0x15, 0x16) and head[1] == 0x03


def _readable(data: bytes) -> bool:
    if not data:
        return False
    sample = data[:256]
    printable = sum(1 for b in sample if 32 <= b < 127 or b in (9, 10, 13))
    return printable / len(sample) >= 0.9


def classify_reply(data: bytes) -> ProbeResult:
    """The server's answer to a ClientHello (or to nothing, for a banner): TLS, plaintext or unknown."""
    if is_tls_record(data):
        return ProbeResult(Tls.TLS, protocol="tls")
    if data.startswith(b"HTTP/"):
        return ProbeResult(Tls.PLAINTEXT, protocol="http", reason="HTTP response to a ClientHello")
    if data.startswith((b"-ERR", b"-NOAUTH", b"-WRONGPASS", b"+PONG")):
        return ProbeResult(Tls.PLAINTEXT, protocol="redis", reason="RESP error reply")
    if data.startswith(b"E") and len(data) > 5 and (b"SFATAL" in data or b"VFATAL" in data):
        return ProbeResult(Tls.PLAINTEXT, protocol="postgres", reason="postgres error message")
    if data.startswith(b"SSH-"):
        return ProbeResult(Tls.UNKNOWN, protocol="ssh", reason="ssh: encrypted, not TLS")
    if _readable(data):
        return ProbeResult(Tls.PLAINTEXT, protocol="", reason="readable reply: " + _excerpt(data))
    return ProbeResult(Tls.UNKNOWN, reason="unrecognised binary reply")


def _excerpt(data: bytes) -> str:
    line = data[:40].split(b"\n", 1)[0]
    return "".join(chr(b) if 32 <= b < 127 else "." for b in line)


def handshake_types(data: bytes) -> list[int]:
    """Handshake message types in the cleartext records of a server's first flight (until ChangeCipherSpec).

    TLS 1.2 sends CertificateRequest (13) in the clear: the server wants a client certificate (mTLS).
    """
    payload = bytearray()
    off = 0
    while off + 5 <= len(data):
        rtype, length = data[off], int.from_bytes(data[off + 3 : off + 5], "big")
        if rtype == 0x14 or rtype not in (0x15, 0x16, 0x17):
            break
        if rtype == 0x16:
            payload += data[off + 5 : off + 5 + length]
        off += 5 + length
    types = []
    i = 0
    while i + 4 <= len(payload):
        types.append(payload[i])
        i += 4 + int.from_bytes(payload[i + 1 : i + 4], "big")
    return types


def banner_protocol(banner: bytes) -> str:
    """smtp | ftp | pop3 | imap | ssh | "" from a server-first greeting."""
    head = banner[:200].upper()
    if banner.startswith(b"SSH-"):
        return "ssh"
    if banner.startswith(b"220"):
        return "ftp" if b"FTP" in head else "smtp"
    if banner.startswith(b"+OK"):
        return "pop3"
    if banner.startswith((b"* OK", b"* PREAUTH")):
        return "imap"
    return ""


# What to send after a banner to learn whether the server offers an upgrade to TLS, and the word to look for.
_UPGRADE = {
    "smtp": (b"EHLO ztmon.invalid\r\n", b"STARTTLS"),
    "ftp": (b"FEAT\r\n", b"AUTH TLS"),
    "pop3": (b"CAPA\r\n", b"STLS"),
    "imap": (b"a1 CAPABILITY\r\n", b"STARTTLS"),
}


# -- one probe ----------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Seen:
    """What a probe learnt before its deadline hit."""

    result: ProbeResult | None = None


@dataclass(frozen=True, slots=True)
class _Tls:
    obj: ssl.SSLObject
    incoming: ssl.MemoryBIO
    outgoing: ssl.MemoryBIO


@dataclass(frozen=True, slots=True)
class Target:
    host: str  # address to connect to
    port: int
    ns_path: str = ""  # enter this namespace to create the socket ("" = agent's own namespace)


class Probe:
    """Probes with one shared client context (creating an SSLContext costs milliseconds)."""

    def __init__(
        self,
        *,
        timeout: float = 1.5,
        banner_wait: float = 0.3,
        socket_factory: Callable[[str, int], socket.socket] | None = None,
    ) -> None:
        self.timeout = timeout
        self.banner_wait = banner_wait
        self._socket_in = socket_factory  # (ns_path, family) -> socket made in that namespace
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # we classify and read the certificate; we do not trust it
        with contextlib.suppress(ValueError, ssl.SSLError):
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self._ctx = ctx

    def client_hello(self) -> tuple[_Tls, bytes]:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self._ctx.wrap_bio(incoming, outgoing, server_side=False)
        with contextlib.suppress(ssl.SSLWantReadError):
            obj.do_handshake()
        return _Tls(obj, incoming, outgoing), outgoing.read()

    async def run(self, target: Target) -> ProbeResult:
        start = time.perf_counter()
        seen = _Seen()
        try:
            async with asyncio.timeout(self.timeout):
                result = await self._run(target, seen)
                if result.protocol == "postgres" and result.verdict is Tls.UNKNOWN:
                    result = await self.sslrequest(target)
        except TimeoutError:
            # A TLS record header already seen is a verdict; only the version and certificate are missing.
            result = seen.result or ProbeResult(Tls.UNKNOWN, reason="timeout")
        except ConnectionRefusedError:
            result = ProbeResult(Tls.UNKNOWN, reason="connection refused")
        except (ConnectionResetError, BrokenPipeError):
            result = ProbeResult(Tls.UNKNOWN, reason="connection reset")
        except OSError as e:
            result = ProbeResult(Tls.UNKNOWN, reason=f"{type(e).__name__}: {e.strerror or e}")
        return replace(result, duration_seconds=time.perf_counter() - start)

    async def _open(self, target: Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
        if not target.ns_path or self._socket_in is None:
            return await asyncio.open_connection(target.host, target.port, limit=_MAX_READ * 4)
        sock = await asyncio.to_thread(self._socket_in, target.ns_path, family)
        try:
            sock.settimeout(0.0)  # non-blocking, for the loop
            await asyncio.get_running_loop().sock_connect(sock, (target.host, target.port))
            return await asyncio.open_connection(sock=sock, limit=_MAX_READ * 4)
        except BaseException:
            sock.close()
            raise

    async def _run(self, target: Target, seen: _Seen) -> ProbeResult:
        reader, writer = await self._open(target)
        try:
            banner = b""
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.banner_wait):  # no extra task, unlike wait_for
                    banner = await reader.read(_MAX_READ)
            if banner:
                return await self._after_banner(banner, reader, writer)
            if reader.at_eof():
                return ProbeResult(Tls.UNKNOWN, reason="closed without a word")
            return await self._hello(reader, writer, seen)
        finally:
            writer.close()  # the transport closes the socket; nothing to wait for

    async def _after_banner(
        self, banner: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> ProbeResult:
        proto = banner_protocol(banner)
        if proto == "ssh":
            return ProbeResult(Tls.UNKNOWN, protocol="ssh", reason="ssh: encrypted, not TLS")
        if is_tls_record(banner):
            return ProbeResult(Tls.UNKNOWN, reason="TLS record sent before any ClientHello")
        if proto in _UPGRADE:
            command, word = _UPGRADE[proto]
            upgrade = word in banner.upper()
            if not upgrade:
                writer.write(command)  # one capability query; the reply is bounded by _MAX_READ
                await writer.drain()
                reply = await _read_some(reader, _MAX_READ, 0.5)
                upgrade = word in reply.upper()
            if upgrade:
                return ProbeResult(
                    Tls.UNKNOWN, protocol=proto, reason=f"plaintext greeting offering {word.decode()} (opportunistic)"
                )
            return ProbeResult(Tls.PLAINTEXT, protocol=proto, reason=f"{proto} banner without {word.decode()}")
        result = classify_reply(banner)
        return replace(result, reason="banner: " + result.reason) if result.verdict is Tls.PLAINTEXT else result

    async def _hello(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: _Seen) -> ProbeResult:
        state, hello = self.client_hello()
        writer.write(hello)
        await writer.drain()
        try:
            head = await reader.read(_MAX_READ)
        except ConnectionResetError:
            return ProbeResult(Tls.UNKNOWN, reason="reset after ClientHello")
        if not head:
            return ProbeResult(Tls.UNKNOWN, reason="closed after ClientHello")
        while len(head) < 5:  # a slow drip: wait for a record header's worth (the deadline bounds this)
            more = await _read_some(reader, 5 - len(head), self.timeout)
            if not more:
                break
            head += more
        result = classify_reply(head)
        if result.verdict is not Tls.TLS:
            if result.protocol == "postgres":
                return await self._postgres(result)
            return result
        seen.result = ProbeResult(Tls.TLS, protocol="tls", reason="TLS record; handshake not finished in time")
        return await self._handshake(state, head, reader, writer)

    async def _handshake(
        self, state: _Tls, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> ProbeResult:
        """Finish the handshake for the version and certificate; the verdict is already TLS."""
        obj, incoming, outgoing = state.obj, state.incoming, state.outgoing
        if first[0] == 0x15:
            return ProbeResult(Tls.TLS, protocol="tls", reason="alert in reply to ClientHello")
        incoming.write(first)
        received = bytearray(first)  # the cleartext first flight, for a TLS 1.2 CertificateRequest
        cert_requested = False
        error = ""
        for _ in range(32):  # bounded rounds; the deadline bounds time
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = outgoing.read()
                if pending:
                    writer.write(pending)
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
                try:
                    data = await reader.read(_HANDSHAKE_READ)
                except ConnectionError:
                    data = b""
                if not data:
                    error = "closed during handshake"
                    break
                incoming.write(data)
                if len(received) < _HANDSHAKE_READ * 4:
                    received += data
            except ssl.SSLError as e:
                error = e.reason or str(e)
                cert_requested = any(word in error.upper() for word in _SSL_ALERT_CERT)
                break
        version = obj.version() or ""
        cn, not_after = "", None
        with contextlib.suppress(ValueError, ssl.SSLError):
            der = obj.getpeercert(binary_form=True)
            if der:
                cn, not_after = cert_fields(der)
        cert_requested = cert_requested or 13 in handshake_types(bytes(received))
        reason = "handshake completed" if not error else f"handshake stopped: {error}"
        if not error and version == "TLSv1.3":
            rejected, why = await _tls13_client_cert_rejected(state, reader, writer)
            if rejected:
                cert_requested, reason = True, why or reason
        return ProbeResult(
            Tls.TLS,
            protocol="tls",
            reason=reason,
            tls_version=version,
            client_cert_required=cert_requested,
            cert_subject_cn=cn,
            cert_not_after=not_after,
        )

    async def _postgres(self, first: ProbeResult) -> ProbeResult:
        """Postgres answers garbage with an error; its SSLRequest answer ('S' or 'N') is the truth."""
        del first
        return ProbeResult(Tls.UNKNOWN, protocol="postgres", reason="postgres: needs SSLRequest")

    async def sslrequest(self, target: Target) -> ProbeResult:
        reader, writer = await self._open(target)
        try:
            writer.write(_POSTGRES_SSLREQUEST)
            await writer.drain()
            answer = await reader.read(1)
        finally:
            writer.close()
        if answer == b"S":
            return ProbeResult(Tls.TLS, protocol="postgres", reason="SSLRequest accepted")
        if answer == b"N":
            return ProbeResult(Tls.PLAINTEXT, protocol="postgres", reason="SSLRequest answered N")
        return ProbeResult(Tls.UNKNOWN, protocol="postgres", reason="SSLRequest: unexpected answer")


async def _tls13_client_cert_rejected(
    state: _Tls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[bool, str]:
    """TLS 1.3: the client finishes before the server judges its (empty) certificate; look for the alert."""
    pending = state.outgoing.read()
    if pending:
        writer.write(pending)
    tail = await _read_some(reader, _HANDSHAKE_READ, 0.15)
    if tail:
        state.incoming.write(tail)
        try:
            state.obj.read(1)
        except ssl.SSLError as e:
            alert = (e.reason or str(e)).upper()
            return any(word in alert for word in _SSL_ALERT_CERT), ""
        return False, ""
    if reader.at_eof():
        # Servers send session tickets after a good handshake; a close instead, right after our
        # certificate-less Finished, is how a client-certificate rejection looks without an alert.
        return True, "closed right after the handshake: client certificate required"
    return False, ""


async def _read_some(reader: asyncio.StreamReader, n: int, wait: float) -> bytes:
    try:
        async with asyncio.timeout(wait):
            return await reader.read(n)
    except (TimeoutError, ConnectionError):
        return b""


# -- many probes -------------------------------------------------------------------------------------
def connect_host(listener: Listener) -> str:
    """Where to connect inside the listener's namespace: loopback for a wildcard bind, else the address."""
    if listener.address == "0.0.0.0":
        return "127.0.0.1"
    if listener.address == "::":
        return "::1"
    return listener.address


@dataclass(slots=True)
class _Cached:
    inode: int
    result: ProbeResult
    at: float


class Prober:
    """Probes a node's TCP listeners: bounded concurrency and rate, cached per listener until it changes."""

    def __init__(
        self,
        *,
        probe: Probe,
        own_netns: str,
        can_enter: bool,
        ns_path: Callable[[NetNamespace], str],
        concurrency: int = 384,
        rate_per_second: float = 2000.0,
        cache_ttl: float = 3600.0,
        unknown_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.probe = probe
        self.own_netns = own_netns
        self.can_enter = can_enter
        self._ns_path = ns_path
        self.concurrency = concurrency
        self.rate = rate_per_second
        self.cache_ttl = cache_ttl
        self.unknown_ttl = unknown_ttl
        self._clock = clock
        self._wall = wall_clock
        self._cache: dict[tuple[str, str, str, int], _Cached] = {}
        self.last_round_seconds = 0.0
        self.last_round_probes = 0
        self.probes_total = 0

    def target(self, listener: Listener, ns: NetNamespace | None) -> Target | ProbeResult:
        """Where to connect, or why we cannot."""
        host = connect_host(listener)
        if listener.netns == self.own_netns:
            return Target(host, listener.port)
        if self.can_enter and ns is not None and not ns.id.startswith("cgroup:"):
            return Target(host, listener.port, ns_path=self._ns_path(ns))
        if listener.scope is Scope.LOOPBACK:
            return ProbeResult(
                Tls.UNKNOWN,
                reason="loopback-only listener in another network namespace; entering it needs CAP_SYS_ADMIN",
            )
        if listener.scope is Scope.SPECIFIC:
            return Target(listener.address, listener.port)
        v6 = listener.address == "::"
        addrs = [a for a in (ns.addresses if ns else ()) if (":" in a) == v6] or list(ns.addresses if ns else ())
        if not addrs:
            return ProbeResult(Tls.UNKNOWN, reason="namespace has no address reachable from the agent")
        return Target(addrs[0], listener.port)

    def _fresh(self, listener: Listener, now: float) -> ProbeResult | None:
        hit = self._cache.get(listener.key())
        if hit is None or hit.inode != listener.inode:
            return None
        ttl = self.unknown_ttl if hit.result.verdict is Tls.UNKNOWN else self.cache_ttl
        return hit.result if now - hit.at < ttl else None

    def _plan(
        self, items: list[Listener], namespaces: Iterable[NetNamespace], now: float
    ) -> tuple[dict[int, ProbeResult], list[tuple[int, Target]]]:
        """Cached or impossible results now; the rest to probe."""
        by_id = {ns.id: ns for ns in namespaces}
        results: dict[int, ProbeResult] = {}
        todo: list[tuple[int, Target]] = []
        for i, li in enumerate(items):
            if li.protocol != "tcp":
                continue
            cached = self._fresh(li, now)
            if cached is not None:
                results[i] = cached
                continue
            t = self.target(li, by_id.get(li.netns))
            if isinstance(t, ProbeResult):
                results[i] = replace(t, probed_at=self._wall())
            else:
                todo.append((i, t))
        return results, todo

    async def _probe_one(self, t: Target) -> ProbeResult:
        try:
            r = await self.probe.run(t)
        except Exception as e:  # a probe never breaks the round
            r = ProbeResult(Tls.UNKNOWN, reason=f"probe error: {type(e).__name__}")
        return replace(r, probed_at=self._wall())

    async def probe_all(self, listeners: Iterable[Listener], namespaces: Iterable[NetNamespace]) -> list[Listener]:
        """Each TCP listener with its ProbeResult (UDP listeners are returned as they are)."""
        items = list(listeners)
        now = self._clock()
        results, todo = self._plan(items, namespaces, now)
        sem = asyncio.Semaphore(self.concurrency)
        interval = 1.0 / self.rate if self.rate > 0 else 0.0
        next_slot = [time.perf_counter()]

        async def one(i: int, t: Target) -> None:
            async with sem:
                slot = next_slot[0]
                next_slot[0] = max(slot, time.perf_counter()) + interval
                delay = slot - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                results[i] = r = await self._probe_one(t)
                # cached at once: a round cut short by the source's timeout still makes progress
                self._cache[items[i].key()] = _Cached(items[i].inode, r, now)

        start = time.perf_counter()
        await asyncio.gather(*(one(i, t) for i, t in todo))
        self.last_round_seconds = time.perf_counter() - start
        self.last_round_probes = len(todo)
        self.probes_total += len(todo)
        seen = set()
        out = []
        for i, li in enumerate(items):
            r = results.get(i)
            if r is None:
                out.append(li)
                continue
            key = li.key()
            seen.add(key)
            hit = self._cache.get(key)
            if hit is None or hit.result is not r:
                self._cache[key] = _Cached(li.inode, r, now)
            out.append(replace(li, probe=r))
        for key in set(self._cache) - seen:  # bounded: only current listeners are remembered
            del self._cache[key]
        return out
