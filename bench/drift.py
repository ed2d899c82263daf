"""Drift cost: the five drift checks over 1,000 containers, and `changes` of 100 real containers.

(1) Check time. A synthetic node of 1,000 containers (compose services, plain containers, Kubernetes pods),
    each with 20 writable-layer changes (one an executable) and 2 listeners, against a locked baseline
    naming every workload. The five drift checks run through the engine's CheckRunner, N times:
      ztmon             - indexed baseline, one compiled regex per allowed-path set
      naive (baseline)  - linear workload lookup and fnmatch per (path, rule): what a direct port would do
    Target: p99 of the five checks together < 100 ms.

(2) Writable layers. 100 busybox containers on the local dockerd, each having written 20 files and one
    executable. Wall time and peak RSS of one FsChangesSource scan (concurrency 4, the default; also 1
    and 16), each in a fresh interpreter, next to the baseline of `docker diff` run sequentially per
    container (the CLI).

    .venv/bin/python bench/drift.py [--iterations 50] [--containers 1000] [--real 100] [--skip-docker]
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from benchlib import PYTHON, bench_containers, ensure_image, ms, percentile, verdict

from ztmon.checks import common
from ztmon.checks.registry import CheckSpec, all_checks
from ztmon.engine import baselines, pipeline
from ztmon.model import drift
from ztmon.model.baseline import Baseline as BaselineDoc
from ztmon.model.baseline import (
    BaselineView,
    ChangeKind,
    ContainerBaseline,
    ContainerFsChanges,
    FilesystemBaseline,
    FsChange,
    ImageBaseline,
    ListenerBaseline,
    Mode,
    WorkloadBaseline,
    merged,
    security_drift,
)
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Container, Node, Snapshot
from ztmon.model.network import Listener
from ztmon.model.policy import Policy

TARGET = 0.100
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32


# -- (1) synthetic node ---------------------------------------------------------------------------------
def synthetic(n: int, *, every: int) -> Snapshot:
    """Every `every`-th container drifts: a changed setting, a disallowed path, a new executable, a new port."""
    containers: list[Container] = []
    workloads: dict[tuple[str, str], WorkloadBaseline] = {}
    fs: list[ContainerFsChanges] = []
    listeners: list[Listener] = []
    scratch, cache = "/tmp", "/var/cache/app"  # noqa: S108 - paths inside the synthetic containers
    for i in range(n):
        cid = f"{i:064x}"
        drifts = i % every == 0
        kind = i % 3
        if kind == 0:  # compose
            labels = (("com.docker.compose.project", f"p{i % 40}"), ("com.docker.compose.service", f"s{i}"))
            c = Container(runtime="docker", id=cid, name=f"p{i % 40}-s{i}-1", image=f"app{i % 50}:1", labels=labels)
        elif kind == 1:  # plain
            c = Container(runtime="docker", id=cid, name=f"c{i}", image=f"app{i % 50}:1")
        else:  # kubernetes pod
            c = Container(
                runtime="docker",
                id=cid,
                name="app",
                image=f"app{i % 50}:1",
                namespace=f"team-{i % 12}",
                pod=f"w{i}-abc",
                workload_kind="Deployment",
                workload_name=f"w{i}",
            )
        c = dataclasses.replace(c, image_digest=DIGEST, read_only_rootfs=i % 2 == 0, user="1000")
        containers.append(c)
        ref = drift.workload_of(c)
        workloads[ref.key] = WorkloadBaseline(
            namespace=ref.namespace,
            workload=ref.workload,
            listeners=(ListenerBaseline(8080, tls=False, scope="all"),),
            containers=(
                ContainerBaseline(
                    name=ref.container,
                    images=(ImageBaseline(c.image, (DIGEST,)),),
                    security=dataclasses.replace(drift.security_of(c), privileged=drifts),
                    filesystem=FilesystemBaseline((scratch, cache, "/var/log/*.log"), ("/opt/app/bin/*",)),
                ),
            ),
        )
        changes = [FsChange(f"{cache}/f{j}", ChangeKind.ADDED) for j in range(14)]
        changes += [FsChange(f"/var/log/a{j}.log", ChangeKind.CHANGED) for j in range(3)]
        changes += [FsChange("/etc/hosts.bak" if drifts else f"{scratch}/y", ChangeKind.ADDED)]
        changes += [FsChange(f"{scratch}/x", ChangeKind.DELETED)]
        tool = f"{scratch}/miner" if drifts else "/opt/app/bin/tool"
        changes.append(FsChange(tool, ChangeKind.ADDED, executable="ELF magic"))
        fs.append(ContainerFsChanges(container_id=cid, changes=tuple(changes), added=16, changed=3, deleted=1))
        for address in ("0.0.0.0", "::"):
            port = 4444 if drifts and address == "::" else 8080
            listeners.append(Listener(netns=f"net:[{i}]", protocol="tcp", address=address, port=port, container_id=cid))
    view = BaselineView(baseline=BaselineDoc(workloads=tuple(workloads.values())), unknown=Mode.LOCKED)
    return Snapshot(
        taken_at=NOW,
        node=Node(name="n1"),
        containers=tuple(containers),
        policy=Policy(),
        listeners=tuple(listeners),
        baseline=view,
        fs_changes=tuple(fs),
    )


# The naive baseline: the same decisions, written directly (linear lookup, fnmatch per rule and path).
def _naive_lookup(view: BaselineView, c: Container) -> tuple[WorkloadBaseline | None, ContainerBaseline | None]:
    ref = drift.workload_of(c)
    for w in view.baseline.workloads:
        if (w.namespace, w.workload) == ref.key:
            return w, next((x for x in w.containers if x.name == ref.container), None)
    return None, None


def _naive_allowed(path: str, rules: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") or fnmatch.fnmatchcase(path, r) for r in rules)


def naive_checks(snap: Snapshot) -> Iterator[Finding]:
    view = snap.baseline or BaselineView()
    fs_by_id = {f.container_id: f for f in snap.fs_changes}
    for c in snap.containers:
        w, cb = _naive_lookup(view, c)
        if cb is None or cb.filesystem is None:
            continue
        for ch in fs_by_id[c.id].changes:
            rules = cb.filesystem.allowed_executables if ch.executable else cb.filesystem.allowed_paths
            if not _naive_allowed(ch.path, rules):
                yield common.finding("naive", Severity.HIGH, c, snap, ch.path, discriminator=ch.path)
        for li in snap.listeners:  # a scan of every listener for every container
            if li.container_id == c.id and w is not None and all(lb.port != li.port for lb in w.listeners or ()):
                yield common.finding("naive", Severity.HIGH, c, snap, str(li.port), discriminator=str(li.port))
        for d in security_drift(cb.security, drift.security_of(c)):
            yield common.finding("naive", Severity.HIGH, c, snap, d.field, discriminator=d.field)


def time_checks(snap: Snapshot, iterations: int, what: str) -> float:
    specs = [s for k, s in all_checks().items() if k.startswith("drift-")]
    runner = pipeline.CheckRunner(specs)
    naive_runner = pipeline.CheckRunner([CheckSpec("naive", naive_checks, Severity.HIGH, "naive")])
    ours: list[float] = []
    per_check: dict[str, list[float]] = {s.id: [] for s in specs}
    base: list[float] = []
    counts: dict[str, int] = {}
    cpu: list[float] = []
    for _ in range(iterations):
        snap = dataclasses.replace(snap)  # a new Snapshot per cycle, as the engine builds: no memo carries over
        c0 = time.process_time()
        findings, statuses = runner.run(snap)
        cpu.append(time.process_time() - c0)
        ours.append(sum(s.duration_seconds for s in statuses))
        for s in statuses:
            per_check[s.name].append(s.duration_seconds)
        t0 = time.perf_counter()
        naive_runner.run(snap)
        base.append(time.perf_counter() - t0)
    for f in findings:
        counts[f.check] = counts.get(f.check, 0) + 1
    n = len(snap.containers)
    print(f"== (1) drift checks over {n} containers ({what}), 20 changes and 2 listeners each")
    print(f"   findings per cycle: {dict(sorted(counts.items()))}")
    for cid, values in per_check.items():
        print(f"   {cid:<18} p50 {ms(percentile(values, 50))}   p99 {ms(percentile(values, 99))}")
    p99 = percentile(ours, 99)
    print(f"   ztmon, 5 checks    p50 {ms(percentile(ours, 50))}   p99 {ms(p99)}   (target < {TARGET * 1000:.0f} ms)")
    print(f"   ztmon, CPU time    p50 {ms(percentile(cpu, 50))}   p99 {ms(percentile(cpu, 99))}   (process_time)")
    print(f"   naive (baseline)   p50 {ms(percentile(base, 50))}   p99 {ms(percentile(base, 99))}")
    learner = baselines.Learner(window=None)
    t0 = time.perf_counter()
    learner.observe(dataclasses.replace(snap, baseline=None))
    observe = time.perf_counter() - t0
    t0 = time.perf_counter()
    drift.summary(snap, findings)
    summary = time.perf_counter() - t0
    t0 = time.perf_counter()
    merged(snap.baseline.baseline, learner.everything())  # type: ignore[union-attr]
    merge = time.perf_counter() - t0
    print(f"   learner.observe {ms(observe)}   metrics summary {ms(summary)}   view rebuild {ms(merge)}")
    return p99


# -- (2) real writable layers -----------------------------------------------------------------------------
SCAN = """
import asyncio, json, resource, sys, time
from ztmon.sources.fschanges import FsChangesSource
src = FsChangesSource(concurrency=int(sys.argv[1]), max_containers=1000, max_probes=int(sys.argv[3]),
                      max_reads=int(sys.argv[4]))
