"""Shared by the Kubernetes/offline unit tests: the manifest corpus, scanned at a fixed clock."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path

from ztmon import settings
from ztmon.engine import offline
from ztmon.model.findings import Finding

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "manifests"
BAD = FIXTURES / "manifests-bad"
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def defaults() -> settings.Loaded:
    return settings.load(None, environ_path=False)


def scan(*paths: Path, now: datetime = NOW) -> offline.OfflineScan:
    return offline.scan_files(defaults(), list(paths), now=now)


@functools.cache
def corpus_scan() -> offline.OfflineScan:
    return scan(CORPUS)


def found(check: str, *, scan_result: offline.OfflineScan | None = None) -> dict[tuple[str, str, str], Finding]:
    """{(kind, ns/name, container): finding} of one check over the corpus."""
    report = (scan_result or corpus_scan()).report
    return {
        (f.resource.kind, f"{f.resource.namespace}/{f.resource.name}", f.resource.container): f
        for f in report.findings
        if f.check == check
    }
