"""sinks.jsonreport: the /findings document (schema version 1)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from ztmon.checks.registry import all_checks
from ztmon.engine import pipeline
from ztmon.model.findings import SourceStatus
from ztmon.model.suppression import SuppressionRule
from ztmon.sinks import jsonreport
from ztmon.sources.docker import parse_inspect

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
FIXTURE = Path(__file__).parent / "fixtures" / "docker_inspect_web.json"
RESOURCE_KEYS = ["kind", "namespace", "name", "container", "container_id", "node"]


def report_of(snap, specs, *, rules=(), sources=()):
    return pipeline.cycle(
        snapshot=snap,
        runner=pipeline.CheckRunner(specs),
        rules=tuple(rules),
        known_checks=frozenset(all_checks()),
        sources=sources,
    ).report


def test_docker_container_resource_shape(container, snapshot, specs):
    c = container(privileged=True)
    (f,) = jsonreport.report_dict(report_of(snapshot(c), specs))["findings"]
    assert list(f["resource"]) == RESOURCE_KEYS
    assert f["resource"] == {
        "kind": "Container",
        "namespace": "",
        "name": "web",
        "container": "web",
        "container_id": c.id,
        "node": "node-1",
    }
    assert f["image"] == c.image


def test_pod_container_resource_shape(container, snapshot, specs):
    c = container(privileged=True, namespace="shop", pod="cart-7d9f", name="app")
    (f,) = jsonreport.report_dict(report_of(snapshot(c), specs))["findings"]
    assert f["resource"] == {
        "kind": "Pod",
        "namespace": "shop",
        "name": "cart-7d9f",
        "container": "app",
        "container_id": c.id,
        "node": "node-1",
    }


def test_finding_fields(container, snapshot, specs):
    (f,) = jsonreport.report_dict(report_of(snapshot(container(host_pid=True)), specs))["findings"]
    assert set(f) == {"id", "check", "severity", "resource", "image", "message", "evidence"}
    assert (f["check"], f["severity"]) == ("host-namespaces", "high")
    assert f["evidence"] == {"namespace": "pid"}
    assert "suppressed_by" not in f


def test_summary_and_header(container, snapshot, specs):
    c = container(privileged=True, read_only_rootfs=False)
    doc = jsonreport.report_dict(report_of(snapshot(c, container(name="b", id="b" * 64)), specs))
    assert doc["schema_version"] == 1
    assert doc["taken_at"] == "2025-06-01T12:00:00Z"
    assert doc["node"] == "node-1"
    assert doc["checks_enabled"] == [spec.id for spec in specs]
    assert doc["summary"] == {
        "open": 2,
        "suppressed": 0,
        "by_severity": {"critical": 1, "medium": 1},
        "containers": 2,
    }


@pytest.mark.parametrize(("show", "listed"), [(True, 1), (False, 0)])
def test_show_suppressed_toggles_the_list_not_the_count(container, snapshot, show, listed, specs):
    rules = [SuppressionRule(check="privileged", reason="lab", origin="cfg:3")]
    doc = jsonreport.report_dict(
        report_of(snapshot(container(privileged=True)), specs, rules=rules), show_suppressed=show
    )
    assert doc["summary"]["suppressed"] == 1
    assert len(doc["suppressed"]) == listed
    if show:
        assert doc["suppressed"][0]["suppressed_by"] == "rule cfg:3: lab"


def test_sources_and_checks_status(snapshot, specs):
    sources = (
        SourceStatus("docker", up=False, last_success=None, duration_seconds=1.23456789, error="ConnectionError"),
        SourceStatus("host", up=True, last_success=NOW, duration_seconds=0.0),
    )
    doc = jsonreport.report_dict(report_of(snapshot(), specs, sources=sources))
    assert doc["sources"] == [
        {"name": "docker", "up": False, "last_success": None, "duration_seconds": 1.234568, "error": "ConnectionError"},
        {"name": "host", "up": True, "last_success": "2025-06-01T12:00:00Z", "duration_seconds": 0.0, "error": ""},
    ]
    assert {"name": "capabilities", "ok": True, "errors_total": 0, "error": ""} in doc["checks"]


@pytest.mark.parametrize("indent", [False, True])
def test_dumps_is_the_report_dict_as_json(container, snapshot, indent, specs):
    report = report_of(snapshot(container(privileged=True)), specs)
    assert orjson.loads(jsonreport.dumps(report, indent=indent)) == jsonreport.report_dict(report)


def test_dumps_indent_is_human_readable(snapshot, specs):
    assert b"\n  " in jsonreport.dumps(report_of(snapshot(), specs), indent=True)


def test_no_secret_value_in_json(snapshot, specs):
    c = parse_inspect(json.loads(FIXTURE.read_text(encoding="utf-8")))
    body = jsonreport.dumps(report_of(snapshot(c), specs))
    assert b"secret-in-env" in body
    for secret in (b"hunter2-very-secret", b"AKIAIOSFODNN7EXAMPLE"):
        assert secret not in body


def test_timestamps_are_utc_with_z_whatever_the_offset_given():
    from datetime import datetime, timedelta, timezone  # noqa: PLC0415

    from ztmon.sinks.jsonreport import _ts  # noqa: PLC0415

    t = datetime(2025, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert _ts(t) == "2025-06-01T12:00:00Z"
