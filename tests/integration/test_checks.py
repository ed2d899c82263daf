"""Every check, positive and negative, against real containers: the JSON report and the /metrics exposition.

One scenario container per setting (see conftest.scenario_specs); each differs from `default` in one
flag, so a finding that appears or disappears can only come from that flag.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from ztharness import AWS_KEY, URL_PASSWORD, Daemon, Scenario, docker, findings_of, scan_json, ztmon_cli

pytestmark = pytest.mark.integration

CHECKS = (
    "capabilities",
    "host-namespaces",
    "host-path",
    "mutable-image",
    "privilege-escalation",
    "privileged",
    "readonly-rootfs",
    "run-as-root",
    "secret-in-env",
)
SEVERITIES = ("info", "low", "medium", "high", "critical")
DOCS_METRICS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"

# (scenario container, check, {severity: evidence it must carry}); {} = no finding of that check at all.
# "{tag}" in evidence is the scenario image's tag.
CASES: list[tuple[str, str, dict[str, dict[str, str]]]] = [
    ("default", "readonly-rootfs", {"medium": {"read_only_rootfs": "false"}}),
    ("readonly", "readonly-rootfs", {}),
    ("privileged", "privileged", {"critical": {"privileged": "true"}}),
    ("default", "privileged", {}),
    ("default", "run-as-root", {"medium": {"user": "(unset: root)", "user_from": "image"}}),
    ("user1000", "run-as-root", {}),
    ("default", "privilege-escalation", {"medium": {"no_new_privileges": "false"}}),
    ("nnp", "privilege-escalation", {}),
    ("sysadmin", "capabilities", {"high": {"added": "SYS_ADMIN"}, "low": {"dropped": "(none)"}}),
    ("default", "capabilities", {"low": {"dropped": "(none)"}}),
    ("dropall", "capabilities", {}),
    ("hostnet", "host-namespaces", {"high": {"namespace": "network"}}),
    ("hostpid", "host-namespaces", {"high": {"namespace": "pid"}}),
    ("default", "host-namespaces", {}),
    ("hostroot", "host-path", {"critical": {"host_path": "/", "mount_path": "/host", "matched": "/"}}),
    ("tmpbind", "host-path", {}),
    (
        "secret",
        "secret-in-env",
        {"high": {"variables": "DB_PASSWORD", "env.DB_PASSWORD": "name suggests a secret and the value is a literal"}},
    ),
    (
        "secret-value",
        "secret-in-env",
        {
            "high": {
                "variables": "MIRROR,UPSTREAM_URL",
                "env.MIRROR": "value matches AWS Access Key",
                "env.UPSTREAM_URL": "value matches Basic Auth Credentials",
            }
        },
    ),
    ("notsecret", "secret-in-env", {}),
    ("default", "secret-in-env", {}),
    ("default", "mutable-image", {"low": {"tag": "{tag}"}}),
    ("latest", "mutable-image", {"medium": {"tag": "(none)"}}),
    ("byid", "mutable-image", {}),
]
CASE_IDS = [f"{check}:{'+' if want else '-'}{name}" for name, check, want in CASES]


def _evidence(want: dict[str, str], scenario: Scenario) -> dict[str, str]:
    tag = scenario.image.tag.rpartition(":")[2]
    return {k: v.replace("{tag}", tag) for k, v in want.items()}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_scan_json_finding(scan_report: dict[str, Any], scenario: Scenario, case: tuple) -> None:
    name, check, want = case
    c = scenario[name]
    mine = findings_of(scan_report, c.name)
    assert mine, f"{c.name} has no finding at all: the scan did not see it"  # every case has a witness
    got = [f for f in mine if f["check"] == check]
    assert Counter(f["severity"] for f in got) == Counter(list(want)), [f["message"] for f in got]
    for f in got:
        assert _evidence(want[f["severity"]], scenario).items() <= f["evidence"].items(), f
        assert f["resource"]["container_id"] == c.id


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_metrics_finding(scenario_daemon: Daemon, scan_report: dict[str, Any], scenario: Scenario, case: tuple) -> None:
    name, check, want = case
    c = scenario[name]
    text = scenario_daemon.metrics_text()
    assert scenario_daemon.series("ztmon_container_readonly_rootfs", text, container=c.name, container_id=c.id)
    got = scenario_daemon.series("ztmon_finding_info", text, container=c.name, check=check)
    assert Counter(s.labels["severity"] for s in got) == Counter(list(want))
    # The daemon and a separate `ztmon scan` process give the same finding the same stable id.
    json_ids = {f["id"] for f in findings_of(scan_report, c.name) if f["check"] == check}
    assert {s.labels["id"] for s in got} == json_ids


def test_hardened_container_has_no_finding(
    scan_report: dict[str, Any], scenario_daemon: Daemon, scenario: Scenario
) -> None:
    c = scenario["hardened"]  # --read-only --user 1000 no-new-privileges --cap-drop ALL, run by image id
    assert findings_of(scan_report, c.name) == []
    text = scenario_daemon.metrics_text()
    assert scenario_daemon.value("ztmon_container_readonly_rootfs", text, container=c.name) == 1  # it was seen
    assert scenario_daemon.series("ztmon_finding_info", text, container=c.name) == []


@pytest.mark.parametrize(("name", "expected"), [("readonly", 1), ("hardened", 1), ("default", 0), ("secret", 0)])
def test_readonly_rootfs_gauge(scenario_daemon: Daemon, scenario: Scenario, name: str, expected: int) -> None:
    c = scenario[name]
    labels = {"namespace": "", "pod": "", "container": c.name, "container_id": c.id}
    assert scenario_daemon.value("ztmon_container_readonly_rootfs", **labels) == expected


def test_json_resource_fields(scan_report: dict[str, Any], scenario: Scenario) -> None:
    c = scenario["privileged"]
    (f,) = [f for f in findings_of(scan_report, c.name) if f["check"] == "privileged"]
    assert f["resource"] == {
        "kind": "Container",
        "namespace": "",
        "name": c.name,
        "container": c.name,
        "container_id": c.id,
        "node": scan_report["node"],
    }
    assert f["image"] == scenario.image.tag
    assert f["severity"] == "critical"
    assert c.name in f["message"]
    assert scan_report["schema_version"] == 1
    assert set(CHECKS) <= set(scan_report["checks_enabled"])


def test_json_summary_counts(scan_report: dict[str, Any]) -> None:
    summary = scan_report["summary"]
    assert summary["open"] == len(scan_report["findings"])
    assert summary["suppressed"] == len(scan_report["suppressed"])
    assert summary["by_severity"] == dict(Counter(f["severity"] for f in scan_report["findings"]))
    assert all(f.get("suppressed_by") for f in scan_report["suppressed"])
    assert not any("suppressed_by" in f for f in scan_report["findings"])


def test_containers_gauge_counts_the_per_container_series(scenario_daemon: Daemon, scenario: Scenario) -> None:
    text = scenario_daemon.metrics_text()
    ids = {s.labels["container_id"] for s in scenario_daemon.series("ztmon_container_readonly_rootfs", text)}
    assert {c.id for c in scenario.containers.values()} <= ids
    assert scenario_daemon.value("ztmon_containers", text, runtime="docker") == len(ids)


def test_image_by_id_reference(scan_report: dict[str, Any], scenario: Scenario) -> None:
    """The by-id containers really run the same image, referenced as sha256:..."""
    c = scenario["byid"]
    assert docker("inspect", "--format", "{{.Config.Image}}", c.name) == scenario.image.id
    assert all(f["image"] == scenario.image.id for f in findings_of(scan_report, c.name))


def _documented_labels(metric: str) -> set[str] | None:
    """The label column of `metric`'s row in docs/metrics.md (None: no row): the exposition must match it."""
    for line in DOCS_METRICS.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"| `{metric}` |"):
            return set(re.findall(r"`([a-z_]+)`", line.split("|")[3]))
    return None


