"""Node agent with 110 pods on its node (300 more elsewhere): RSS of the whole daemon path (target < 90 MB).

Runs, in a fresh process each: (1) the import floor, `kubernetes.aio` + aiohttp alone; (2) the node agent:
KubeNodeSource + every check + the Prometheus sink through the Engine, first scan, then 110 pod updates
through the watch. The fake API server runs in a third process.

    .venv/bin/python bench/kube_node_agent.py [--pods 110]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
NODE = "node-1"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def floor() -> dict[str, float]:
    import aiohttp  # noqa: F401, PLC0415
    import kubernetes.aio.client  # noqa: F401, PLC0415

    return {"rss_mb": rss_mb()}


async def agent(url: str) -> dict[str, float]:
    from prometheus_client import CollectorRegistry  # noqa: PLC0415

    from ztmon.checks.registry import all_checks  # noqa: PLC0415
    from ztmon.engine.running import Engine  # noqa: PLC0415
    from ztmon.model.policy import Policy  # noqa: PLC0415
    from ztmon.sinks.prometheus import PrometheusSink  # noqa: PLC0415
    from ztmon.sources import kube, kubeapi  # noqa: PLC0415

    src = kube.KubeNodeSource(kube.KubeOptions(connect=kubeapi.ConnectOptions(host=url), node_name=NODE))
    prom = PrometheusSink(registry=CollectorRegistry(auto_describe=False))
    engine = Engine(
        node_name=NODE,
        sources=[src],
        sinks=[prom],
        checks=list(all_checks().values()),
        known_checks=frozenset(all_checks()),
        policy=Policy(),
        debounce=0.05,
    )
    t0 = time.perf_counter()
    await engine.start(resync_interval=3600, jitter=0)
    first = time.perf_counter() - t0
    report = engine.report
    if report is None:
        raise RuntimeError("no report after the first scan")
    after_scan = rss_mb()
    # 110 pod updates through the watch (relabel each pod), then let the cycles settle
    client = await kubeapi.Client.connect(kubeapi.ConnectOptions(host=url))
    items, _ = await client.list(kubeapi.PODS, field_selector=f"spec.nodeName={NODE}")
    for p in items:
        md = p["metadata"]
        await client.patch(
            kubeapi.PODS, md["name"], {"metadata": {"labels": {"bench": "1"}}}, namespace=md["namespace"]
        )
    await client.close()
    await asyncio.sleep(1.5)
    body = prom.report_body()
    out = {
        "first_scan_s": first,
        "containers": len(engine.report.containers) if engine.report else 0,
        "findings": len(engine.report.findings) if engine.report else 0,
        "rss_after_scan_mb": after_scan,
        "rss_after_updates_mb": rss_mb(),
        "exposition_kb": len(body) / 1024,
    }
    await engine.stop(1.0)
    return out


def child(*args: str) -> dict[str, float]:
    out = subprocess.run([PY, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=110)
    ap.add_argument("--child", nargs="*")
    a = ap.parse_args()
    if a.child is not None:
        if a.child[0] == "floor":
            print(json.dumps(floor()))
        else:
            print(json.dumps(asyncio.run(agent(a.child[1]))))
        return
    server = subprocess.Popen(
        [PY, str(ROOT / "bench" / "kube_fakeserver.py"), "pods", str(a.pods), NODE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if server.stdout is None:
            raise RuntimeError("no pipe to the fake server")
        url = server.stdout.readline().strip()
        base = child("floor")
        run = child("agent", url, str(a.pods))
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=30)
    print(f"node agent, {a.pods} pods on its node (+300 elsewhere), fake API server in another process")
    print(f"  import floor (kubernetes.aio + aiohttp alone): {base['rss_mb']:.0f} MB RSS")
    print(
        f"  node agent after first scan: {run['rss_after_scan_mb']:.0f} MB RSS "
        f"({run['containers']:.0f} containers, {run['findings']:.0f} findings, "
        f"first scan {run['first_scan_s']:.2f} s)"
    )
    print(
        f"  after {a.pods} pod updates via the watch: {run['rss_after_updates_mb']:.0f} MB RSS; "
        f"/metrics body {run['exposition_kb']:.0f} KiB"
    )
    ok = run["rss_after_updates_mb"] < 90
    print(f"  target < 90 MB: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
