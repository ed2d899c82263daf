"""Resident memory of `ztmon run` watching 100 containers, next to the import floor measured in the same run.

1. 100 running busybox containers with a mix of flags (added caps, host namespaces, host mounts, secret-looking
   env, read-only, hardened, Kubernetes labels) are started.
2. The real `ztmon run` is started; at /readyz + 2 s its VmRSS/VmHWM are read from /proc/<pid>/status
   (and once more after a few scrapes of /metrics, gzip /metrics and /findings).
3. Baselines, each a fresh `python` of the same venv that only imports and reads /proc/self/status:
   bare `python -c pass`; the import list of the brief; and the modules a running daemon really had loaded
   (captured with an atexit hook in a second daemon run).
4. Where the floor goes, per top-level package: `-X importtime` (median of 3) and the VmRSS growth of
   importing each module after its dependencies; and the resident pages per mapping (/proc/self/smaps).
Target: VmRSS < 60 MB (decimal, 60,000,000 bytes) with 100 containers.

    .venv/bin/python bench/rss.py [--containers 100] [--top 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import (
    IMAGE,
    PYTHON,
    ROOT,
    Containers,
    bench_containers,
    daemon,
    docker,
    ensure_image,
    http_get,
    proc_status,
)

TARGET_BYTES = 60_000_000
BRIEF_IMPORTS = (
    "ztmon.cli, ztmon.engine.build, ztmon.engine.http, ztmon.sources.docker, ztmon.sinks.prometheus, "
    "ztmon.sinks.log, apscheduler.schedulers.asyncio, detect_secrets"
)
FLAG_SETS: tuple[tuple[str, ...], ...] = (
    (),
    ("--cap-add", "SYS_ADMIN"),  # --privileged cannot start where the bounding set lacks a capability
    ("--read-only", "--tmpfs", "/tmp"),  # noqa: S108 - a tmpfs inside the container, not a host path
    ("--cap-add", "NET_ADMIN", "--cap-add", "SYS_PTRACE"),
    ("--cap-drop", "ALL", "--user", "1000:1000", "--security-opt", "no-new-privileges", "--read-only"),
    ("-e", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE", "-e", "DB_PASSWORD=bench-not-a-secret", "-e", "LOG_LEVEL=debug"),
    ("-v", "/etc:/host/etc:ro"),
    ("--pid", "host"),
    ("--ipc", "host"),
    ("--network", "host"),
    ("--label", "io.kubernetes.pod.namespace=bench", "--label", "io.kubernetes.container.name=app"),
    ("-e", "PASSWORD_FILE=/run/secrets/db", "-e", "TOKEN=${TOKEN}", "-e", "WORKERS=4", "-e", "DEBUG=false"),
)

# A fresh interpreter that imports the given modules, then reports its memory. Only builtins are used
# before the measurement so the probe adds nothing of its own to the figure.
# Modes "rss" and "heap" attribute memory to modules the way -X importtime attributes time: a meta-path
# hook wraps every loader's create_module/exec_module and records the growth of VmRSS (or of tracemalloc's
# traced Python heap) while the module itself runs, minus what its nested imports took (exclusive).
PROBE = r"""
import sys
mode = sys.argv[1]
def rss():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
names, blocked = [], []
if len(sys.argv) > 2:
    with open(sys.argv[2]) as fh:
        for line in fh:
            line = line.strip()
            if line.startswith("!"):
                blocked.append(line[1:])
            elif line:
                names.append(line)
for b in blocked:
    sys.modules.setdefault(b, None)
