"""Log sink: one structured line per finding opened or resolved (an audit trail in the log pipeline)."""

from __future__ import annotations

import structlog

from ztmon.model.findings import Finding, Report
from ztmon.sinks.base import Sink

log = structlog.get_logger("ztmon.findings")


class LogSink(Sink):
    name = "log"

    def __init__(self) -> None:
        self._open: dict[str, Finding] = {}
        self._first = True

    async def publish(self, report: Report) -> None:
        current = {f.id: f for f in report.findings}
        for fid, f in current.items():
            if fid not in self._open:
                log.info(
                    "finding_opened" if not self._first else "finding_open",
                    finding_id=fid,
                    check=f.check,
                    severity=f.severity.label,
                    kind=f.resource.kind,
                    namespace=f.resource.namespace,
                    name=f.resource.name,
                    container=f.resource.container,
                    message=f.message,
                )
        for fid, f in self._open.items():
            if fid not in current:
                log.info(
                    "finding_resolved",
                    finding_id=fid,
                    check=f.check,
                    kind=f.resource.kind,
                    namespace=f.resource.namespace,
                    name=f.resource.name,
                    container=f.resource.container,
                )
        self._open = current
        self._first = False
