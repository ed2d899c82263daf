"""Detection latency: from `docker run --privileged` to its finding on /metrics, and from `docker rm -f` to
the finding's disappearance, next to the bare `docker` command's wall time (the floor) in the same run.

The daemon is the real `ztmon run` (a subprocess on a free loopback port). /metrics is polled every 10 ms
while the docker command is still running, so a finding that shows up before `docker run -d` returns is
seen then. Targets: p50 < 1 s, p99 < 2 s, for both appearance and disappearance.

Where runc cannot start a privileged container (a capability missing from the bounding set, as on the
development machines) the bench says so and measures two stand-ins, each with a daemon of its own:
`docker create --privileged` (sources.docker.include_stopped=true; the `create` event, check privileged)
and `docker run -d --cap-add SYS_ADMIN` (default settings: the `start` event, check capabilities).

    .venv/bin/python bench/latency.py [--iterations 20] [--interval 0.01]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchlib import (
    IMAGE,
    Containers,
    Daemon,
    bench_containers,
    daemon,
    ensure_image,
    percentile,
    stats_line,
    verdict,
)

TARGET_P50 = 1.0
TARGET_P99 = 2.0
TIMEOUT = 15.0
_ID = re.compile(r'container_id="([0-9a-f]*)"')


@dataclass(frozen=True)
class Scenario:
    verb: tuple[str, ...]  # docker run -d | docker create
    flags: tuple[str, ...]
    check: str  # the finding that must appear

    def title(self) -> str:
        return f'docker {" ".join((*self.verb, *self.flags))} -> ztmon_finding_info{{check="{self.check}"}}'


PRIVILEGED_RUN = Scenario(("run", "-d"), ("--privileged",), "privileged")
PRIVILEGED_CREATE = Scenario(("create",), ("--privileged",), "privileged")
SYS_ADMIN_RUN = Scenario(("run", "-d"), ("--cap-add", "SYS_ADMIN"), "capabilities")


def finding_ids(exposition: str, name: str, check: str) -> set[str]:
    """container_id of every ztmon_finding_info{check=...} series of the container called `name`."""
    want_check, want_name = f'check="{check}"', f'container="{name}"'
    out = set()
    for line in exposition.splitlines():
        if line.startswith("ztmon_finding_info{") and want_check in line and want_name in line:
            m = _ID.search(line)
            if m:
                out.add(m.group(1))
    return out


@dataclass
class Timing:
    done: float  # seconds from the docker command's start until the condition held on /metrics
    floor: float  # the docker command's own wall time
    cid: str
    polls: int


def race(
    d: Daemon, argv: list[str], condition: Callable[[str, str], bool], interval: float, expect_id: str = ""
) -> Timing:
    """Start `docker ...` and poll /metrics every `interval` s until condition(exposition, id) holds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    floor: float | None = None
    seen: float | None = None
    cid = expect_id
    polls = 0
    next_poll = t0
    while seen is None or floor is None:
        now = time.perf_counter()
        if now - t0 > TIMEOUT:
            proc.kill()
            raise TimeoutError(f"{argv[:3]}: not seen on /metrics within {TIMEOUT} s:\n{d.log_tail()}")
        if floor is None and proc.poll() is not None:
            floor = time.perf_counter() - t0
            out, err = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)} failed: {err.strip()}")
            cid = cid or out.strip()
        if seen is None and now >= next_poll:
            polls += 1
            if condition(d.metrics(), cid):
                seen = time.perf_counter() - t0
            next_poll += interval
        time.sleep(min(0.001, max(0.0, next_poll - time.perf_counter())))
    return Timing(done=seen, floor=floor, cid=cid, polls=polls)


def one(d: Daemon, reg: Containers, name: str, sc: Scenario, interval: float) -> tuple[Timing, Timing]:
    found: dict[str, set[str]] = {}

    def appeared(text: str, _cid: str) -> bool:
        found["ids"] = finding_ids(text, name, sc.check)
        return bool(found["ids"])

    argv = ["docker", *reg.run_args(*sc.flags, name=name, verb=sc.verb), IMAGE, "sleep", "3600"]
    up = race(d, argv, appeared, interval)
    if up.cid not in found["ids"]:
        raise RuntimeError(f"{name}: /metrics shows container_id {found['ids']}, docker gave {up.cid}")
    down = race(
        d,
        ["docker", "rm", "-f", up.cid],
        lambda text, cid: cid not in finding_ids(text, name, sc.check),
        interval,
        up.cid,
    )
    return up, down


