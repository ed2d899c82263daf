"""Passive plaintext detection (opt-in): an AF_PACKET socket whose classic BPF program, run in the kernel,
passes only TCP segments whose payload starts with a plaintext signature (HTTP methods, `HTTP/`, the
HTTP/2 cleartext preface, configured prefixes). TLS and everything else is dropped in the kernel, so
Python sees only candidates; a packets-per-second budget bounds the rest: past it the reader pauses
for the remainder of the second and the kernel drops (and counts) what does not fit its buffer.

Flows are kept as (destination address, port, protocol) -> packets, bounded in number; the pipeline
joins them to listeners and containers (model.network.attribute_flows). IPv4 only: IPv6 is a known gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Iterable

import structlog

from ztmon.model.inventory import Node, SourcePart
from ztmon.model.network import PlaintextFlow
from ztmon.sources import sockdiag
from ztmon.sources.base import Notify, Source

log = structlog.get_logger("ztmon.sources.capture")

ETH_P_IP = 0x0800
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
SKF_AD_OFF = -0x1000
SKF_AD_PKTTYPE = 4
MAX_FLOWS = 10_000  # distinct (destination, port, protocol) kept; more go to an overflow counter

# Classic BPF opcodes (linux/filter.h)
BPF_LD, BPF_LDX, BPF_ALU, BPF_JMP, BPF_RET, BPF_MISC = 0x00, 0x01, 0x04, 0x05, 0x06, 0x07
BPF_W, BPF_H, BPF_B = 0x00, 0x08, 0x10
BPF_ABS, BPF_IND, BPF_MSH = 0x20, 0x40, 0xA0
BPF_ADD, BPF_SUB, BPF_LSH, BPF_RSH, BPF_AND = 0x00, 0x10, 0x60, 0x70, 0x50
BPF_JEQ, BPF_JGE, BPF_JSET = 0x10, 0x30, 0x40
BPF_K, BPF_X = 0x00, 0x08
BPF_TAX = 0x00

# Prefix -> protocol name. The kernel compares the first 4 bytes (or 2/3 with a mask); Python re-checks
# the whole prefix.
HTTP_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"GET ", "http"),
    (b"POST ", "http"),
    (b"PUT ", "http"),
    (b"HEAD ", "http"),
    (b"DELETE ", "http"),
    (b"OPTIONS ", "http"),
    (b"PATCH ", "http"),
    (b"CONNECT ", "http"),
    (b"TRACE ", "http"),
    (b"HTTP/1.", "http"),
    (b"PRI * HTTP/2.0", "http2"),
)

Insn = tuple[int, int, int, int]  # code, jt, jf, k


def parse_signatures(extra: Iterable[str]) -> tuple[tuple[bytes, str], ...]:
    """Configured signatures: "name=prefix" or "prefix" (named "custom"); \\r \\n escapes; >= 2 bytes."""
    out = list(HTTP_SIGNATURES)
    for raw in extra:
        name, sep, prefix = raw.partition("=")
        if not sep:
            name, prefix = "custom", raw
        data = prefix.replace("\\r", "\r").replace("\\n", "\n").encode("latin-1", "replace")
        if len(data) < 2:
            raise ValueError(f"capture signature {raw!r}: at least 2 bytes")
        out.append((data, name or "custom"))
    return tuple(out)


def bpf_program(signatures: Iterable[bytes], snaplen: int) -> list[Insn]:
    """IPv4 TCP, not fragmented, not sent by this host, payload starting with one of `signatures`."""
    sigs = list(dict.fromkeys(s[:4] for s in signatures))
    body: list[tuple[int, int, str, str]] = []  # code, k, jump-if-true target, jump-if-false ("" = next)

    def add(code: int, k: int = 0, jt: str = "", jf: str = "") -> None:
        body.append((code, k, jt, jf))

    add(BPF_LD | BPF_W | BPF_ABS, (SKF_AD_OFF + SKF_AD_PKTTYPE) & 0xFFFFFFFF)
    add(BPF_JMP | BPF_JEQ | BPF_K, PACKET_OUTGOING, jt="reject")  # each packet once (lo shows both ways)
    add(BPF_LD | BPF_B | BPF_ABS, 9)
    add(BPF_JMP | BPF_JEQ | BPF_K, socket.IPPROTO_TCP, jf="reject")
    add(BPF_LD | BPF_H | BPF_ABS, 6)
    add(BPF_JMP | BPF_JSET | BPF_K, 0x1FFF, jt="reject")  # a later fragment carries no TCP header
    add(BPF_LDX | BPF_B | BPF_MSH, 0)  # X = IP header length
    add(BPF_LD | BPF_B | BPF_IND, 12)  # TCP data offset byte
    add(BPF_ALU | BPF_RSH | BPF_K, 4)
    add(BPF_ALU | BPF_LSH | BPF_K, 2)  # A = TCP header length
    add(BPF_ALU | BPF_ADD | BPF_X, 0)
    add(BPF_MISC | BPF_TAX, 0)  # X = payload offset
    add(BPF_LD | BPF_H | BPF_ABS, 2)  # IP total length
    add(BPF_ALU | BPF_SUB | BPF_X, 0)
    add(BPF_JMP | BPF_JGE | BPF_K, 2, jf="reject")  # payload of at least 2 bytes
    for sig in sigs:
        if len(sig) >= 4:
            add(BPF_LD | BPF_W | BPF_IND, 0)
            add(BPF_JMP | BPF_JEQ | BPF_K, int.from_bytes(sig[:4], "big"), jt="accept")
        elif len(sig) == 3:
            add(BPF_LD | BPF_W | BPF_IND, 0)
            add(BPF_ALU | BPF_AND | BPF_K, 0xFFFFFF00)
            add(BPF_JMP | BPF_JEQ | BPF_K, int.from_bytes(sig + b"\0", "big"), jt="accept")
        else:
            add(BPF_LD | BPF_H | BPF_IND, 0)
            add(BPF_JMP | BPF_JEQ | BPF_K, int.from_bytes(sig, "big"), jt="accept")
    reject = len(body)
    accept = reject + 1
    prog: list[Insn] = []
    for i, (code, k, jt_name, jf_name) in enumerate(body):
        jt = {"reject": reject, "accept": accept}.get(jt_name, i + 1) - i - 1
        jf = {"reject": reject, "accept": accept}.get(jf_name, i + 1) - i - 1
        if not (0 <= jt <= 255 and 0 <= jf <= 255):
            raise ValueError("too many capture signatures for one BPF program")
        prog.append((code, jt, jf, k))
    prog.append((BPF_RET | BPF_K, 0, 0, 0))
    prog.append((BPF_RET | BPF_K, 0, 0, snaplen))
    return prog


def attach(sock: socket.socket, prog: list[Insn]) -> None:
    import ctypes  # noqa: PLC0415

    raw = b"".join(struct.pack("HBBI", *insn) for insn in prog)
    buf = ctypes.create_string_buffer(raw)
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def parse_packet(data: bytes, signatures: tuple[tuple[bytes, str], ...]) -> tuple[str, int, str] | None:
    """(server address, server port, protocol) of an IPv4 TCP candidate; a response counts for its source."""
    if len(data) < 20 or data[0] >> 4 != 4:
        return None
    ihl = (data[0] & 0x0F) * 4
    if len(data) < ihl + 20:
        return None
    src = socket.inet_ntoa(data[12:16])
    dst = socket.inet_ntoa(data[16:20])
    sport, dport = struct.unpack_from("!HH", data, ihl)
    payload = data[ihl + ((data[ihl + 12] >> 4) * 4) :]
    for prefix, name in signatures:
        n = min(len(prefix), len(payload))  # the snap length may cut a long prefix: compare what we have
        if n >= min(len(prefix), 4) and payload[:n] == prefix[:n]:
            if prefix.startswith(b"HTTP/"):
                return src, sport, name  # a response: the server is its source
            return dst, dport, name
    return None


def _packet_socket() -> socket.socket:
    return socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, socket.htons(ETH_P_IP))


class Capture:
    """The socket and the counters; `read_ready` drains within the budget."""

    def __init__(
        self,
        *,
        signatures: tuple[tuple[bytes, str], ...],
        max_packets_per_second: int,
        snaplen: int,
    ) -> None:
        self.signatures = signatures
        self.budget = max_packets_per_second
        self.snaplen = snaplen
        self.sock: socket.socket | None = None
        self.flows: dict[tuple[str, int, str], int] = {}
        self.packets = 0
        self.over_budget = 0  # seconds in which the budget ran out
        self.overflow = 0
        self._window = 0.0
        self._in_window = 0
        self.changed = False

    def open(self, made: socket.socket | None = None, interface: str = "") -> socket.socket:
        sock = made or _packet_socket()
        try:
            attach(sock, bpf_program((s for s, _ in self.signatures), self.snaplen))
            if interface:
                sock.bind((interface, ETH_P_IP))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
            sock.settimeout(0.0)  # non-blocking
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        return sock

    def read_ready(self) -> bool:
        """Drain candidates; False when the budget for this second is spent (the caller pauses)."""
        sock = self.sock
        if sock is None:
            return True
        now = time.monotonic()
        if now - self._window >= 1.0:
            self._window = now
            self._in_window = 0
        while self._in_window < self.budget:
            try:
                data = sock.recv(self.snaplen)
            except (BlockingIOError, InterruptedError):
                return True
            self._in_window += 1
            self.packets += 1
            got = parse_packet(data, self.signatures)
            if got is None:
                continue
            if got in self.flows:
                self.flows[got] += 1
            elif len(self.flows) < MAX_FLOWS:
                self.flows[got] = 1
                self.changed = True
            else:
                self.overflow += 1
        self.over_budget += 1
        return False

    def snapshot(self) -> tuple[PlaintextFlow, ...]:
        return tuple(PlaintextFlow(a, p, proto, n) for (a, p, proto), n in sorted(self.flows.items()))

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class CaptureSource(Source):
    name = "capture"

    def __init__(
        self,
        *,
        netns: str = "",
        interface: str = "",
        signatures: Iterable[str] = (),
        max_packets_per_second: int = 2000,
        snaplen: int = 128,
    ) -> None:
        super().__init__()
        self._netns = netns
        self._interface = interface
        self.capture = Capture(
            signatures=parse_signatures(signatures), max_packets_per_second=max_packets_per_second, snaplen=snaplen
        )
        self._worker: sockdiag.NetnsWorker | None = None
        self._part = SourcePart(node=Node(name=""))

    def part(self) -> SourcePart:
        return self._part

    def _open(self) -> None:
        made = None
        if self._netns:
            self._worker = self._worker or sockdiag.NetnsWorker()
            made = self._worker.call_in(self._netns, _packet_socket)
        self.capture.open(made, self._interface)

    async def refresh(self) -> None:
        if self.capture.sock is None:
            await asyncio.to_thread(self._open)
        self._part = SourcePart(node=Node(name=""), flows=self.capture.snapshot())
        self.mark_up()

    async def watch(self, notify: Notify) -> None:
        """Read candidates on the loop (each is a few microseconds) and publish new flows."""
        if self.capture.sock is None:
            await asyncio.to_thread(self._open)
        sock = self.capture.sock
        assert sock is not None  # noqa: S101 - opened just above
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        fd = sock.fileno()

        def readable() -> None:
            if not self.capture.read_ready():
                loop.remove_reader(fd)  # budget spent: the kernel buffers or drops until the next second
                wake.set()
            if self.capture.changed:
                self.capture.changed = False
                self._part = SourcePart(node=Node(name=""), flows=self.capture.snapshot())
                notify()

        loop.add_reader(fd, readable)
        try:
            while True:
                await wake.wait()
                wake.clear()
                await asyncio.sleep(1.0)
                loop.add_reader(fd, readable)
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)

    async def close(self) -> None:
        self.capture.close()
        if self._worker is not None:
            await asyncio.to_thread(self._worker.close)
            self._worker = None