own, stack = {}, []
if mode in ("rss", "heap"):
    if mode == "heap":
        import tracemalloc
        tracemalloc.start()
        measure = lambda: tracemalloc.get_traced_memory()[0]
    else:
        measure = rss

    def timed(name, fn):
        def call(*args):
            stack.append([measure(), 0])
            try:
                return fn(*args)
            finally:
                start, children = stack.pop()
                grown = measure() - start
                own[name] = own.get(name, 0) + grown - children
                if stack:
                    stack[-1][1] += grown
        return call

    class Loader:
        def __init__(self, name, inner):
            self._name, self._inner = name, inner
            self.create_module = timed(name, inner.create_module)
            self.exec_module = timed(name, inner.exec_module)
        def __getattr__(self, attr):
            return getattr(self._inner, attr)

    class Finder:
        @staticmethod
        def find_spec(name, path, target=None):
            for finder in sys.meta_path:
                if finder is Finder or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                        spec.loader = Loader(name, spec.loader)
                    return spec
            return None

    sys.meta_path.insert(0, Finder)
failed = []
for n in names:
    if n in sys.modules:
        continue
    try:
        __import__(n)
    except BaseException as e:
        failed.append(n + ": " + type(e).__name__)
with open("/proc/self/status") as fh:
    status = fh.read()
smaps = {}
if mode == "smaps":
    path = None
    with open("/proc/self/smaps") as fh:
        for line in fh:
            head = line.split()
            if head and "-" in head[0] and not head[0].endswith(":"):
                path = head[5] if len(head) > 5 else "[anon]"
            elif line.startswith("Rss:"):
                smaps[path] = smaps.get(path, 0) + int(head[1])
import json
print(json.dumps({"status": status, "failed": failed, "smaps": smaps, "own": own, "n": len(sys.modules)}))
"""

# `ztmon run` with an atexit hook that writes the modules it had loaded (in import order; "!" = blocked).
CAPTURE = r"""
import atexit, sys
def _dump(path=sys.argv[1]):
    with open(path, "w") as fh:
        for name, mod in list(sys.modules.items()):
            fh.write(("!" if mod is None else "") + name + "\n")
