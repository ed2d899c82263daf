"""`ztmon scan --files`: the same checks over manifests, with a fixed clock, for CI pipelines.

No source runs and nothing is contacted: the files source builds the Snapshot, the pipeline runs the
enabled checks and suppressions once, and the caller renders the Report (table, JSON or SARIF).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ztmon.checks.registry import all_checks
from ztmon.engine import build, pipeline
from ztmon.model.findings import Report, SourceStatus
from ztmon.settings import Loaded
from ztmon.sources import files


@dataclass(frozen=True, slots=True)
class OfflineScan:
    report: Report
    files: files.FilesResult

    @property
    def nothing_read(self) -> bool:
        """Exit status 2: not one document could be read (missing paths, all invalid, or empty)."""
        return self.files.documents == 0


def parse_now(text: str) -> datetime:
    """`--now`: RFC 3339 (`2025-06-01T12:00:00Z`); a date alone means midnight UTC. Raises UsageError."""
    t = text.strip()
    try:
        value = datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise build.UsageError(f"--now: not an RFC 3339 time: {text!r} (e.g. 2025-06-01T12:00:00Z)") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def scan_files(loaded: Loaded, paths: Sequence[Path], *, now: datetime | None = None, stdin: Any = None) -> OfflineScan:
    settings = loaded.settings
    checks = build.enabled_checks(settings)
    start = time.perf_counter()
    result = files.load(paths, stdin=stdin)
    taken_at = now or datetime.now(UTC)
    snapshot = pipeline.build_snapshot(
        now=taken_at, node_name="", parts=[result.part], policy=build.policy_of(settings)
    )
    status = SourceStatus(
        "files",
        up=result.documents > 0,
        last_success=taken_at if result.documents else None,
        duration_seconds=time.perf_counter() - start,
        error=f"{len(result.problems)} problem(s) reading input" if result.problems else "",
    )
    cycle = pipeline.cycle(
        snapshot=snapshot,
        runner=pipeline.CheckRunner(checks, dict(settings.checks.severity)),
        rules=build.rules_of(loaded),
        known_checks=frozenset(all_checks()),
        sources=[status],
        cycles_total=1,
    )
    return OfflineScan(cycle.report, result)
