"""What the scanning commands share: output and gate options, exit codes, one scan printed and judged."""

from __future__ import annotations

import asyncio
import sys
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ztmon.engine.running import Engine

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


class Output(StrEnum):
    table = "table"
    json = "json"
    sarif = "sarif"  # SARIF 2.1.0, with --files (GitHub code scanning)


class FailOn(StrEnum):
    info = "info"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"
    never = "never"


def err(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")


def scan_and_print(
    engine: Engine, *, output: Output, fail_on: FailOn, show_suppressed: bool, sources_requested: bool
) -> int:
    """One cycle, printed for people (table) or machines (JSON on stdout); returns the exit code.

    1 when an open finding is at or above `fail_on`; 3 when a source could not be read and the scan gates
    (`fail_on`) or named its sources: a gate that scanned nothing must not pass.
    """
    from ztmon.model.findings import Severity  # noqa: PLC0415
    from ztmon.sinks import jsonreport  # noqa: PLC0415

    async def once() -> object:
        try:
            return await engine.scan_once()
        finally:
            await engine.stop(2.0)

    asyncio.run(once())
    report = engine.report
    assert report is not None  # noqa: S101 - scan_once always sets it
    if output is Output.json:
        sys.stdout.buffer.write(jsonreport.dumps(report, show_suppressed=show_suppressed, indent=True) + b"\n")
    else:
        from ztmon import table  # noqa: PLC0415

        table.print_report(report, show_suppressed=show_suppressed)
    if fail_on is not FailOn.never:
        worst = report.max_severity()
        if worst is not None and worst >= Severity.parse(fail_on.value):
            return EXIT_FINDINGS
    down = [s for s in report.sources if not s.up]
    if down and (fail_on is not FailOn.never or sources_requested):
        for s in down:
            err(f"ztmon: source {s.name} could not be read: {s.error}")
        return EXIT_INCOMPLETE
    return EXIT_OK
