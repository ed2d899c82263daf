"""SARIF 2.1.0 for `ztmon scan --files ... --output sarif`, as GitHub code scanning reads it.

One rule per enabled check (id, title, default level and `security-severity`), one result per finding with
a physical location (the manifest file and the line of its document) when the finding came from a file,
and a logical location naming the Kubernetes object always. `partialFingerprints` carries the finding's
stable id, so code scanning tracks the same problem across runs. Documents that could not be read are
`toolExecutionNotifications` of the invocation. Suppressed findings are listed with a `suppressions`
entry (SARIF's way to keep them visible but closed).

Validated against the OASIS schema (sarif-schema-2.1.0.json) in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import orjson

from ztmon import __version__
from ztmon.model.findings import Finding, Report, Severity

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/ztmon/ztmon"

# GitHub ranks security alerts by `security-severity` (0-10): >= 9 critical, >= 7 high, >= 4 medium.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    title: str
    severity: Severity


@dataclass(frozen=True, slots=True)
class Notification:
    """A problem reading input: file, 1-based line (0 = unknown), message."""

    file: str
    line: int
    message: str


def artifact_uri(path: str, base: Path | None = None) -> str:
    """A relative URI (to `base`, the current directory) where possible: what code scanning maps to the repo."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(base or Path.cwd())
        except ValueError:
            return p.as_uri()
    return quote(PurePosixPath(p.as_posix()).as_posix())


def _physical(origin: str, base: Path | None) -> dict[str, Any] | None:
    if not origin:
        return None
    file, _, line = origin.rpartition(":")
    if not file or not line.isdigit():
        file, line = origin, "0"
    loc: dict[str, Any] = {"artifactLocation": {"uri": artifact_uri(file, base), "uriBaseId": "%SRCROOT%"}}
    if int(line) > 0:
        loc["region"] = {"startLine": int(line)}
    return loc


def _rule_name(rule_id: str) -> str:
    return "".join(part.capitalize() for part in rule_id.split("-"))


def _result(f: Finding, index: dict[str, int], base: Path | None) -> dict[str, Any]:
    r = f.resource
    fqn = "/".join(x for x in (r.kind, r.namespace, r.name) if x) + (f"/{r.container}" if r.container else "")
    location: dict[str, Any] = {
        "logicalLocations": [{"name": r.container or r.name, "fullyQualifiedName": fqn, "kind": "resource"}]
    }
    physical = _physical(r.origin, base)
    if physical is not None:
        location["physicalLocation"] = physical
    out: dict[str, Any] = {
        "ruleId": f.check,
        "level": _LEVEL[f.severity],
        "message": {"text": f.message},
        "locations": [location],
        "partialFingerprints": {"ztmonFindingId/v1": f.id},
        "properties": {
            "severity": f.severity.label,
            "security-severity": _SECURITY_SEVERITY[f.severity],
            "resource": {"kind": r.kind, "namespace": r.namespace, "name": r.name, "container": r.container},
            "evidence": dict(f.evidence),
        },
    }
    if f.check in index:
        out["ruleIndex"] = index[f.check]
    if f.suppressed_by:
        out["suppressions"] = [{"kind": "external", "justification": f.suppressed_by}]
    return out


def sarif_dict(
    report: Report,
    *,
    rules: Sequence[Rule],
    notifications: Sequence[Notification] = (),
    base: Path | None = None,
) -> dict[str, Any]:
    index = {r.id: i for i, r in enumerate(rules)}
    driver_rules = [
        {
            "id": r.id,
            "name": _rule_name(r.id),
            "shortDescription": {"text": r.title},
            "fullDescription": {"text": f"{r.title} (ztmon check {r.id}; see docs/checks.md)"},
            "helpUri": f"{INFORMATION_URI}/blob/main/docs/checks.md#{r.id}",
            "defaultConfiguration": {"level": _LEVEL[r.severity]},
            "properties": {
                "tags": ["security", "kubernetes"],
                "security-severity": _SECURITY_SEVERITY[r.severity],
            },
        }
        for r in rules
    ]
    notes = []
    for n in notifications:
        note: dict[str, Any] = {"level": "error", "message": {"text": n.message}}
        physical = _physical(f"{n.file}:{n.line}", base)
        if physical is not None:
            note["locations"] = [{"physicalLocation": physical}]
        notes.append(note)
    results = [_result(f, index, base) for f in (*report.findings, *report.suppressed)]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "ztmon",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": driver_rules,
                    }
                },
                "automationDetails": {"id": f"ztmon/{report.scan_id}"},
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "endTimeUtc": report.taken_at.isoformat().replace("+00:00", "Z"),
                        "toolExecutionNotifications": notes,
                    }
                ],
                "originalUriBaseIds": {"%SRCROOT%": {"uri": (base or Path.cwd()).as_uri() + "/"}},
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }


def dumps(
    report: Report,
    *,
    rules: Sequence[Rule],
    notifications: Sequence[Notification] = (),
    base: Path | None = None,
) -> bytes:
    return orjson.dumps(
        sarif_dict(report, rules=rules, notifications=notifications, base=base), option=orjson.OPT_INDENT_2
    )
