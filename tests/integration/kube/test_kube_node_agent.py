"""The node agent (`mode: node`) against the fake API: its node's pods -> findings on /metrics, and back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from kubetest import eventually, pod
from prometheus_client import CollectorRegistry

from ztmon.checks.registry import all_checks
from ztmon.engine.running import Engine
from ztmon.model.policy import Policy
from ztmon.sinks.prometheus import PrometheusSink
from ztmon.sources import kube, kubeapi

NODE = "node-1"


def source(connect: kubeapi.ConnectOptions, **kw) -> kube.KubeNodeSource:
    return kube.KubeNodeSource(kube.KubeOptions(connect=connect, node_name=NODE, watchdog_seconds=2.0, **kw))


@contextlib.asynccontextmanager
async def daemon(src) -> AsyncIterator[tuple[Engine, PrometheusSink]]:
    prom = PrometheusSink(registry=CollectorRegistry(auto_describe=False), process_metrics=False)
    checks = list(all_checks().values())
    engine = Engine(
        node_name=NODE,
        sources=[src],
        sinks=[prom],
        checks=checks,
        known_checks=frozenset(all_checks()),
        policy=Policy(),
        debounce=0.01,
    )
    await engine.start(resync_interval=3600, jitter=0)
    try:
        yield engine, prom
    finally:
        await engine.stop(1.0)


def metrics(prom: PrometheusSink) -> str:
    return prom.report_body().decode()


def finding_lines(prom: PrometheusSink, check: str) -> list[str]:
    return [
        ln for ln in metrics(prom).splitlines() if ln.startswith("ztmon_finding_info{") and f'check="{check}"' in ln
    ]


async def test_pod_appears_its_findings_are_on_metrics_and_vanish_when_deleted(fake, connect):
    fake.add(
        "v1",
        "nodes",
        {
            "metadata": {"name": NODE},
            "status": {
                "nodeInfo": {
                    "kernelVersion": "6.1.0",
                    "osImage": "Debian GNU/Linux 12",
                    "containerRuntimeVersion": "containerd://1.7.0",
                }
            },
        },
    )
    async with daemon(source(connect)) as (engine, prom):
        assert finding_lines(prom, "privileged") == []
        fake.add(
            "v1",
            "pods",
            pod(
                "web-5d8f7b9c6-abcde",
                privileged=True,
                labels={"pod-template-hash": "5d8f7b9c6"},
                owner=("ReplicaSet", "web-5d8f7b9c6"),
            ),
        )
        lines = await eventually(lambda: finding_lines(prom, "privileged"))
        assert 'pod="web-5d8f7b9c6-abcde"' in lines[0]
        assert 'namespace="shop"' in lines[0]
        res = [ln for ln in metrics(prom).splitlines() if ln.startswith("ztmon_finding_resource_info{")]
        assert any('workload="web"' in ln and 'workload_kind="Deployment"' in ln for ln in res)
        assert engine.report is not None
        assert engine.report.node == NODE
        fake.remove("v1", "pods", "shop", "web-5d8f7b9c6-abcde")
        await eventually(lambda: finding_lines(prom, "privileged") == [])


async def test_only_pods_of_its_own_node_are_watched(fake, connect):
    fake.add("v1", "pods", pod("mine", privileged=True))
    fake.add("v1", "pods", pod("theirs", node="node-2", privileged=True))
    async with daemon(source(connect)) as (_engine, prom):
        lines = await eventually(lambda: finding_lines(prom, "privileged"))
        assert len(lines) == 1
        assert 'pod="mine"' in lines[0]
    assert all(
        r.get("fieldSelector") == f"spec.nodeName={NODE}" for r in fake.list_requests if r["path"] == "/api/v1/pods"
    )
    assert not any("secrets" in r["path"] for r in fake.list_requests + fake.watch_requests)


async def test_finished_pods_are_dropped(fake, connect):
    fake.add("v1", "pods", pod("job-pod", privileged=True, phase="Succeeded"))
    src = source(connect)
    await src.refresh()
    assert src.part().containers == ()
    await src.close()


async def test_container_ids_from_pod_status_join_the_docker_view(fake, connect):
    from ztmon.engine import pipeline  # noqa: PLC0415
    from ztmon.model.inventory import Container  # noqa: PLC0415
    from ztmon.model.inventory import SourcePart as Part  # noqa: PLC0415

    cid = "c0ffee" * 10 + "abcd"
    fake.add("v1", "pods", pod("web", cid=cid))
    src = source(connect)
    await src.refresh()
    docker_view = Container(
        runtime="docker", id=cid, name="k8s_app_web_shop", image="app", image_user="nobody", namespace="shop", pod="web"
    )
    snap = pipeline.build_snapshot(
        now=__import__("datetime").datetime.now(__import__("datetime").UTC),
        node_name=NODE,
        parts=[src.part(), Part(containers=(docker_view,))],
        policy=Policy(),
    )
    (c,) = snap.containers
    assert (c.runtime, c.id, c.name, c.pod, c.image_user) == ("kubernetes", cid, "app", "web", "nobody")
    assert c.workload_kind == "Pod"
    await src.close()


async def test_api_server_unreachable_is_a_down_source_not_a_crash():
    src = kube.KubeNodeSource(
        kube.KubeOptions(connect=kubeapi.ConnectOptions(host="http://127.0.0.1:9", request_timeout=1.0), node_name=NODE)
    )
    with pytest.raises(kubeapi.KubeError):
        await src.refresh()
    await src.close()


def test_node_mode_needs_a_node_name():
    with pytest.raises(ValueError, match="NODE_NAME"):
        kube.KubeNodeSource(kube.KubeOptions())


async def test_pod_annotation_suppresses_with_its_reason(fake, connect):
    p = pod("debug-pod", privileged=True, cid="ab" * 32)
    p["metadata"]["annotations"] = {"ztmon.io/ignore": "privileged reason=break-glass debugging, INC-42"}
    fake.add("v1", "pods", p)
    async with daemon(source(connect)) as (engine, prom):
        report = await eventually(lambda: engine.report if engine.report and engine.report.suppressed else None)
        (f,) = [f for f in report.suppressed if f.check == "privileged"]
        assert "INC-42" in f.suppressed_by
        assert finding_lines(prom, "privileged") == []
