"""docs/report-schema.md is a contract: its JSON Schema accepts what the report writer produces (and its
own example), and rejects a report missing a required field."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from ztmon.model.findings import ListenerState, Report, SourceStatus
from ztmon.sinks import jsonreport

DOC = Path(__file__).resolve().parents[2] / "docs" / "report-schema.md"


def blocks() -> list[str]:
    return re.findall(r"```json\n(.*?)\n```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(blocks()[0])
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def report_with_listener() -> dict:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    listener = ListenerState(
        namespace="",
        pod="",
        container="web",
        container_id="a" * 64,
        address="0.0.0.0",
        address_scope="all",
        port=8080,
        protocol="tcp",
        tls="plaintext",
        app_protocol="http",
    )
    report = Report(
        scan_id="0123456789ab",
        taken_at=now,
        node="node-1",
        checks_enabled=("plaintext",),
        sources=(SourceStatus("procfs", up=True, last_success=now, duration_seconds=0.1),),
        listeners=(listener,),
    )
    return jsonreport.report_dict(report)


def test_schema_accepts_a_report_with_listeners():
    validator().validate(report_with_listener())


def test_schema_accepts_the_documented_example():
    examples = [json.loads(b) for b in blocks()[1:] if b.lstrip().startswith("{") and '"schema_version"' in b]
    assert examples
    for example in examples:
        validator().validate(example)


def test_schema_rejects_a_report_without_findings():
    doc = report_with_listener()
    del doc["findings"]
    with pytest.raises(jsonschema.ValidationError):
        validator().validate(doc)
