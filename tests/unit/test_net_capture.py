"""Passive capture, pure parts: the classic BPF program's shape, signatures and packet parsing."""

from __future__ import annotations

import socket
import struct

import pytest

from ztmon.sources import capture

SIGS = capture.parse_signatures(())


def ipv4_tcp(payload: bytes, *, src="10.0.0.1", dst="10.0.0.2", sport=40000, dport=8080) -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, 0x18, 65535, 0, 0)
    total = 20 + len(tcp) + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return ip + tcp + payload


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", ("10.0.0.2", 8080, "http")),
        (b"POST /login HTTP/1.1\r\n", ("10.0.0.2", 8080, "http")),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", ("10.0.0.2", 8080, "http2")),
        (b"HTTP/1.1 200 OK\r\n", ("10.0.0.1", 40000, "http")),  # a response counts for its server
        (b"\x16\x03\x01\x02\x00\x01", None),
        (b"GETX", None),
        (b"", None),
    ],
    ids=["get", "post", "h2c", "response", "tls", "not-a-method", "empty"],
)
def test_parse_packet(payload, expected):
    assert capture.parse_packet(ipv4_tcp(payload), SIGS) == expected


@pytest.mark.parametrize("data", [b"", b"\x45" * 10, b"\x60" + b"\x00" * 59, ipv4_tcp(b"GET ")[:30]])
def test_parse_packet_odd_input(data):
    assert capture.parse_packet(data, SIGS) is None


def test_configured_signatures():
    sigs = capture.parse_signatures(["redis=*1\\r\\n", "+OK "])
    assert (b"*1\r\n", "redis") in sigs
    assert (b"+OK ", "custom") in sigs
    assert capture.parse_packet(ipv4_tcp(b"*1\r\n$4\r\nPING\r\n", dport=6379), sigs) == ("10.0.0.2", 6379, "redis")


def test_signature_must_be_two_bytes():
    with pytest.raises(ValueError, match="2 bytes"):
        capture.parse_signatures(["x"])


def test_bpf_program_shape():
    prog = capture.bpf_program((s for s, _ in SIGS), 128)
    assert prog[-1] == (capture.BPF_RET | capture.BPF_K, 0, 0, 128)  # accept: snaplen
    assert prog[-2] == (capture.BPF_RET | capture.BPF_K, 0, 0, 0)  # reject
    for i, (code, jt, jf, _) in enumerate(prog):
        if code & 0x07 == capture.BPF_JMP:
            assert i + 1 + jt < len(prog)
            assert i + 1 + jf < len(prog)
    # every 4-byte prefix of the HTTP signatures is compared once
    compared = {k for code, _, _, k in prog if code == capture.BPF_JMP | capture.BPF_JEQ | capture.BPF_K}
    assert int.from_bytes(b"GET ", "big") in compared
    assert int.from_bytes(b"HTTP", "big") in compared


def test_bpf_program_rejects_too_many_signatures():
    with pytest.raises(ValueError, match="too many"):
        capture.bpf_program([i.to_bytes(4, "big") for i in range(200)], 128)


def test_flow_table_is_bounded():
    cap = capture.Capture(signatures=SIGS, max_packets_per_second=10, snaplen=128)
    assert cap.snapshot() == ()
    assert capture.MAX_FLOWS == 10_000
