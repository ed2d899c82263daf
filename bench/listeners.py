"""Listener inventory at node scale: 200 network namespaces x 50 listeners (10,000), four ways, one run.

    sudo .venv/bin/python bench/listeners.py [--namespaces 200] [--per-ns 50] [--repeat 3]

1. ztmon   : the procfs source's full inventory (/proc walk, cgroups, sock_diag per namespace, socket
             inode -> pid, postures, addresses): `procfs.Scanner(...).scan()`.
2. floor   : a minimal sock_diag loop over the same namespaces: setns, netlink socket, back, dump
             TCP LISTEN + UDP, v4 + v6. Nothing else.
3. ss loop : `nsenter -t PID -n ss -ltnuH` per namespace (what a shell script would do).
4. /proc   : ztmon with `listing="proc"` next to a plain read (no parsing) of the same /proc/<pid>/net
             files, one pid per namespace.

Targets (issue #3): ztmon <= 1.3x the floor, >= 5x faster than the ss loop; the /proc fallback no slower
than the plain read of its files. Every namespace is named ztbl<run>-<n> and deleted at the end (also on
error or Ctrl-C); the holder processes are killed by process group.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

from ztmon.sources import procfs, sockdiag

RUN = uuid.uuid4().hex[:4]
LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def setns_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if LIBC.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), path)
    finally:
        os.close(fd)


def holder(names: list[str], per_ns: int, ready_fd: int) -> None:
    """Child process body: per namespace, enter it, open the listeners, fork a child that keeps them."""
    home = "/proc/self/ns/net"
    home_fd = os.open(home, os.O_RDONLY)
    for name in names:
        setns_path(f"/run/netns/{name}")
        socks = []
        for i in range(per_ns):
            fam = socket.AF_INET6 if i % 5 == 0 else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 10000 + i))
            s.listen(1)
            socks.append(s)
        if os.fork() == 0:
            os.close(ready_fd)
            signal.pause()
            os._exit(0)
        for s in socks:
            s.close()
    LIBC.setns(home_fd, CLONE_NEWNET)
    os.write(ready_fd, b"ready\n")
    signal.pause()


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def namespace_pids(names: list[str]) -> list[int]:
    out = []
    for name in names:
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=True).stdout.split()
        out.append(int(pids[0]))
    return out


def _bare_dump(sock: socket.socket) -> list[tuple[str, int, int]]:
    """The obvious plain-Python INET_DIAG dump: TCP LISTEN and UDP unconnected, v4 and v6."""
    out = []
    for proto, states in ((socket.IPPROTO_TCP, 1 << 10), (socket.IPPROTO_UDP, 1 << 7)):
        for family in (socket.AF_INET, socket.AF_INET6):
            req = struct.pack("=BBBBI", family, proto, 0, 0, states) + bytes(48)
            sock.send(struct.pack("=IHHII", 16 + len(req), 20, 0x301, 1, 0) + req)
            done = False
            while not done:
                data = sock.recv(1 << 17)
                off = 0
                while off + 16 <= len(data):
                    length, mtype = struct.unpack_from("=IH", data, off)
                    if mtype in (2, 3):
                        done = True
                        break
                    body = off + 16
                    fam = data[body]
                    port = int.from_bytes(data[body + 4 : body + 6], "big")
                    raw = data[body + 8 : body + 24]
                    addr = socket.inet_ntop(fam, raw[:4] if fam == socket.AF_INET else raw)
                    (inode,) = struct.unpack_from("=I", data, body + 68)
                    out.append((addr, port, inode))
                    off += (length + 3) & ~3
    return out


def floor(pids: list[int]) -> int:
    """Our own namespace, then each other one: setns in, make the socket, setns back, dump."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4) as s:
        n = len(_bare_dump(s))
    try:
        for pid in pids:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            LIBC.setns(fd, CLONE_NEWNET)
            os.close(fd)
            s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)
            LIBC.setns(home, CLONE_NEWNET)
            with s:
                n += len(_bare_dump(s))
    finally:
        os.close(home)
    return n


def ss_loop(pids: list[int]) -> int:
    n = 0
    for pid in pids:
        out = subprocess.run(
            ["nsenter", "-t", str(pid), "-n", "ss", "-ltnuH"], capture_output=True, text=True, check=True
        ).stdout
        n += len(out.splitlines())
    return n