def test_finding_info_labels(scenario_daemon: Daemon, scenario: Scenario) -> None:
    c = scenario["sysadmin"]
    text = scenario_daemon.metrics_text()
    series = scenario_daemon.series("ztmon_finding_info", text, container=c.name)
    report = scenario_daemon.findings()
    by_id = {f["id"]: f for f in findings_of(report, c.name)}
    assert series
    assert {s.labels["id"] for s in series} == set(by_id)
    for s in series:
        assert s.value == 1
        f = by_id[s.labels["id"]]
        expected = {
            "id": f["id"],
            "check": f["check"],
            "severity": f["severity"],
            "namespace": "",
            "pod": "",
            "container": c.name,
            "container_id": c.id,
            "image": scenario.image.tag,
        }
        assert {k: s.labels.get(k) for k in expected} == expected
        # Any further label (kind, name, ...) describes the same resource as the JSON report.
        for key in set(s.labels) & set(f["resource"]):
            assert s.labels[key] == f["resource"][key], key


def test_every_metric_family_is_documented_with_its_labels(scenario_daemon: Daemon) -> None:
    text = scenario_daemon.metrics_text()
    problems = []
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("ztmon_"):
            continue
        documented = next(
            (d for n in (family.name, family.name + "_total") if (d := _documented_labels(n)) is not None), None
        )
        if documented is None:
            problems.append(f"{family.name}: not in docs/metrics.md")
            continue
        exposed = {k for s in family.samples for k in s.labels}
        if family.samples and exposed != documented:
            problems.append(f"{family.name}: exposed {sorted(exposed)}, documented {sorted(documented)}")
    assert problems == []


