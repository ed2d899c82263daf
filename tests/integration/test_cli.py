"""`ztmon scan` exit codes against the real dockerd: --fail-on, configuration errors, unknown sources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ztharness import PREFIX, Scenario, findings_of, scan_json, ztmon_cli

pytestmark = pytest.mark.integration

# Suppress both checks that can be critical (privileged, host-path) everywhere, and run-as-root on one
# scenario container by a name selector. Lines matter: suppressed_by names file:line of the rule.
SUPPRESS_CRITICAL = """\
suppressions:
  - check: privileged
    reason: integration test, privileged scenario
  - check: host-path
    reason: integration test, host-root scenario
  - check: run-as-root
    reason: selector test
    selector:
      name: "{prefix}s-default"
  - check: mutable-image
    reason: expired, so not applied
    expires: 2020-01-01
"""


@pytest.fixture
def suppress_critical(tmp_path: Path) -> Path:
    path = tmp_path / "suppress-critical.yaml"
    path.write_text(SUPPRESS_CRITICAL.format(prefix=PREFIX))
    return path


@pytest.mark.parametrize(
    ("fail_on", "use_config", "rc"),
    [
        ("high", False, 1),  # sysadmin, hostnet, secret ... are high
        ("critical", False, 1),  # hostroot mounts / (critical)
        ("critical", True, 0),  # both critical checks suppressed: nothing critical is open
        ("high", True, 1),  # ... but high findings still are
        ("never", False, 0),
    ],
)
def test_fail_on(scenario: Scenario, suppress_critical: Path, fail_on: str, use_config: bool, rc: int) -> None:
    config = ("--config", str(suppress_critical)) if use_config else ()
    report, proc = scan_json("--source", "docker", "--show-suppressed", "--fail-on", fail_on, *config)
    assert proc.returncode == rc, proc.stderr
    severities = {f["severity"] for f in report["findings"]}
    assert "high" in severities
    assert ("critical" in severities) is not use_config
    hostroot = scenario["hostroot"].name
    assert {f["check"] for f in findings_of(report, hostroot)} >= {"readonly-rootfs"}
    if use_config:
        (sup,) = [f for f in findings_of(report, hostroot, key="suppressed") if f["check"] == "host-path"]
        assert sup["severity"] == "critical"
        assert sup["suppressed_by"] == f"rule {suppress_critical}:4: integration test, host-root scenario"
    else:
        assert [f["severity"] for f in findings_of(report, hostroot) if f["check"] == "host-path"] == ["critical"]


def test_config_suppression_selector_and_expiry(scenario: Scenario, suppress_critical: Path) -> None:
    report, proc = scan_json("--source", "docker", "--show-suppressed", "--config", str(suppress_critical))
    default, user = scenario["default"].name, scenario["secret"].name
    assert "run-as-root" not in {f["check"] for f in findings_of(report, default)}
    (sup,) = [f for f in findings_of(report, default, key="suppressed") if f["check"] == "run-as-root"]
    assert sup["suppressed_by"] == f"rule {suppress_critical}:6: selector test"
    assert "run-as-root" in {f["check"] for f in findings_of(report, user)}  # the selector matched one name only
    # An expired rule is not applied, and says so.
    assert "mutable-image" in {f["check"] for f in findings_of(report, default)}
    assert not [f for f in report["suppressed"] if f["check"] == "mutable-image"]
    assert re.search(rf"{re.escape(str(suppress_critical))}:10: .*mutable-image.*expired", proc.stderr), proc.stderr


BAD_CONFIGS = [
    ("server:\n  port: 99999\n", 2, "server.port", "less than or equal to 65535"),
    ("log:\n  level: info\nengine:\n  resync_interval_seconds: 5\n  bogus: 1\n", 5, "engine.bogus", "Extra inputs"),
    ("log:\n  level: info\nsuppressions:\n  - check: privileged\n", 4, "suppressions.0.reason", "Field required"),
    ("log:\n  level: loud\n", 2, "log.level", "Input should be"),
    ("server:\n  port: [1,\n", 3, "(yaml)", ""),
]


@pytest.mark.parametrize("command", ["scan", "run"])
@pytest.mark.parametrize("case", BAD_CONFIGS, ids=[b[2] for b in BAD_CONFIGS])
def test_bad_config_exits_2_naming_file_line_field(tmp_path: Path, command: str, case: tuple) -> None:
    text, line, field, message = case
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    proc = ztmon_cli(command, "--config", str(path), timeout=30)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    pattern = rf"^\s*{re.escape(str(path))}:{line}: {re.escape(field)}: .*{re.escape(message)}"
    assert re.search(pattern, proc.stderr, re.MULTILINE), proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_source_exits_2() -> None:
    proc = ztmon_cli("scan", "--source", "nope", timeout=30)
    assert proc.returncode == 2
    assert "nope" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_stopped_container_only_with_include_stopped(scenario: Scenario, scan_report: dict) -> None:
    """The privileged scenario container is created, never started: reported only when asked to."""
    name = scenario["privileged"].name
    assert [f["check"] for f in findings_of(scan_report, name) if f["check"] == "privileged"] == ["privileged"]
    default, _ = scan_json("--source", "docker")
    assert findings_of(default, name) == []
    assert findings_of(default, scenario["default"].name)  # while running ones are


def test_scan_with_requested_source_down_does_not_pass() -> None:
    proc = ztmon_cli(
        "scan", "--source", "docker", "--fail-on", "high", "--output", "json",
        env={"ZTMON_SOURCES__DOCKER__HOST": "unix:///nonexistent.sock"},
        timeout=30,
    )  # fmt: skip
    assert "docker" in proc.stderr
    assert proc.returncode == 3, "a scan that could not reach its only source must not look clean"
