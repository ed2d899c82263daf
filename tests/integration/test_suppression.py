"""The `ztmon.io/ignore` container label: applied with a reason, refused (and reported) without one."""

from __future__ import annotations

import pytest
from ztharness import Daemon, Scenario, findings_of, poll, scan_json

pytestmark = pytest.mark.integration

CHECK = "readonly-rootfs"


def test_label_suppresses_in_json(scan_report: dict, scenario: Scenario) -> None:
    name = scenario["ignored"].name
    assert CHECK not in {f["check"] for f in findings_of(scan_report, name)}
    assert "privilege-escalation" in {f["check"] for f in findings_of(scan_report, name)}  # only the named check
    (sup,) = [f for f in findings_of(scan_report, name, key="suppressed") if f["check"] == CHECK]
    assert sup["suppressed_by"] == "label ztmon.io/ignore: test fixture"
    assert sup["severity"] == "medium"
    assert sup["resource"]["container_id"] == scenario["ignored"].id


def test_suppressed_hidden_without_show_suppressed(scenario: Scenario) -> None:
    report, _ = scan_json("--source", "docker")
    assert report["suppressed"] == []
    assert report["summary"]["suppressed"] >= 1
    assert CHECK not in {f["check"] for f in findings_of(report, scenario["ignored"].name)}


def test_label_without_reason_is_not_applied(scan_report: dict, scenario: Scenario) -> None:
    name = scenario["ignored-noreason"].name
    assert CHECK in {f["check"] for f in findings_of(scan_report, name)}
    assert findings_of(scan_report, name, key="suppressed") == []


def test_label_suppresses_on_metrics(scenario_daemon: Daemon, scenario: Scenario) -> None:
    ignored, noreason = scenario["ignored"].name, scenario["ignored-noreason"].name
    text = scenario_daemon.metrics_text()
    assert scenario_daemon.series("ztmon_finding_info", text, container=ignored, check=CHECK) == []
    assert scenario_daemon.series("ztmon_finding_info", text, container=ignored, check="privilege-escalation")
    assert scenario_daemon.series("ztmon_finding_info", text, container=noreason, check=CHECK)

    def consistent() -> tuple[float, int] | None:
        """The gauge counts what /findings lists (re-read if a cycle ran between the two requests)."""
        before = scenario_daemon.value("ztmon_findings_suppressed", check=CHECK)
        listed = [f for f in scenario_daemon.findings()["suppressed"] if f["check"] == CHECK]
        after = scenario_daemon.value("ztmon_findings_suppressed", check=CHECK)
        if before != after:
            return None
        assert ignored in {f["resource"]["name"] for f in listed}
        return before, len(listed)

    (gauge, listed), _ = poll(consistent, timeout=5, what="a stable ztmon_findings_suppressed")
    assert gauge >= 1
    assert gauge == listed


def test_label_without_reason_is_logged_once(scenario_daemon: Daemon, scenario: Scenario) -> None:
    name = scenario["ignored-noreason"].name
    problems = [
        e
        for e in scenario_daemon.log_events()
        if e.get("event") == "suppression_problem" and name in str(e.get("problem"))
    ]
    assert len(problems) == 1, problems
    assert problems[0]["level"] == "warning"
    assert "reason=" in problems[0]["problem"]