def test_findings_gauge_covers_every_enabled_check(scenario_daemon: Daemon) -> None:
    text = scenario_daemon.metrics_text()
    enabled = set(scenario_daemon.findings()["checks_enabled"])
    assert set(CHECKS) <= enabled
    gauge = scenario_daemon.series("ztmon_findings", text)
    assert {(s.labels["check"], s.labels["severity"]) for s in gauge} >= {(c, s) for c in enabled for s in SEVERITIES}
    assert {s.labels["check"] for s in gauge} == enabled
    assert {s.labels["check"] for s in scenario_daemon.series("ztmon_findings_suppressed", text)} == enabled
    # Same scrape: the counts agree with the one-series-per-finding gauge.
    info = Counter(
        (s.labels["check"], s.labels["severity"]) for s in scenario_daemon.series("ztmon_finding_info", text)
    )
    for s in gauge:
        assert s.value == info[(s.labels["check"], s.labels["severity"])], s


def test_sources_up(scenario_daemon: Daemon) -> None:
    text = scenario_daemon.metrics_text()
    assert scenario_daemon.value("ztmon_source_up", text, source="docker") == 1
    assert scenario_daemon.value("ztmon_source_up", text, source="host") == 1
    assert scenario_daemon.value("ztmon_ready", text) == 1


def test_secret_values_appear_nowhere(scenario_daemon: Daemon, scenario: Scenario) -> None:
    secrets = ("hunter2", AWS_KEY, URL_PASSWORD)
    c = scenario["secret"]
    assert "DB_PASSWORD=hunter2" in docker("inspect", "--format", "{{json .Config.Env}}", c.name)  # it is there
    assert AWS_KEY in docker("inspect", "--format", "{{json .Config.Env}}", scenario["secret-value"].name)
    places: dict[str, str] = {}
    for output in ("json", "table"):
        proc = ztmon_cli("scan", "--source", "docker", "--show-suppressed", "--output", output)
        assert c.name in proc.stdout, proc.stderr
        places[f"scan --output {output} stdout"] = proc.stdout
        places[f"scan --output {output} stderr"] = proc.stderr
    report, _ = scan_json("--source", "docker")
    assert [f["check"] for f in findings_of(report, c.name) if f["check"] == "secret-in-env"] == ["secret-in-env"]
    places["/metrics"] = scenario_daemon.metrics_text()
    places["/findings"] = scenario_daemon.request("/findings")[1].decode()
    places["daemon log"] = scenario_daemon.log_text()
    assert "DB_PASSWORD" in places["/findings"]
    assert "DB_PASSWORD" in places["daemon log"]  # the finding_open line names the variable ...
    leaks = [(where, s) for where, text in places.items() for s in secrets if s in text]
    assert leaks == []  # ... but no value is anywhere
