"""The JSON report (served on /findings and printed by `ztmon scan --output json`).

Schema (version 1) is documented in docs/report-schema.md; bump SCHEMA_VERSION on breaking changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from ztmon.model.findings import Finding, Report, SourceStatus

SCHEMA_VERSION = 1


def _ts(t: datetime | None) -> str | None:
    """RFC 3339 in UTC with a Z, whatever offset the clock (e.g. `--now`) was given in."""
    if t is None:
        return None
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return t.isoformat().replace("+00:00", "Z")


def finding_dict(f: Finding) -> dict[str, Any]:
    r = f.resource
    out: dict[str, Any] = {
        "id": f.id,
        "check": f.check,
        "severity": f.severity.label,
        "resource": {
            "kind": r.kind,
            "namespace": r.namespace,
            "name": r.name,
            "container": r.container,
            "container_id": r.container_id,
            "node": r.node,
        },
        "image": r.image,
        "message": f.message,
        "evidence": dict(f.evidence),
    }
    if f.suppressed_by:
        out["suppressed_by"] = f.suppressed_by
    return out


def _status(s: SourceStatus) -> dict[str, Any]:
    return {
        "name": s.name,
        "up": s.up,
        "last_success": _ts(s.last_success),
        "duration_seconds": round(s.duration_seconds, 6),
        "error": s.error,
    }


def report_dict(report: Report, *, show_suppressed: bool = True) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for f in report.findings:
        counts[f.severity.label] = counts.get(f.severity.label, 0) + 1
    return {
        "schema_version": SCHEMA_VERSION,
        "scan_id": report.scan_id,
        "taken_at": _ts(report.taken_at),
        "node": report.node,
        "checks_enabled": list(report.checks_enabled),
        "summary": {
            "open": len(report.findings),
            "suppressed": len(report.suppressed),
            "by_severity": counts,
            "containers": len(report.containers),
        },
        "findings": [finding_dict(f) for f in report.findings],
        "suppressed": [finding_dict(f) for f in report.suppressed] if show_suppressed else [],
        "listeners": [
            {
                "namespace": li.namespace,
                "pod": li.pod,
                "container": li.container,
                "container_id": li.container_id,
                "address": li.address,
                "address_scope": li.address_scope,
                "port": li.port,
                "protocol": li.protocol,
                "tls": li.tls,
                "app_protocol": li.app_protocol,
                "reason": li.reason,
                "tls_version": li.tls_version,
                "subject_cn": li.subject_cn,
                "not_after": _ts(li.not_after),
                "process": li.process,
            }
            for li in report.listeners
        ],
        "sources": [_status(s) for s in report.sources],
        "checks": [
            {"name": c.name, "ok": c.ok, "errors_total": c.errors_total, "error": c.error} for c in report.checks
        ],
    }


def dumps(report: Report, *, show_suppressed: bool = True, indent: bool = False) -> bytes:
    option = orjson.OPT_INDENT_2 if indent else 0
    return orjson.dumps(report_dict(report, show_suppressed=show_suppressed), option=option)
