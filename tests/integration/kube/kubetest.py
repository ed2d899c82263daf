"""Object factories and a polling helper for the Kubernetes integration tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

DIGEST = "sha256:" + "ab" * 32


def pod(
    name: str,
    *,
    node: str = "node-1",
    ns: str = "shop",
    labels: dict[str, str] | None = None,
    privileged: bool = False,
    cid: str = "",
    owner: tuple[str, str] | None = None,
    phase: str = "Running",
) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels or {"app": name}}
    if owner:
        md["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1], "uid": "u", "controller": True}
        ]
    obj: dict[str, Any] = {
        "metadata": md,
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "app",
                    "image": f"registry.example.com/app@{DIGEST}",
                    "securityContext": {
                        "privileged": privileged,
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": privileged,
                        "runAsNonRoot": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
            "automountServiceAccountToken": False,
        },
        "status": {"phase": phase},
    }
    if cid:
        obj["status"]["containerStatuses"] = [
            {
                "name": "app",
                "containerID": f"docker://{cid}",
                "imageID": f"docker-pullable://app@{DIGEST}",
                "state": {"running": {"startedAt": "2025-05-30T09:00:00Z"}},
            }
        ]
    return obj


def secret(name: str, ns: str = "shop", type_: str = "Opaque", created: str = "2024-01-01T00:00:00Z") -> dict:
    return {
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": created},
        "type": type_,
        "data": {"password": "c2VjcmV0"},
    }


async def eventually(check: Callable[[], Any], *, within: float = 5.0, every: float = 0.02) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s: {check}")
        await asyncio.sleep(every)
