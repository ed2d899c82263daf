"""Passive capture on a real veth: an HTTP request is counted and attributed, a TLS session is not seen."""

from __future__ import annotations

import sys
import time

from ztmon.model import network
from ztmon.sources import capture, procfs, sockdiag

CLIENT = """
import socket, ssl, sys
host = sys.argv[1]
with socket.create_connection((host, 8080), timeout=5) as s:
    s.sendall(b"GET /plain HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"); s.recv(100)
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
for _ in range(3):
    with socket.create_connection((host, 8443), timeout=5) as raw, ctx.wrap_socket(raw) as s:
        s.sendall(b"GET /secret HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"); s.recv(100)
"""


def _drain(cap: capture.Capture, seconds: float = 1.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        cap.read_ready()
        time.sleep(0.02)


async def test_http_counted_tls_ignored_and_attributed(veth_pair, certdir):
    client, _, server, addr = veth_pair()
    server.server("http", "0.0.0.0", 8080, certdir)
    server.server("tls13", "0.0.0.0", 8443, certdir)
    src = capture.CaptureSource(netns=server.path)
    try:
        await src.refresh()
        done = client.run(sys.executable, "-c", CLIENT, addr)
        assert done.returncode == 0, done.stderr
        _drain(src.capture)
        await src.refresh()
        flows = src.part().flows
    finally:
        await src.close()
    assert {(f.dst_address, f.dst_port, f.protocol) for f in flows} == {(addr, 8080, "http")}
    (http,) = flows
    assert http.packets == 1  # the request; the response leaves the namespace (outgoing: not counted twice)
    assert src.capture.packets == 1  # the kernel filter passed nothing else, TLS included

    worker = sockdiag.NetnsWorker()
    try:
        inv = procfs.Scanner(proc_root=procfs.Path("/proc"), worker=worker).scan()
    finally:
        worker.close()
    (attributed,) = network.attribute_flows(flows, tuple(inv.namespaces), tuple(inv.listeners))
    assert attributed.netns == server.netns_id()
    assert attributed.port == 8080


async def test_budget_bounds_what_reaches_python(veth_pair, certdir):
    client, _, server, addr = veth_pair()
    server.server("http", "0.0.0.0", 8080, certdir)
    src = capture.CaptureSource(netns=server.path, max_packets_per_second=5)
    try:
        await src.refresh()
        burst = "import socket,sys\nfor _ in range(20):\n    s=socket.create_connection((sys.argv[1],8080))\n"
        burst += "    s.sendall(b'GET / HTTP/1.1\\r\\n\\r\\n'); s.recv(100); s.close()\n"
        assert client.run(sys.executable, "-c", burst, addr).returncode == 0
        assert src.capture.read_ready() is False  # budget spent within this second
        assert src.capture.packets == 5
    finally:
        await src.close()
