"""alerts/: the generated rule file, its promtool tests, the runbook and the example Alertmanager config."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from opslib import (
    ALERTS,
    AM_EXAMPLE,
    CHART,
    NOT_ZTMON_METRICS,
    ROOT,
    RULE_TESTS,
    RULES,
    RUNBOOK,
    alert_names,
    documented_metrics,
    load_yaml,
    metric_names,
    ops_config,
    rules,
    run,
)

SEVERITIES = {"critical", "warning", "info"}


def test_committed_rules_are_what_the_generator_writes() -> None:
    proc = subprocess.run(
        [sys.executable, str(ALERTS / "generate.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_chart_carries_the_same_rules() -> None:
    assert (CHART / "files" / "ztmon.rules.yml").read_text() == RULES.read_text()


def test_promtool_check_rules(promtool: str) -> None:
    out = run([promtool, "check", "rules", str(RULES)]).stdout
    assert f"SUCCESS: {len(rules())} rules found" in out


def test_promtool_test_rules(promtool: str) -> None:
    run([promtool, "test", "rules", str(RULE_TESTS)])


def test_every_alert_has_a_firing_and_a_non_firing_case() -> None:
    cases: dict[str, set[str]] = defaultdict(set)
    for t in load_yaml(RULE_TESTS)["tests"]:
        for case in t.get("alert_rule_test", []):
            cases[case["alertname"]].add("fires" if case.get("exp_alerts") else "silent")
    missing = {a: {"fires", "silent"} - cases[a] for a in alert_names() if cases[a] != {"fires", "silent"}}
    assert not missing, f"alerts without a firing or a non-firing promtool case: {missing}"
    assert set(cases) <= set(alert_names()), f"tests for alerts that do not exist: {set(cases) - set(alert_names())}"


@pytest.mark.parametrize("rule", rules(), ids=lambda r: r["alert"])
def test_alert_carries_severity_summary_description_and_runbook(rule: dict) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    ann = rule["annotations"]
    assert set(ann) == {"summary", "description", "runbook_url"}
    assert ann["summary"].strip()
    assert "{{" not in ann["summary"], "summaries are static; details go in the description"
    assert re.search(r"\{\{[^}]*\$(labels\.\w+|value|labels)", ann["description"]), "description names no label"
    assert ann["runbook_url"] == f"{ops_config()['runbook_url']}#{rule['alert'].lower()}"


def _runbook_sections() -> dict[str, str]:
    parts = re.split(r"^## (\w+)\s*$", RUNBOOK.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_runbook_has_one_section_per_alert_and_no_other() -> None:
    assert sorted(_runbook_sections()) == sorted(alert_names())


@pytest.mark.parametrize("alert", alert_names())
def test_runbook_section_says_meaning_impact_diagnosis_fix(alert: str) -> None:
    body = _runbook_sections()[alert]
    for part in ("**Meaning:**", "**Impact:**", "**Diagnosis:**", "**Fix:**"):
        assert part in body, f"runbook section {alert} lacks {part}"


def test_every_selector_carries_the_configured_job_selector() -> None:
    selector = ops_config()["selector"]
    for r in rules():
        for m in re.finditer(r"\b(ztmon_\w+|up)\s*(\{[^}]*\})?", r["expr"]):
            assert selector in (m.group(2) or ""), f"{r['alert']}: {m.group(0)!r} lacks {selector}"


def test_thresholds_come_from_the_config() -> None:
    t = ops_config()["thresholds"]
    exprs = {r["alert"]: r["expr"] for r in rules()}
    assert str(t["certificate_expiry_warning_days"] * 86400) in exprs["ZtmonCertificateExpiringSoon"]
    assert f"> {t['data_stale_seconds']}" in exprs["ZtmonDataStale"]
    assert f"> {t['mqtt_outbox_backlog_events']}" in exprs["ZtmonMqttOutboxBacklog"]
    fors = {r["alert"]: r["for"] for r in rules()}
    assert fors["ZtmonPrivilegedContainer"] == ops_config()["for"]["critical_finding"]
    assert fors["ZtmonNodeAgentDown"] == ops_config()["for"]["agent_down"]


def test_rules_use_only_documented_metrics() -> None:
    documented, files = documented_metrics()
    used = {m for r in rules() for m in metric_names(r["expr"])} - NOT_ZTMON_METRICS
    missing = sorted(used - documented)
    assert not missing, (
        f"alert rules use metrics not documented in {[str(f.relative_to(ROOT)) for f in files]}: {missing}"
    )


# -- Alertmanager ---------------------------------------------------------------------------------


def test_amtool_check_config(amtool: str) -> None:
    run([amtool, "check-config", str(AM_EXAMPLE)])


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": "ZtmonPrivilegedContainer", "severity": "critical", "namespace": "shop"}, "security-pager"),
        ({"alertname": "ZtmonWritableRootFilesystem", "severity": "warning", "namespace": "shop"}, "security-tickets"),
        ({"alertname": "ZtmonCertificateExpired", "severity": "critical"}, "security-pager"),
        ({"alertname": "ZtmonNodeAgentDown", "severity": "critical"}, "platform-pager"),
        ({"alertname": "ZtmonSourceDown", "severity": "warning"}, "platform-tickets"),
        ({"alertname": "ZtmonMqttOutboxBacklog", "severity": "warning"}, "platform-tickets"),
    ],
    ids=lambda v: v if isinstance(v, str) else v["alertname"],
)
def test_alertmanager_routes_by_severity_and_owner(amtool: str, labels: dict[str, str], receiver: str) -> None:
    args = [f"{k}={v}" for k, v in labels.items()]
    out = run([amtool, "config", "routes", "test", f"--config.file={AM_EXAMPLE}", *args]).stdout.strip()
    assert out == receiver


def test_alertmanager_example_groups_posture_by_namespace() -> None:
    route = load_yaml(AM_EXAMPLE)["route"]
    assert route["group_by"] == ["namespace"]
    for r in route["routes"]:
        for hook in (
            wc
            for rc in load_yaml(AM_EXAMPLE)["receivers"]
            if rc["name"] == r["receiver"]
            for wc in rc["webhook_configs"]
        ):
            assert hook["send_resolved"] is True


def test_alert_names_match_the_routes_of_the_example() -> None:
    """The platform route names ztmon's health alerts by regex: each of them must exist."""
    route = load_yaml(AM_EXAMPLE)["route"]["routes"][0]
    pattern = re.search(r'alertname=~"([^"]+)"', route["matchers"][0])
    assert pattern is not None
    health = [a for a in alert_names() if re.fullmatch(pattern.group(1), a)]
    assert set(health) >= {"ZtmonNodeAgentDown", "ZtmonSourceDown", "ZtmonDataStale", "ZtmonMqttOutboxBacklog"}
    assert not [a for a in health if "Certificate" in a or "Privileged" in a]


def test_runbook_links_resolve_to_files_that_exist() -> None:
    for target in re.findall(r"\]\(([^)#:]+)\)", RUNBOOK.read_text(encoding="utf-8")):
        assert (Path(RUNBOOK).parent / target).exists(), target
