"""TLS probing at node scale: 1,000 listeners mixing TLS (1.2, 1.3, mTLS), plaintext and silent servers.

    .venv/bin/python bench/tlsprobe.py [--listeners 1000] [--concurrency N] [--timeout S]

The servers run in a child process on 127.0.0.1 (one asyncio loop, one socket each); the probe runs here
with ztmon's defaults unless overridden. Prints the wall time of one round, the misclassifications
(expected verdict and protocol per server kind), the second round (all cached) and the child's CPU.
Targets (issue #3): 1,000 listeners < 3 s, 0 misclassified.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from ztmon.model.network import Listener
from ztmon.settings import ProbeConfig
from ztmon.sources import tlsprobe

ROOT = Path(__file__).resolve().parent.parent
SERVERS = ROOT / "tests" / "unit" / "fixtures" / "netservers.py"
# The mix: (kind, share). Silent servers cost a whole timeout each: they dominate the round.
MIX = (("tls13", 0.2), ("tls12", 0.1), ("mtls13", 0.05), ("mtls12", 0.05), ("http", 0.25), ("redis", 0.1),
       ("smtp", 0.05), ("silent", 0.2))  # fmt: skip

CHILD = """
import asyncio, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("netservers", sys.argv[1])
ns = importlib.util.module_from_spec(spec); spec.loader.exec_module(ns)
from pathlib import Path
async def main():
    plan = json.loads(sys.argv[3])
    servers, out = [], []
    for kind in plan:
        s = await ns.start(kind, "127.0.0.1", 0, Path(sys.argv[2]))
        servers.append(s); out.append([kind, s.sockets[0].getsockname()[1]])
    print(json.dumps(out), flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def load_servers_module():
    spec = importlib.util.spec_from_file_location("netservers", SERVERS)
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def probe_round(prober: tlsprobe.Prober, listeners: list[Listener]) -> tuple[float, list[Listener]]:
    start = time.perf_counter()
    out = await prober.probe_all(listeners, [])
    return time.perf_counter() - start, out


def print_results(plan, args, took, again, out, kinds, wrong, server_cpu, own_cpu) -> None:  # noqa: PLR0917
    mix = ", ".join(f"{k} {n}" for k, n in Counter(plan).items())
    verdicts = Counter(li.tls.value for li in out)
    print(f"listeners: {len(plan)} ({mix})")
    print(f"settings: concurrency {args.concurrency}, timeout {args.timeout} s, banner wait {args.banner_wait} s, "
          f"rate {args.rate}/s")  # fmt: skip
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"\n{'round':<30}{'time':>10}")
    print(f"{'first (all probed)':<30}{took:>9.3f}s   verdicts {dict(verdicts)}")
    print(f"{'second (cached)':<30}{again:>9.3f}s")
    print(f"CPU during the first round: servers {server_cpu:.2f} s, ztmon's probe {own_cpu:.2f} s")
    by_kind: dict[str, list[float]] = {}
    for li in out:
        by_kind.setdefault(kinds[li.port], []).append(li.probe.duration_seconds if li.probe else 0.0)
    print("probe duration by kind (median / max): " + ", ".join(
        f"{k} {sorted(v)[len(v) // 2]:.2f}/{max(v):.2f}" for k, v in by_kind.items()
    ))  # fmt: skip
    print(f"misclassified: {sum(wrong.values())}")
    for (kind, got, reason), n in wrong.most_common(10):
        print(f"  {n} x {kind}: got {got} ({reason})")


def main() -> int:
    defaults = ProbeConfig()
    ap = argparse.ArgumentParser()
    ap.add_argument("--listeners", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=defaults.concurrency)
    ap.add_argument("--timeout", type=float, default=defaults.timeout_seconds)
    ap.add_argument("--banner-wait", type=float, default=defaults.banner_wait_seconds)
    ap.add_argument("--rate", type=float, default=defaults.rate_per_second)
    ap.add_argument("--server-processes", type=int, default=4)
    args = ap.parse_args()
    servers = load_servers_module()
    plan: list[str] = []
    for kind, share in MIX:
        plan += [kind] * round(args.listeners * share)
    plan = plan[: args.listeners]
    with tempfile.TemporaryDirectory(prefix="ztmon-bench-tls-") as tmp:
        servers.write_certs(Path(tmp), cn="bench.ztmon.test", days=30)
        # Several server processes, as on a node: one loop doing 400 server-side handshakes would be the
        # bottleneck being measured.
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(SERVERS), tmp, json.dumps(plan[i :: args.server_processes])],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(args.server_processes)
        ]
        try:
            ports = []
            for child in children:
                if child.stdout is None:
                    raise RuntimeError("no pipe to the server process")
                ports += json.loads(child.stdout.readline())
            own = os.readlink("/proc/self/ns/net")  # noqa: PTH115
            listeners = [Listener(own, "tcp", "127.0.0.1", port, inode=port) for _, port in ports]
            kinds = {port: kind for kind, port in ports}
            prober = tlsprobe.Prober(
                probe=tlsprobe.Probe(timeout=args.timeout, banner_wait=args.banner_wait),
                own_netns=own,
                can_enter=False,
                ns_path=lambda _ns: "",
                concurrency=args.concurrency,
                rate_per_second=args.rate,
            )
            cpu0, own0 = sum(cpu_seconds(c.pid) for c in children), time.process_time()
            took, out = asyncio.run(probe_round(prober, listeners))
            server_cpu = sum(cpu_seconds(c.pid) for c in children) - cpu0
            own_cpu = time.process_time() - own0
            wrong = Counter()
            for li in out:
                expected = servers.EXPECTED[kinds[li.port]]
                got = (li.tls.value, li.probe.protocol if li.probe else "")
                if got != expected:
                    wrong[(kinds[li.port], got, li.probe.reason if li.probe else "")] += 1
            again, _ = asyncio.run(probe_round(prober, out))
        finally:
            for child in children:
                child.kill()
                child.wait()
                if child.stdout is not None:
                    child.stdout.close()
    print_results(plan, args, took, again, out, kinds, wrong, server_cpu, own_cpu)
    ok = took < 3 and not wrong
    print(f"\ntarget: < 3 s and 0 misclassified: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
