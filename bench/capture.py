"""Passive capture's CPU under load: ~20k packets/s of TLS records over a veth, then plaintext HTTP.

    sudo .venv/bin/python bench/capture.py [--seconds 5] [--pps 20000]

Two namespaces joined by a veth (10.213.250.1 <-> .2, made here and deleted at the end). A sender in the
first streams small TLS application-data records (one TCP segment each, TCP_NODELAY) to a sink in the
second; ztmon's capture (AF_PACKET + classic BPF) runs in its own process inside the second namespace.
Reported: packets actually carried (veth counters), what reached Python, and the capture process's CPU
as a share of one core. Phase 2 sends plaintext HTTP requests at the same rate: the packets-per-second
budget caps what Python handles. Target (issue #3): < 5 % of one core at 20k packets/s of TLS.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
import uuid

RUN = uuid.uuid4().hex[:4]
NS_A, NS_B = f"ztcp{RUN}a", f"ztcp{RUN}b"
VA, VB = f"ztcpa{RUN}", f"ztcpb{RUN}"
ADDR_A, ADDR_B = "10.213.250.1", "10.213.250.2"

SINK = """
import socket
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("0.0.0.0", 8443)); srv.listen(4)
print("ready", flush=True)
while True:
    c, _ = srv.accept()
    while c.recv(1 << 16):
        pass
"""

SENDER = """
import socket, sys, time
pps, seconds, payload = int(sys.argv[1]), float(sys.argv[2]), bytes.fromhex(sys.argv[3])
s = socket.create_connection((sys.argv[4], 8443)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
batch = max(1, pps // 1000)
end = time.monotonic() + seconds
nxt = time.monotonic()
while time.monotonic() < end:
    for _ in range(batch):
        s.send(payload)
    nxt += batch / pps
    delay = nxt - time.monotonic()
    if delay > 0:
        time.sleep(delay)
"""

CAPTURER = """
import asyncio, sys, time, os
from ztmon.sources.capture import CaptureSource
async def main():
    src = CaptureSource(netns=sys.argv[1], max_packets_per_second=int(sys.argv[3]))
    await src.refresh()
    print("ready", flush=True)
    task = asyncio.create_task(src.watch(lambda: None))
    await asyncio.sleep(float(sys.argv[2]))
    task.cancel()
    print(src.capture.packets, src.capture.over_budget, flush=True)
    await src.close()
asyncio.run(main())
"""

TLS_RECORD = bytes.fromhex("170303002a") + os.urandom(42)
HTTP_REQUEST = b"GET /index.html HTTP/1.1\r\nHost: b\r\n\r\n"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def rx_packets() -> int:
    out = subprocess.run(["ip", "-n", NS_B, "-s", "-o", "link", "show", VB], capture_output=True, text=True, check=True)
    fields = out.stdout.split("RX:")[1].split()
    # "... RX: bytes packets errors ..." then the numbers: find the first line of counters
    nums = [f for f in fields if f.isdigit()]
    return int(nums[1])


def cpu_of(pid: int) -> float:
    stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: PTH123, SIM115
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def phase(name: str, payload: bytes, pps: int, seconds: float, budget: int) -> None:
    cap = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            NS_B,
            sys.executable,
            "-c",
            CAPTURER,
            f"/run/netns/{NS_B}",
            str(seconds + 1),
            str(budget),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert cap.stdout is not None  # noqa: S101
    cap.stdout.readline()
    time.sleep(0.3)
    pid = int(subprocess.run(["pgrep", "-n", "-f", "CaptureSource"], capture_output=True, text=True, check=True).stdout)
    rx0, cpu0, t0 = rx_packets(), cpu_of(pid), time.monotonic()
    subprocess.run(
        ["ip", "netns", "exec", NS_A, sys.executable, "-c", SENDER, str(pps), str(seconds), payload.hex(), ADDR_B],
        check=True,
        timeout=seconds + 30,
    )
    rx1, cpu1, t1 = rx_packets(), cpu_of(pid), time.monotonic()
    seen, over = cap.stdout.read().split()
    cap.wait()
    rate = (rx1 - rx0) / (t1 - t0)
    share = (cpu1 - cpu0) / (t1 - t0) * 100
    print(f"{name:<28}{rate:>12,.0f}{int(seen):>14,}{share:>12.2f} %   budget hits: {over}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--pps", type=int, default=20000)
    ap.add_argument("--budget", type=int, default=2000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root")
        return 2
    made: list[str] = []
    sink = None
    try:
        for ns in (NS_A, NS_B):
            ip("netns", "add", ns)
            made.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("link", "add", VA, "netns", NS_A, "type", "veth", "peer", "name", VB, "netns", NS_B)
        ip("-n", NS_A, "addr", "add", f"{ADDR_A}/24", "dev", VA)
        ip("-n", NS_B, "addr", "add", f"{ADDR_B}/24", "dev", VB)
        ip("-n", NS_A, "link", "set", VA, "up")
        ip("-n", NS_B, "link", "set", VB, "up")
        sink = subprocess.Popen(
            ["ip", "netns", "exec", NS_B, sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True
        )
        assert sink.stdout is not None  # noqa: S101
        sink.stdout.readline()
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; budget {args.budget} packets/s\n")
        print(f"{'traffic':<28}{'packets/s':>12}{'to Python':>14}{'capture CPU':>14}")
        phase("TLS records", TLS_RECORD, args.pps, args.seconds, args.budget)
        phase("plaintext HTTP requests", HTTP_REQUEST, args.pps, args.seconds, args.budget)
        print("\ntarget: TLS at 20k packets/s costs < 5 % of one core (see the first line)")
        return 0
    finally:
        if sink is not None:
            sink.kill()
            sink.wait()
        for ns in made:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False).stdout
            for p in pids.split():
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(p), 9)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        print(f"cleanup: {len(made)} namespaces deleted")


if __name__ == "__main__":
    sys.exit(main())