def privileged_starts(reg: Containers) -> tuple[bool, str]:
    """Can this machine start a privileged container? (runc fails when the bounding set lacks a capability.)"""
    argv = ["docker", *reg.run_args("--privileged", verb=("run", "--rm")), IMAGE, "true"]
    out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    return out.returncode == 0, out.stderr.strip().splitlines()[0] if out.stderr.strip() else ""


def summary(label: str, timings: Sequence[Timing]) -> tuple[str, bool]:
    done = [t.done for t in timings]
    floor = [t.floor for t in timings]
    beyond = [max(0.0, t.done - t.floor) for t in timings]
    ok = percentile(done, 50) < TARGET_P50 and percentile(done, 99) < TARGET_P99
    own_ok = percentile(beyond, 50) < TARGET_P50 and percentile(beyond, 99) < TARGET_P99
    lines = [
        label,
        stats_line("ztmon: on /metrics, from the docker command's start", done, 52),
        stats_line("floor: the bare docker command's wall time", floor, 52),
        stats_line("ztmon beyond the floor", beyond, 52),
        (
            f"  target p50 < {TARGET_P50:.0f} s and p99 < {TARGET_P99:.0f} s, end to end: {verdict(ok)}"
            f"   (ztmon's part alone, beyond the floor: {verdict(own_ok)})"
        ),
    ]
    return "\n".join(lines), ok


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", "-n", type=int, default=20)
    parser.add_argument("--interval", type=float, default=0.01, help="/metrics poll interval in seconds")
    args = parser.parse_args(argv)
    ensure_image()
    with bench_containers() as reg:
        ok, why = privileged_starts(reg)
        if ok:
            runs = [(PRIVILEGED_RUN, {})]
        else:
            print(f"note: runc cannot start a privileged container here ({why[:110]}).")
            print("      Measured instead, each with a daemon of its own: `docker create --privileged` with")
            print("      sources.docker.include_stopped=true (the create event, then the same inspect -> cycle ->")
            print("      render path), and a started container with --cap-add SYS_ADMIN (default settings: the")
            print("      start event, check capabilities).")
            runs = [(PRIVILEGED_CREATE, {"ZTMON_SOURCES__DOCKER__INCLUDE_STOPPED": "true"}), (SYS_ADMIN_RUN, {})]
        verdicts = [
            measure(reg, k, sc, env, iterations=args.iterations, interval=args.interval)
            for k, (sc, env) in enumerate(runs)
        ]
        print()
        print(f"overall: {verdict(all(verdicts))}")


def measure(reg: Containers, k: int, sc: Scenario, env: dict[str, str], *, iterations: int, interval: float) -> bool:
    with daemon(env=env) as d:
        existing = sum(1 for line in d.metrics().splitlines() if line.startswith("ztmon_container_readonly_rootfs{"))
        print()
        print(f"scenario {k + 1}: {sc.title()}")
        print(
            f"  daemon ready in {d.ready_after:.2f} s, {existing} container(s) already seen, poll every "
            f"{interval * 1000:.0f} ms, N={iterations} (+1 warm-up), load {os.getloadavg()[0]:.2f}"
        )
        one(d, reg, f"ztmon-bench-lat-{reg.run_id}-{k}-warmup", sc, interval)  # first run/event is slower
        ups, downs = [], []
        for i in range(iterations):
            up, down = one(d, reg, f"ztmon-bench-lat-{reg.run_id}-{k}-{i}", sc, interval)
            ups.append(up)
            downs.append(down)
        polls = sum(t.polls for t in ups + downs)
        print(f"  ({polls} scrapes of /metrics; p99 of {iterations} samples is their maximum)")
        text_up, ok_up = summary("appear:", ups)
        text_down, ok_down = summary("vanish (docker rm -f -> that series gone):", downs)
        print(text_up)
        print(text_down)
        return ok_up and ok_down


if __name__ == "__main__":
    main()