label = sys.argv[2]
src._connect()  # the docker SDK imported and connected: what follows is the scan's own memory
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
src._list = lambda: [str(c["Id"]) for c in src._connect().api.containers(quiet=True, filters={"label": label})]
t0 = time.perf_counter()
asyncio.run(src.scan())
wall = time.perf_counter() - t0
part = src.part().fs_changes
print(json.dumps({"wall": wall, "containers": len(part), "probes": src.last_scan_probes, "reads": src.last_scan_reads,
                  "executables": sum(1 for fc in part for c in fc.changes if c.executable),
                  "rss_before_kb": before, "rss_peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def time_changes(n: int) -> None:
    image = ensure_image()
    with bench_containers() as reg:
        script = (
            "for i in $(seq 1 20); do echo $i > /f$i; done; mkdir -p /opt; cat /bin/busybox > /opt/tool; sleep 3600"
        )
        t0 = time.perf_counter()
        argv = ["docker", *reg.run_args(image, "sh", "-c", script)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda _: subprocess.run(argv, capture_output=True, check=True, timeout=120), range(n)))
        started = time.perf_counter() - t0
        ids = reg.ids()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # every container has written its files
            out = subprocess.run(["docker", "diff", ids[-1]], capture_output=True, text=True, check=False).stdout
            if "/opt/tool" in out:
                break
            time.sleep(0.2)
        time.sleep(1.0)
        print(f"== (2) `changes` of {len(ids)} containers (started in {started:.1f} s), 22 changes each")
        t0 = time.perf_counter()
        for cid in ids:
            subprocess.run(["docker", "diff", cid], capture_output=True, check=True, timeout=60)
        sequential = time.perf_counter() - t0
        print(f"   baseline: sequential `docker diff` CLI               wall {sequential * 1000:8.0f} ms  (no probes)")
        runs = ((1, 256, 16), (4, 256, 16), (16, 256, 16), (4, 0, 0), (4, 100_000, 100_000))
        for conc, probes, reads in runs:
            proc = subprocess.run(
                [str(PYTHON), "-c", SCAN, str(conc), reg.run_label, str(probes), str(reads)],
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            )
            r = json.loads(proc.stdout)
            peak, floor = r["rss_peak_kb"] / 1024, r["rss_before_kb"] / 1024
            print(
                f"   ztmon scan, concurrency {conc:>2}, budget {probes:>6} stats {reads:>6} reads  "
                f"wall {r['wall'] * 1000:7.0f} ms  containers {r['containers']}  stats {r['probes']}  "
                f"reads {r['reads']}  executables {r['executables']}  "
                f"peak RSS {peak:.1f} MB (+{peak - floor:.1f} MB over a connected client's {floor:.1f} MB)"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--containers", type=int, default=1000)
    ap.add_argument("--real", type=int, default=100)
    ap.add_argument("--skip-docker", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"# {os.cpu_count()} CPUs, load average {load:.1f}: on a shared machine wall-clock p99 includes preemption")
    p99 = time_checks(synthetic(args.containers, every=20), args.iterations, "every 20th drifts")
    worst = time_checks(synthetic(args.containers, every=1), args.iterations, "worst case: every one drifts")
    print(f"   {verdict(p99 < TARGET)}: p99 {p99 * 1000:.1f} ms < {TARGET * 1000:.0f} ms (worst {worst * 1000:.1f} ms)")
    if not args.skip_docker:
        time_changes(args.real)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