atexit.register(_dump)
sys.argv = ["ztmon", "run"]
from ztmon.cli import main
main()
"""


def kb(status: dict[str, int], key: str) -> str:
    return f"{status[key] / 1024:7.1f} MiB ({status[key] * 1024 / 1e6:5.1f} MB)"


def parse_status(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.startswith(("Vm", "Rss")):
            out[key] = int(value.split()[0])
    return out


def probe(mode: str, modules_file: Path | None = None) -> dict[str, object]:
    argv = [str(PYTHON), "-c", PROBE, mode] + ([str(modules_file)] if modules_file else [])
    out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT, timeout=120)
    data: dict[str, object] = json.loads(out.stdout)
    data["vm"] = parse_status(str(data["status"]))
    return data


def start_containers(reg: Containers, n: int) -> float:
    t = time.perf_counter()

    def start(i: int) -> None:
        flags = FLAG_SETS[i % len(FLAG_SETS)]
        if "io.kubernetes.pod.namespace=bench" in flags:
            flags = (*flags, "--label", f"io.kubernetes.pod.name=pod-{i}")
        docker(*reg.run_args(*flags, name=f"ztmon-bench-rss-{reg.run_id}-{i}"), IMAGE, "sleep", "3600")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(start, range(n)))
    return time.perf_counter() - t


def measure_daemon(settle: float) -> tuple[dict[str, int], dict[str, int], int, float]:
    with daemon() as d:
        time.sleep(settle)
        at_ready = proc_status(d.proc.pid)
        text = d.metrics()
        seen = sum(1 for line in text.splitlines() if line.startswith("ztmon_container_readonly_rootfs{"))
        for _ in range(5):
            d.metrics()
            http_get(f"{d.base}/metrics", headers={"Accept-Encoding": "gzip"})
            http_get(f"{d.base}/findings")
        after = proc_status(d.proc.pid)
        return at_ready, after, seen, d.ready_after


def capture_modules(dest: Path) -> None:
    with daemon(argv=[str(PYTHON), "-c", CAPTURE, str(dest)]) as d:
        time.sleep(2.0)
        d.metrics()
    for _ in range(50):  # atexit runs as the daemon exits after SIGTERM
        if dest.exists() and dest.stat().st_size:
            return
        time.sleep(0.1)
    raise RuntimeError("the daemon did not write its module list")


# -- where the floor goes -------------------------------------------------------------------------------
_STDLIB = Path(sysconfig.get_paths()["stdlib"])


def package_of_path(path: str) -> str:
    """Top-level package a file belongs to: site-packages/<pkg>/..., the stdlib module, ztmon, or the binary."""
    if path.startswith(("<frozen", "<")):
        return "(frozen stdlib)"
    p = Path(path)
    parts = p.parts
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1 :]
        if rest:
            return rest[0].split(".")[0].removesuffix(".py")
    if str(p).startswith(str(ROOT / "ztmon")):
        return "ztmon"
    if str(p).startswith(str(_STDLIB)):
        rest = p.relative_to(_STDLIB).parts
        if rest and rest[0] == "lib-dynload":
            return rest[1].split(".")[0] + " (stdlib ext)"
        return (rest[0].split(".")[0] + " (stdlib)") if rest else "stdlib"
    if path.startswith("["):
        return path  # [heap], [stack], [anon] ...
    return p.name  # the python binary, libc, ld.so ...


def importtime(modules_file: Path) -> dict[str, tuple[int, int]]:
    """(exclusive, inclusive) microseconds per top-level package.

    exclusive = sum of `self` over the package's modules; inclusive = sum of `cumulative` of the imports that
    entered the package from outside it (so it includes whatever those imports pulled in first).
    """
    out = subprocess.run(
        [str(PYTHON), "-X", "importtime", "-c", PROBE, "bare", str(modules_file)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    rows = []
    for line in out.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            self_us, cum_us, name = line.partition(":")[2].split("|")
            depth = (len(name) - len(name.lstrip())) // 2  # " " + two spaces per nesting level
            rows.append((int(self_us), int(cum_us), depth, name.strip()))
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    stack: list[tuple[int, str]] = []  # (depth, top-level package) of the enclosing imports
    for self_us, cum_us, depth, name in reversed(rows):  # importtime prints children before their parent
        top = name.split(".")[0]
        while stack and stack[-1][0] >= depth:
            stack.pop()
        totals[top][0] += self_us
        if not stack or stack[-1][1] != top:
            totals[top][1] += cum_us
        stack.append((depth, top))
    return {k: (v[0], v[1]) for k, v in totals.items()}


def median_importtime(modules_file: Path, runs: int) -> dict[str, tuple[float, float]]:
    results = [importtime(modules_file) for _ in range(runs)]
    keys = set().union(*results)
    return {
        k: (
            statistics.median(r.get(k, (0, 0))[0] for r in results),
            statistics.median(r.get(k, (0, 0))[1] for r in results),
        )
        for k in keys
    }


def memory_by_package(modules_file: Path, mode: str) -> dict[str, int]:
    """Bytes per top-level package, exclusive: "rss" = VmRSS growth, "heap" = tracemalloc'd Python heap."""
    own: dict[str, int] = probe(mode, modules_file)["own"]  # type: ignore[assignment]
    out: dict[str, int] = defaultdict(int)
    for name, size in own.items():
        out[name.split(".")[0]] += size
    return out


