"""Baselines and drift against the real dockerd and the real `ztmon` executable.

Other tests (and other engineers' runs) share the dockerd, so every assertion looks at this test's own
containers only; `baseline diff` is strict and reports everything else too.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from ztharness import ZTMON, Containers, Daemons, clean_env, docker, findings_of, poll, record_latency, ztmon_cli

DOCKER_ONLY = ("--source", "docker", "--source", "fschanges")


def diff(
    doc: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    proc = ztmon_cli("baseline", "diff", str(doc), "--output", "json", *args, env=env)
    assert proc.returncode in {0, 1}, f"ztmon baseline diff exited {proc.returncode}: {proc.stderr}"
    return json.loads(proc.stdout), proc


def image_id(ref: str) -> str:
    return docker("image", "inspect", "--format", "{{.Id}}", ref)


def workload_doc(name: str, image: str, *, allowed: tuple[str, ...] = (), executables: tuple[str, ...] = ()) -> str:
    return (
        "version: 1\n"
        "workloads:\n"
        f"  - workload: {name}\n"
        "    containers:\n"
        f"      - name: {name}\n"
        "        images:\n"
        f"          - reference: {image}\n"
        f"            digests: [{image_id(image)}]\n"
        "        filesystem:\n"
        f"          allowed_paths: [{', '.join(allowed)}]\n"
        f"          allowed_executables: [{', '.join(executables)}]\n"
    )


def test_writes_in_allowed_and_disallowed_paths_and_new_executables(containers: Containers, tmp_path: Path) -> None:
    c = containers.run("fs")
    docker(
        "exec", c.name, "sh", "-c",
        "mkdir -p /data /etc /srv /var/tmp && echo ok > /data/ok && echo x > /etc/evil"
        " && cat /bin/busybox > /srv/blob"  # an ELF without an exec bit: found by its magic
        " && printf '#!/bin/sh\\n' > /var/tmp/run.sh && chmod 755 /var/tmp/run.sh"  # a script: found by its mode
        " && printf '#!/bin/sh\\n' > /data/tool && chmod 755 /data/tool",  # allowed path, but an executable
    )  # fmt: skip
    doc = tmp_path / "baseline.yaml"
    doc.write_text(workload_doc(c.name, containers.image, allowed=("/data", "/var/tmp")), encoding="utf-8")
    report, proc = diff(doc, *DOCKER_ONLY)
    assert proc.returncode == 1  # drift, and --fail-on defaults to any
    mine = findings_of(report, c.name)
    assert {f["check"] for f in mine} == {"drift-filesystem"}
    executables = {f["evidence"]["path"]: f for f in mine if "executable" in f["evidence"]}
    assert set(executables) == {"/srv/blob", "/var/tmp/run.sh", "/data/tool"}
    assert executables["/srv/blob"]["evidence"]["executable"] == "ELF magic"
    assert executables["/var/tmp/run.sh"]["evidence"]["executable"] == "mode 0755"
    assert all(f["severity"] == "high" for f in executables.values())
    [outside] = [f for f in mine if "executable" not in f["evidence"]]
    assert outside["severity"] == "medium"
    assert outside["evidence"]["kind"] == "added"
    assert outside["evidence"]["paths"] == "/etc/evil"  # /data/ok is allowed; /srv/blob is an executable finding

    # Allowing the executables (and /etc/evil) leaves nothing.
    doc.write_text(
        workload_doc(
            c.name,
            containers.image,
            allowed=("/data", "/var/tmp", "/etc/evil"),
            executables=("/srv/blob", "/var/tmp/*.sh", "/data/tool"),
        ),
        encoding="utf-8",
    )
    report, _ = diff(doc, *DOCKER_ONLY, "--fail-on", "never")
    assert findings_of(report, c.name) == []


def test_learn_then_diff_is_clean_until_the_container_drifts(containers: Containers, tmp_path: Path) -> None:
    c = containers.run(
        "learned", cmd=("sh", "-c", "mkdir -p /var/cache/app && echo 1 > /var/cache/app/a && sleep 3600")
    )
    poll(lambda: "/var/cache/app/a" in docker("diff", c.name), timeout=10, what="the container's first write")
    doc = tmp_path / "learned.yaml"
    proc = ztmon_cli("baseline", "learn", *DOCKER_ONLY, "--output", str(doc))
    assert proc.returncode == 0, proc.stderr
    assert "learned" in proc.stderr
    text = doc.read_text(encoding="utf-8")
    assert f"workload: {c.name}" in text
    assert "- /var/cache/app" in text  # the directory its added file lives in (depth >= 2)
    report, _ = diff(doc, *DOCKER_ONLY, "--fail-on", "never")
    assert findings_of(report, c.name) == []
    docker("exec", c.name, "sh", "-c", "echo 2 > /var/cache/app/b && mkdir -p /root && echo x > /root/.profile")
    report, _ = diff(doc, *DOCKER_ONLY, "--fail-on", "never")
    [f] = findings_of(report, c.name)
    assert (f["check"], f["evidence"]["paths"]) == ("drift-filesystem", "/root/.profile")


def test_image_rebuilt_under_the_same_tag(rebuilt_image: Any, containers: Containers, tmp_path: Path) -> None:
    first = rebuilt_image.build("one")
    c = containers.run("rebuilt", image=rebuilt_image.tag)
    doc = tmp_path / "baseline.yaml"
    doc.write_text(workload_doc(c.name, rebuilt_image.tag), encoding="utf-8")
    report, _ = diff(doc, "--source", "docker", "--fail-on", "never")
    assert findings_of(report, c.name) == []

    second = rebuilt_image.build("two")
    assert second != first
    containers.remove(c)
    c = containers.run("rebuilt", image=rebuilt_image.tag)  # the same workload, redeployed from the same tag
    report, proc = diff(doc, "--source", "docker", "--fail-on", "high")
    assert proc.returncode == 1
    [f] = findings_of(report, c.name)
    assert (f["check"], f["severity"]) == ("drift-image", "high")
    assert f["evidence"]["digest"] == second
    assert f["evidence"]["expected_digests"] == first
    assert "rebuilt or re-pushed" in f["message"]


def test_node_baseline_with_a_different_kernel(host_tree: Any, tmp_path: Path) -> None:
    doc = tmp_path / "node.yaml"
    doc.write_text(
        "version: 1\nnodes:\n  - name: '*'\n    os_image: Fixture Linux 1\n    kernel: 6.1.0-26-amd64\n",
        encoding="utf-8",
    )
    env = host_tree.env()
    report, proc = diff(doc, "--source", "host", env=env)
    assert (proc.returncode, report["findings"]) == (0, [])
    host_tree.set(kernel="6.5.0-1-amd64")
    report, proc = diff(doc, "--source", "host", env=env)
    assert proc.returncode == 1
    [f] = report["findings"]
    assert (f["check"], f["resource"]["kind"]) == ("drift-node", "Node")
    assert f["evidence"] == {"setting": "kernel", "expected": "6.1.0-26-amd64", "observed": "6.5.0-1-amd64"}


def test_bad_baseline_is_rejected_at_start_up_with_its_location(tmp_path: Path) -> None:
    doc = tmp_path / "bad.yaml"
    doc.write_text("version: 1\nworkloads:\n  - workload: web\n    containers:\n      - nme: web\n", encoding="utf-8")
    expected = [
        f"{doc}:5: workloads.0.containers.0.name: required field missing",
        f"{doc}:5: workloads.0.containers.0.nme: unknown field",
    ]
    proc = ztmon_cli("baseline", "diff", str(doc), timeout=30)
    assert proc.returncode == 2
    assert [line.strip() for line in proc.stderr.splitlines()[1:]] == expected
    daemon = subprocess.run(
        [ZTMON, "run"],
        env=clean_env({"ZTMON_BASELINE__FILE": str(doc), "ZTMON_SERVER__PORT": "0"}),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert daemon.returncode == 2
    assert all(line in daemon.stderr for line in expected)


def daemon_env(doc: Path, host_tree: Any, **extra: str) -> dict[str, str]:
    return {
        "ZTMON_BASELINE__FILE": str(doc),
        "ZTMON_BASELINE__RELOAD_INTERVAL_SECONDS": "0.2",
        "ZTMON_BASELINE__OBSERVE_INTERVAL_SECONDS": "0.5",
        "ZTMON_ENGINE__RESYNC_INTERVAL_SECONDS": "1",
        "ZTMON_SOURCES__FSCHANGES__INTERVAL_SECONDS": "1",
        **host_tree.env(),
        **extra,
    }


def test_daemon_reloads_atomically_and_refuses_a_bad_document(daemons: Daemons, host_tree: Any, tmp_path: Path) -> None:
    doc = tmp_path / "baseline.yaml"
    good = "version: 1\nnodes:\n  - kernel: 6.1.0-*\nworkloads: []\n"
    doc.write_text(good, encoding="utf-8")
    d = daemons.start(daemon_env(doc, host_tree, ZTMON_SOURCES__DOCKER__ENABLED="false"))
    [info] = d.series("ztmon_baseline_info")
    first_sha = info.labels["sha256"]
    assert info.labels["source"] == str(doc)
    assert d.value("ztmon_baseline_last_reload_successful") == 1
    assert d.value("ztmon_baseline_node_mode") == 1
    assert not d.series("ztmon_drift", check="drift-node")

    # An invalid document is refused: the old one stays, a log line and the metrics say so.
    bad = tmp_path / "bad.tmp"
    bad.write_text("version: 1\nnodes:\n  - kernel: 6.1.0-*\n    colour: blue\n", encoding="utf-8")
    bad.replace(doc)  # atomically, as kubelet swaps a ConfigMap
    poll(lambda: d.value("ztmon_baseline_reload_failures_total") == 1, timeout=10, what="the reload failure counter")
    assert d.value("ztmon_baseline_last_reload_successful") == 0
    assert d.series("ztmon_baseline_info")[0].labels["sha256"] == first_sha
    refused = [e for e in d.log_events() if e.get("event") == "baseline_reload_refused"]
    assert refused[0]["errors"] == [f"{doc}:4: nodes.0.colour: unknown field"]
    assert refused[0]["level"] == "warning"

    # The kept document still judges: a kernel outside its glob is drift.
    host_tree.set(kernel="6.5.0-1-amd64")
    poll(lambda: d.series("ztmon_drift", check="drift-node"), timeout=10, what="drift-node after the kernel changed")

    # A valid new document is taken at once.
    fixed = tmp_path / "fixed.tmp"
    fixed.write_text("version: 1\nnodes:\n  - kernel: 6.5.0-*\n", encoding="utf-8")
    fixed.replace(doc)
    poll(lambda: d.series("ztmon_baseline_info")[0].labels["sha256"] != first_sha, timeout=10, what="the new sha256")
    assert d.value("ztmon_baseline_last_reload_successful") == 1
    poll(lambda: not d.series("ztmon_drift", check="drift-node"), timeout=10, what="no drift under the new document")
    d.assert_alive()


def test_daemon_learns_locks_then_reports_a_port_and_an_executable(
    daemons: Daemons, containers: Containers, host_tree: Any, tmp_path: Path
) -> None:
    doc = tmp_path / "empty.yaml"
    doc.write_text("version: 1\n", encoding="utf-8")
    c = containers.run("httpd", cmd=("httpd", "-f", "-p", "8080"))
    d = daemons.start(
        daemon_env(
            doc,
            host_tree,
            ZTMON_BASELINE__LEARNING_WINDOW_SECONDS="4",
            ZTMON_SOURCES__PROCFS__ENABLED="true",
            ZTMON_SOURCES__PROCFS__PROBE__ENABLED="false",
        )
    )
    started = time.monotonic()

    def mode() -> float | None:
        found = d.series("ztmon_baseline_mode", workload=c.name)
        return found[0].value if found else None

    poll(lambda: mode() == 0, timeout=10, what=f"{c.name} learning")
    poll(lambda: mode() == 1, timeout=20, what=f"{c.name} locked after the 4 s learning window")
    record_latency("learning window 4 s -> locked", time.monotonic() - started)
    assert not d.series("ztmon_drift", container=c.name)

    docker("exec", c.name, "sh", "-c", "httpd -p 9090 && mkdir -p /opt && cat /bin/busybox > /opt/miner")
    opened = time.monotonic()

    def drift(check: str) -> list[dict[str, Any]]:
        return [f for f in findings_of(d.findings(), c.name) if f["check"] == check]

    [port], _ = poll(lambda: drift("drift-port"), timeout=20, what="drift-port for the port opened after locking")
    record_latency("port opened -> drift-port", time.monotonic() - opened)
    assert (port["severity"], port["evidence"]["port"]) == ("high", "9090")
    [exe], _ = poll(lambda: drift("drift-filesystem"), timeout=20, what="drift-filesystem for the new executable")
    assert (exe["severity"], exe["evidence"]["path"], exe["evidence"]["executable"]) == (
        "high",
        "/opt/miner",
        "ELF magic",
    )
    assert d.value("ztmon_drift", check="drift-port", namespace="", workload=c.name, container=c.name) == 1
    fs = {s.labels["kind"]: s.value for s in d.series("ztmon_container_fs_changes", container=c.name)}
    assert fs["added"] >= 2  # /opt and /opt/miner (httpd writes nothing)
    d.assert_alive()
