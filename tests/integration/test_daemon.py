"""`ztmon run` as a process: events reach /metrics in under a second, endpoints, auth, docker absent, SIGTERM."""

from __future__ import annotations

import gzip
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ztharness import (
    PREFIX,
    Containers,
    Daemon,
    Daemons,
    HoldingDockerProxy,
    Scenario,
    Spec,
    docker,
    findings_of,
    poll,
    record_latency,
    scan_json,
    wait_ready,
    ztmon_cli,
)

pytestmark = pytest.mark.integration

MAX_LATENCY = 1.0  # seconds from `docker run` returning to the finding on /metrics


def test_started_container_reaches_metrics_within_one_second(live_daemon: Daemon, containers: Containers) -> None:
    for i in range(3):
        before_run = time.monotonic()
        c = containers.run(f"new{i}", "--cap-add", "SYS_ADMIN")  # `docker run -d` returns once it has started

        def seen(c=c) -> list:
            return live_daemon.series("ztmon_finding_info", container=c.name, check="capabilities", severity="high")

        (series,), latency = poll(seen, timeout=10, what=f"a capabilities finding for {c.name} on /metrics")
        record_latency("docker run returned -> finding on /metrics", latency)
        record_latency("(incl. the docker run call itself)", time.monotonic() - before_run)
        assert series.labels["container_id"] == c.id
        assert latency < MAX_LATENCY, f"took {latency:.3f} s"


def test_removed_container_leaves_next_scrape_within_one_second(live_daemon: Daemon, containers: Containers) -> None:
    c = containers.run("gone", "-e", "API_TOKEN=abcdefghijkl")
    poll(
        lambda: live_daemon.series("ztmon_finding_info", container=c.name, check="secret-in-env"),
        timeout=10,
        what=f"{c.name} on /metrics",
    )
    containers.remove(c)

    def gone() -> bool:
        text = live_daemon.metrics_text()
        return c.id not in text and c.name not in text

    _, latency = poll(gone, timeout=10, what=f"every series of {c.id[:12]} to leave /metrics")
    record_latency("docker rm -f -> series gone from /metrics", latency)
    assert latency < MAX_LATENCY, f"took {latency:.3f} s"
    assert not [s for s in live_daemon.samples() if s.labels.get("container_id") == c.id]
    assert findings_of(live_daemon.findings(), c.name) == []


def test_findings_endpoint(scenario_daemon: Daemon, scenario: Scenario, scan_report: dict) -> None:
    status, body, headers = scenario_daemon.request("/findings")
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    report = json.loads(body)
    assert report["schema_version"] == 1
    assert {"scan_id", "taken_at", "node", "checks_enabled", "summary", "findings", "suppressed", "sources"} <= set(
        report
    )
    c = scenario["hostroot"]
    mine = {f["id"]: f for f in findings_of(report, c.name)}
    assert {f["check"] for f in mine.values()} >= {"host-path", "readonly-rootfs"}
    assert set(mine) == {f["id"] for f in findings_of(scan_report, c.name)}  # same ids as `ztmon scan`
    assert {s["name"]: s["up"] for s in report["sources"]} == {"host": True, "docker": True}
    # Suppressed findings are listed by default and hidden with ?suppressed=0; the summary counts them both times.
    ignored = scenario["ignored"].name
    assert findings_of(report, ignored, key="suppressed")
    hidden = scenario_daemon.findings("?suppressed=0")
    assert hidden["suppressed"] == []
    assert hidden["summary"]["suppressed"] >= 1


@pytest.mark.parametrize(("path", "status", "body"), [("/healthz", 200, b"ok\n"), ("/readyz", 200, b"ready\n")])
def test_probe_endpoints(scenario_daemon: Daemon, path: str, status: int, body: bytes) -> None:
    assert scenario_daemon.request(path)[:2] == (status, body)


def test_metrics_content_type(scenario_daemon: Daemon) -> None:
    status, _, headers = scenario_daemon.request("/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")


TOKEN = "it-bearer-0123456789"


@pytest.mark.parametrize(
    ("path", "token", "status"),
    [
        ("/metrics", None, 401),
        ("/metrics", "wrong-token", 401),
        ("/metrics", TOKEN, 200),
        ("/findings", None, 401),
        ("/findings", TOKEN, 200),
        ("/healthz", None, 200),
        ("/readyz", None, 200),
    ],
)
def test_bearer_token(auth_daemon: Daemon, path: str, token: str | None, status: int) -> None:
    got, body, headers = auth_daemon.request(path, token=token)
    assert got == status, body
    if status == 401:
        assert headers.get("www-authenticate") == "Bearer"
    if path == "/metrics" and status == 200:
        assert b"ztmon_source_up" in body
    assert TOKEN not in auth_daemon.log_text()


