"""`ztmon scan --files PATH...`: read manifests, run the checks once, print table, JSON or SARIF.

Problems reading input (a document that does not parse, a field of the wrong type) go to stderr as
`file:line: document N: message` and into the output (JSON `input.problems`, SARIF notifications); the
scan goes on. Exit 2 only when nothing could be read.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from ztmon.checks.registry import all_checks
from ztmon.engine import build, offline
from ztmon.model.findings import Severity
from ztmon.settings import Loaded
from ztmon.sinks import jsonreport, sarif

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _json(scan: offline.OfflineScan, *, show_suppressed: bool) -> bytes:
    report = scan.report
    d = jsonreport.report_dict(report, show_suppressed=show_suppressed)
    by_id = {f.id: f for f in (*report.findings, *report.suppressed)}
    for item in (*d["findings"], *d["suppressed"]):
        r = by_id[item["id"]].resource
        item["location"] = r.origin
    fr = scan.files
    d["input"] = {
        "files": fr.files,
        "documents": fr.documents,
        "objects": fr.objects,
        "skipped_kinds": dict(fr.unknown_kinds),
        "problems": [
            {"file": p.file, "document": p.document, "line": p.line, "message": p.message} for p in fr.problems
        ],
    }
    return orjson.dumps(d, option=orjson.OPT_INDENT_2)


def _sarif(scan: offline.OfflineScan) -> bytes:
    specs = all_checks()
    rules = [sarif.Rule(cid, specs[cid].title, specs[cid].severity) for cid in scan.report.checks_enabled]
    notes = [sarif.Notification(p.file, p.line, f"document {p.document}: {p.message}") for p in scan.files.problems]
    return sarif.dumps(scan.report, rules=rules, notifications=notes)


def run(
    loaded: Loaded,
    paths: list[Path],
    *,
    now: str | None,
    output: str,
    fail_on: str,
    show_suppressed: bool,
    stdin: Any = None,
) -> int:
    try:
        fixed = offline.parse_now(now) if now else None
        scan = offline.scan_files(loaded, paths, now=fixed, stdin=stdin if stdin is not None else sys.stdin)
    except build.UsageError as e:
        sys.stderr.write(f"ztmon: {e}\n")
        return EXIT_USAGE
    for p in scan.files.problems:
        sys.stderr.write(f"ztmon: {p}\n")
    if scan.nothing_read:
        sys.stderr.write("ztmon: nothing could be read from the given paths\n")
        return EXIT_USAGE
    report = scan.report
    if output == "json":
        sys.stdout.buffer.write(_json(scan, show_suppressed=show_suppressed) + b"\n")
    elif output == "sarif":
        sys.stdout.buffer.write(_sarif(scan) + b"\n")
    else:
        from ztmon import table  # noqa: PLC0415 - rich only for people

        table.print_report(report, show_suppressed=show_suppressed)
        fr = scan.files
        sys.stdout.write(
            f"{fr.files} files, {fr.documents} documents, {fr.objects} objects read; {len(fr.problems)} problems\n"
        )
    if fail_on != "never":
        worst = report.max_severity()
        if worst is not None and worst >= Severity.parse(fail_on):
            return EXIT_FINDINGS
    return EXIT_OK