def plain_read(pids: list[int]) -> int:
    n = 0
    for pid in pids:
        for name in ("tcp", "tcp6", "udp", "udp6"):
            try:
                with open(f"/proc/{pid}/net/{name}", "rb") as f:  # noqa: PTH123
                    n += len(f.read())
            except OSError:
                continue
    return n


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def measure(pids: list[int], repeat: int, *, profile: bool) -> dict[str, object]:
    worker = sockdiag.NetnsWorker()
    scanner = procfs.Scanner(proc_root=Path("/proc"), worker=worker, listing="sock_diag")
    r: dict[str, object] = {}
    r["cold"], _ = timed(scanner.scan, 1)  # first scan: full fd walk for socket owners
    r["ours"], inv = timed(scanner.scan, repeat)  # steady state: owners cached by socket inode
    if profile:
        import cProfile  # noqa: PLC0415
        import pstats  # noqa: PLC0415

        prof = cProfile.Profile()
        prof.runcall(scanner.scan)
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    worker.close()
    r["ours_n"] = len(inv.listeners)  # type: ignore[attr-defined]
    r["n_ns"] = len({li.netns for li in inv.listeners})  # type: ignore[attr-defined]
    # The floor dumps the same namespaces ztmon found (the bench's and whatever else runs on the node).
    own = os.readlink("/proc/self/ns/net")  # noqa: PTH115
    node_pids = [ns.pid for ns in inv.namespaces if ns.id.startswith("net:") and ns.id != own]  # type: ignore[attr-defined]
    r["floor"], r["floor_n"] = timed(lambda: floor(node_pids), repeat)
    r["ss"], r["ss_n"] = timed(lambda: ss_loop(pids), 1)
    fallback = procfs.Scanner(proc_root=Path("/proc"), worker=None, listing="proc")
    r["proc"], proc_inv = timed(fallback.scan, 1)
    same_files = [ns.pid for ns in proc_inv.namespaces]  # type: ignore[attr-defined]
    r["read"], _ = timed(lambda: plain_read(same_files), 1)
    r["same"] = {li.inode for li in inv.listeners} == {li.inode for li in proc_inv.listeners}  # type: ignore[attr-defined]
    r["proc_n"] = len(proc_inv.listeners)  # type: ignore[attr-defined]
    return r


def report(r: dict[str, object]) -> None:
    t = {k: float(v) for k, v in r.items() if isinstance(v, float)}
    print(f"\n{'method':<34}{'time':>10}{'listeners':>12}   note")
    print(f"{'ztmon inventory, first scan':<34}{t['cold']:>9.3f}s{r['ours_n']:>12}   incl. full /proc/*/fd walk")
    print(
        f"{'ztmon inventory (sock_diag)':<34}{t['ours']:>9.3f}s{r['ours_n']:>12}   whole node: {r['n_ns']} namespaces"
    )
    print(f"{'floor: bare sock_diag loop':<34}{t['floor']:>9.3f}s{r['floor_n']:>12}   same namespaces")
    print(f"{'nsenter ss -ltnuH loop':<34}{t['ss']:>9.3f}s{r['ss_n']:>12}")
    print(f"{'ztmon /proc fallback':<34}{t['proc']:>9.3f}s{r['proc_n']:>12}   same sockets as sock_diag: {r['same']}")
    print(f"{'plain read of those /proc files':<34}{t['read']:>9.3f}s{'':>12}   no parsing")
    checks = [
        ("ztmon / floor", t["ours"] / t["floor"], "x", "<= 1.3x", t["ours"] / t["floor"] <= 1.3),
        ("ztmon first scan / floor", t["cold"] / t["floor"], "x", "(information)", True),
        ("ss loop / ztmon", t["ss"] / t["ours"], "x", ">= 5x", t["ss"] / t["ours"] >= 5),
        ("/proc fallback / plain read", t["proc"] / t["read"], "x", "<= 1.0x", t["proc"] / t["read"] <= 1.0),
    ]
    print()
    for name, value, unit, target, ok in checks:
        print(f"{name:<30} = {value:5.2f}{unit}  target {target:<14} {'PASS' if ok else 'FAIL'}")


def cleanup(holder_pid: int, made: list[str]) -> None:
    if holder_pid:
        with contextlib.suppress(OSError):
            os.killpg(holder_pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.waitpid(holder_pid, 0)
    for name in made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout.split()
    left = [n for n in listed if n.startswith(f"ztbl{RUN}")]
    print(f"cleanup: {len(made)} namespaces deleted, {len(left)} left")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--namespaces", type=int, default=200)
    ap.add_argument("--per-ns", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="print where ztmon's inventory spends its time")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, setns)")
        return 2
    names = [f"ztbl{RUN}-{i}" for i in range(args.namespaces)]
    made: list[str] = []
    holder_pid = 0
    r, w = os.pipe()
    try:
        t0 = time.perf_counter()
        for name in names:
            ip("netns", "add", name)
            made.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        holder_pid = os.fork()
        if holder_pid == 0:
            os.setsid()
            os.close(r)
            try:
                holder(names, args.per_ns, w)
            finally:
                os._exit(1)
        os.close(w)
        with os.fdopen(r) as ready:
            if ready.readline().strip() != "ready":
                print("holder failed")
                return 1
        pids = namespace_pids(names)
        print(f"set-up: {len(names)} namespaces x {args.per_ns} listeners in {time.perf_counter() - t0:.1f} s")
        print(f"load average before measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        report(measure(pids, args.repeat, profile=args.profile))
        return 0
    finally:
        cleanup(holder_pid, made)


if __name__ == "__main__":
    sys.exit(main())