@pytest.fixture(scope="module")
def auth_daemon(tmp_path_factory: pytest.TempPathFactory, dockerd: str) -> Iterator[Daemon]:
    pool = Daemons(tmp_path_factory.mktemp("auth-daemon"))
    try:
        yield pool.start({"ZTMON_SERVER__AUTH__BEARER_TOKEN": TOKEN})
    finally:
        pool.stop_all()


def test_docker_absent_daemon_stays_up(daemons: Daemons) -> None:
    d = daemons.start({"ZTMON_SOURCES__DOCKER__HOST": "unix:///nonexistent.sock"})
    assert d.request("/readyz")[0] == 200
    text = d.metrics_text()
    assert d.value("ztmon_source_up", text, source="docker") == 0
    assert d.value("ztmon_source_up", text, source="host") == 1
    docker_status = next(s for s in d.findings()["sources"] if s["name"] == "docker")
    assert docker_status["up"] is False
    assert docker_status["error"]
    # Watch it for ~3 s: the events watcher retries with backoff; it must neither crash nor log every retry.
    while time.monotonic() - d.started < 3.0:
        d.assert_alive()
        time.sleep(0.1)
    d.assert_alive()
    assert d.request("/readyz")[0] == 200
    assert d.value("ztmon_source_up", source="docker") == 0
    events = d.log_events()
    warnings = [e for e in events if e.get("level") in {"warning", "error", "critical"}]
    about_docker = [e for e in warnings if "docker" in json.dumps(e).lower()]
    assert len(about_docker) == 1, json.dumps(warnings, indent=1)
    assert not [e for e in events if e.get("event") == "task_failed"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_exits_zero_within_five_seconds(daemons: Daemons, scenario: Scenario, sig: signal.Signals) -> None:
    d = daemons.start()  # a docker events stream is open: shutdown must not wait for it
    poll(lambda: d.series("ztmon_container_readonly_rootfs"), timeout=5, what="containers on /metrics")
    start = time.monotonic()
    d.proc.send_signal(sig)
    try:
        rc = d.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ztmon run still running 5 s after {sig.name}; log tail:\n{d.log_text()[-2000:]}")
    elapsed = time.monotonic() - start
    record_latency(f"{sig.name} -> exit", elapsed)
    assert rc == 0, d.log_text()[-2000:]
    assert [e["event"] for e in d.log_events()][-2:] == ["stopping", "stopped"]


def test_gzip_metrics_decode_to_the_same_exposition(scenario_daemon: Daemon) -> None:
    status, body, headers = scenario_daemon.request("/metrics", headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers.get("content-encoding") == "gzip"
    text = gzip.decompress(body).decode()  # every member of a multi-member stream
    families = {f.name for f in text_string_to_metric_families(text)}
    plain = {f.name for f in text_string_to_metric_families(scenario_daemon.metrics_text())}
    assert families == plain
    assert {"ztmon_findings", "ztmon_finding_info", "ztmon_source_up"} <= families


def test_burst_of_containers_all_reach_metrics_within_one_second(live_daemon: Daemon, containers: Containers) -> None:
    started = containers.run_many({f"burst{i}": Spec(("--cap-add", "NET_ADMIN")) for i in range(8)})

    def all_seen() -> bool:
        text = live_daemon.metrics_text()
        return all(live_daemon.series("ztmon_finding_info", text, container_id=c.id) for c in started.values())

    _, latency = poll(all_seen, timeout=10, what="all 8 containers of a burst on /metrics")
    record_latency("burst of 8: last docker run returned -> all on /metrics", latency)
    assert latency < MAX_LATENCY, f"took {latency:.3f} s"


def test_killed_container_leaves_metrics_within_one_second(live_daemon: Daemon, containers: Containers) -> None:
    c = containers.run("killed", "--cap-add", "SYS_PTRACE")
    poll(lambda: live_daemon.series("ztmon_finding_info", container_id=c.id), timeout=10, what=f"{c.name}")
    docker("kill", c.name)  # it still exists, stopped: not running means no runtime posture
    _, latency = poll(
        lambda: not live_daemon.series("ztmon_container_readonly_rootfs", container_id=c.id),
        timeout=10,
        what=f"the killed {c.name} to leave /metrics",
    )
    record_latency("docker kill -> series gone from /metrics", latency)
    assert latency < MAX_LATENCY, f"took {latency:.3f} s"
    assert not live_daemon.series("ztmon_finding_info", container_id=c.id)


def test_renamed_container_shows_its_new_name(live_daemon: Daemon, containers: Containers) -> None:
    c = containers.run("oldname", "--cap-add", "SYS_ADMIN")
    poll(lambda: live_daemon.series("ztmon_finding_info", container=c.name), timeout=10, what=c.name)
    new = f"{containers.prefix}newname"
    containers.names.append(new)
    docker("rename", c.name, new)

    def renamed() -> bool:
        text = live_daemon.metrics_text()
        return bool(live_daemon.series("ztmon_finding_info", text, container=new)) and not (
            live_daemon.series("ztmon_finding_info", text, container=c.name)
        )

    _, latency = poll(renamed, timeout=10, what=f"{c.name} renamed to {new} on /metrics")
    assert latency < MAX_LATENCY, f"took {latency:.3f} s"
    assert all(s.labels["container_id"] == c.id for s in live_daemon.series("ztmon_finding_info", container=new))


def test_kubernetes_labels_make_a_pod_resource(live_daemon: Daemon, containers: Containers) -> None:
    ns, pod = f"{PREFIX}ns", f"{containers.prefix}pod"
    c = containers.run(
        "k8s",
        "--label", f"io.kubernetes.pod.namespace={ns}",
        "--label", f"io.kubernetes.pod.name={pod}",
        "--label", "io.kubernetes.container.name=app",
        "--cap-add", "SYS_ADMIN",
    )  # fmt: skip
    report, _ = scan_json("--source", "docker")
    mine = [f for f in report["findings"] if f["resource"]["container_id"] == c.id]
    assert mine
    for f in mine:
        assert {k: f["resource"][k] for k in ("kind", "namespace", "name", "container")} == {
            "kind": "Pod",
            "namespace": ns,
            "name": pod,
            "container": "app",
        }
    (series, *_), _ = poll(
        lambda: live_daemon.series("ztmon_finding_info", container_id=c.id), timeout=10, what="the pod on /metrics"
    )
    assert (series.labels["namespace"], series.labels["pod"], series.labels["container"]) == (ns, pod, "app")
    assert {s.labels["id"] for s in live_daemon.series("ztmon_finding_info", container_id=c.id)} == {
        f["id"] for f in mine
    }


def test_port_in_use_exits_2(daemons: Daemons) -> None:
    first = daemons.start()
    proc = ztmon_cli(
        "run", env={"ZTMON_SERVER__PORT": str(first.port), "ZTMON_SERVER__ADDRESS": "127.0.0.1"}, timeout=20
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "address already in use" in proc.stderr.lower(), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    first.assert_alive()


def test_container_started_during_initial_scan_is_not_missed(daemons: Daemons, containers: Containers) -> None:
    """The events subscription must reach back to the initial list, or the gap is blind until the resync."""
    containers.run("present")  # the initial scan has at least this one to inspect
    sockdir = Path(tempfile.mkdtemp(prefix="ztit-px-", dir="/tmp"))
    proxy = HoldingDockerProxy(sockdir / "docker.sock", hold=2.5)  # the first inspect takes 2.5 s
    proxy.start()
    try:
        d = daemons.start({"ZTMON_SOURCES__DOCKER__HOST": f"unix://{proxy.path}"}, ready=False)
        assert proxy.inspect_seen.wait(timeout=20), "the daemon never inspected a container"
        c = containers.run("during-scan", "--cap-add", "SYS_ADMIN")  # listed: no; subscribed: not yet
        wait_ready(d)
        poll(
            lambda: d.series("ztmon_finding_info", container_id=c.id),
            timeout=3,
            what="a container started during the initial scan on /metrics",
        )
    finally:
        proxy.close()
        shutil.rmtree(sockdir, ignore_errors=True)


def test_resync_catches_what_the_events_feed_missed(daemons: Daemons, containers: Containers) -> None:
    """With the events feed silenced, the periodic full relist alone still finds and forgets containers."""
    sockdir = Path(tempfile.mkdtemp(prefix="ztit-px-", dir="/tmp"))
    proxy = HoldingDockerProxy(sockdir / "docker.sock", block_events=True)
    proxy.start()
    try:
        d = daemons.start(
            {"ZTMON_SOURCES__DOCKER__HOST": f"unix://{proxy.path}", "ZTMON_ENGINE__RESYNC_INTERVAL_SECONDS": "1"}
        )
        c = containers.run("quiet", "--cap-add", "SYS_ADMIN")
        _, waited = poll(
            lambda: d.series("ztmon_finding_info", container_id=c.id), timeout=10, what="the resync to find it"
        )
        record_latency("events silenced, resync every 1 s: docker run -> /metrics", waited)
        assert waited < 3.0
        containers.remove(c)
        _, waited = poll(
            lambda: not d.series("ztmon_container_readonly_rootfs", container_id=c.id),
            timeout=10,
            what="the resync to forget it",
        )
        assert waited < 3.0
        assert d.value("ztmon_source_up", source="docker") == 1
    finally:
        proxy.close()
        shutil.rmtree(sockdir, ignore_errors=True)