def by_package(sizes: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for path, size in sizes.items():
        out[package_of_path(path)] += size
    return out


def print_floor_breakdown(modules_file: Path, top: int) -> None:
    times = median_importtime(modules_file, runs=3)
    rss = memory_by_package(modules_file, "rss")
    heap = memory_by_package(modules_file, "heap")
    smaps = by_package(probe("smaps", modules_file)["smaps"])  # type: ignore[arg-type]
    header = f"  {'package':<26} {'time excl.':>10} {'time incl.':>10} {'RSS excl.':>10} {'py heap excl.':>14}"

    def row(name: str) -> str:
        excl, incl = times.get(name, (0, 0))
        kind = " (stdlib)" if name in sys.stdlib_module_names else ""
        return (
            f"  {name + kind:<26} {excl / 1000:7.1f} ms {incl / 1000:7.1f} ms {rss.get(name, 0) / 2**20:6.1f} MiB "
            f"{heap.get(name, 0) / 2**20:10.1f} MiB"
        )

    print()
    print("where the import floor goes, per top-level package of the daemon's module set (exclusive = the")
    print("package's own modules; inclusive time = imports entering the package, with what they pulled in first)")
    print(
        f"by import time (python -X importtime, median of 3, total {sum(v[0] for v in times.values()) / 1000:.0f} ms):"
    )
    print(header)
    for name, _ in sorted(times.items(), key=lambda kv: -kv[1][0])[:top]:
        print(row(name))
    print(
        f"by resident memory (VmRSS growth while the package's modules ran, total {sum(rss.values()) / 2**20:.1f} "
        f"MiB; the Python heap column is tracemalloc's, total {sum(heap.values()) / 2**20:.1f} MiB):"
    )
    print(header)
    for name, _ in sorted(rss.items(), key=lambda kv: -kv[1])[:top]:
        print(row(name))
    print(f"by mapping (/proc/self/smaps Rss of the import floor, total {sum(smaps.values()) / 1024:.1f} MiB):")
    for name, size in sorted(smaps.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {name:<36} {size / 1024:6.1f} MiB")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", "-n", type=int, default=100)
    parser.add_argument("--settle", type=float, default=2.0, help="seconds to wait after /readyz")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    ensure_image()
    with bench_containers() as reg, tempfile.TemporaryDirectory(prefix="ztmon-bench-rss-") as tmp:
        took = start_containers(reg, args.containers)
        at_ready, after, seen, ready_after = measure_daemon(args.settle)
        modules_file = Path(tmp) / "modules.txt"
        capture_modules(modules_file)
        daemon_modules = [m for m in modules_file.read_text().split() if m not in {"__main__", "atexit"}]
        modules_file.write_text("\n".join(daemon_modules) + "\n")
        brief_file = Path(tmp) / "brief.txt"
        brief_file.write_text("\n".join(m.strip() for m in BRIEF_IMPORTS.split(",")) + "\n")
        bare, brief, real = probe("bare"), probe("bare", brief_file), probe("bare", modules_file)

        print(
            f"ztmon rss bench: {args.containers} bench containers started in {took:.1f} s; the daemon saw {seen} "
            f"container(s), ready in {ready_after:.2f} s; load {os.getloadavg()[0]:.2f}"
        )
        print()
        vm = after
        print(f"  {'process':<62} {'VmRSS':>24}   {'VmHWM':>24}")
        rows = [
            (f"ztmon run, /readyz + {args.settle:.0f} s", at_ready),
            ("ztmon run, after 5x (/metrics, gzip /metrics, /findings)", vm),
            (f"floor: the daemon's own module set ({len(daemon_modules)} modules)", real["vm"]),
            (f"floor: the brief's import list ({brief['n']} modules)", brief["vm"]),
            (f"floor: bare `python -c pass` ({bare['n']} modules)", bare["vm"]),
        ]
        for name, status in rows:
            print(f"  {name:<62} {kb(status, 'VmRSS')}   {kb(status, 'VmHWM')}")  # type: ignore[arg-type]
        for label, data in (("daemon set", real), ("brief list", brief)):
            if data["failed"]:
                print(f"  ({label}: {len(data['failed'])} module(s) failed to import alone: {data['failed'][:5]})")  # type: ignore[index, arg-type]
        real_vm: dict[str, int] = real["vm"]  # type: ignore[assignment]
        print(
            f"  daemon above its own import floor: {(at_ready['VmRSS'] - real_vm['VmRSS']) / 1024:.1f} MiB at ready, "
            f"{(vm['VmRSS'] - real_vm['VmRSS']) / 1024:.1f} MiB after scrapes"
        )
        print_floor_breakdown(modules_file, args.top)
        print()
        worst = max(at_ready["VmRSS"], vm["VmRSS"]) * 1024
        print(
            f"target VmRSS < {TARGET_BYTES / 1e6:.0f} MB with {args.containers} containers: {worst / 1e6:.1f} MB  "
            f"{'PASS' if worst < TARGET_BYTES else 'FAIL'}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
