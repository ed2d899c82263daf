"""A fake Kubernetes API server in its own process, seeded for the kube benches (not a bench itself).

Usage: python bench/kube_fakeserver.py secrets N | pods N NODE
Prints the server URL on the first line of stdout and serves until stdin closes. Runs the test suite's
FakeKube (tests/integration/kube/fakeapi.py, on kmock) on 127.0.0.1, so the client under measurement
lives in another process and its RSS excludes the server's.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration" / "kube"))
import kmock
from fakeapi import FakeKube

PAYLOAD = base64.b64encode(b"x" * 900).decode()  # ~1.2 KB of data per Secret, as a TLS key or config blob


def secret(i: int) -> dict:
    return {
        "metadata": {
            "name": f"app-{i:05d}",
            "namespace": f"ns-{i % 50:02d}",
            "labels": {"app.kubernetes.io/name": f"app-{i % 300}", "team": f"t{i % 7}"},
            "creationTimestamp": "2024-06-01T00:00:00Z",
            "managedFields": [
                {
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2024-06-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {".": {}, "f:password": {}, "f:config": {}}, "f:type": {}},
                },
            ],
        },
        "type": "Opaque",
        "data": {"password": base64.b64encode(b"s3cret-%d" % i).decode(), "config": PAYLOAD},
    }


def pod(i: int, node: str) -> dict:
    return {
        "metadata": {
            "name": f"web-{i:03d}-5d8f7b9c6-abcde",
            "namespace": f"ns-{i % 10}",
            "labels": {"app": f"web-{i:03d}", "pod-template-hash": "5d8f7b9c6"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"web-{i:03d}-5d8f7b9c6",
                    "uid": f"u{i}",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "app",
                    "image": f"registry.example.com/web:{i % 5}",
                    "env": [
                        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
                        {"name": "LOG_LEVEL", "value": "info"},
                    ],
                    "ports": [{"containerPort": 8080}],
                    "securityContext": {"readOnlyRootFilesystem": i % 2 == 0},
                },
                {"name": "sidecar", "image": "envoyproxy/envoy:v1.31.0"},
            ],
        },
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "app",
                    "containerID": f"containerd://{i:064x}",
                    "imageID": "sha256:" + "ab" * 32,
                    "state": {"running": {"startedAt": "2025-05-30T09:00:00Z"}},
                }
            ],
        },
    }


async def main() -> None:
    what, n = sys.argv[1], int(sys.argv[2])
    async with FakeKube(bookmark_every=30.0) as api, kmock.Server(api):
        if what == "secrets":
            for i in range(n):
                api.add("v1", "secrets", secret(i))
        else:
            node = sys.argv[3]
            for i in range(n):
                api.add("v1", "pods", pod(i, node))
            for i in range(n, n + 300):  # the rest of the cluster: other nodes' pods
                api.add("v1", "pods", pod(i, "node-other"))
            api.add("v1", "nodes", {"metadata": {"name": node}, "status": {"nodeInfo": {"kernelVersion": "6.1"}}})
        api.history.clear()
        print(str(api.url).rstrip("/"), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
