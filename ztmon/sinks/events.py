"""Finding events: the diff of two reports by finding id, and the JSON payloads the MQTT sink publishes.

Pure (no I/O): the clock and the event-id source are parameters, so tests are tables. The schema is
documented in docs/events.md; bump SCHEMA_VERSION on a breaking change (a new optional key is not one).

Why the previous state is a mapping of JSON records and not of `Finding` objects: it is persisted in
the outbox database and read back after a restart, so a finding that was resolved while the daemon was
down still gets its `resolved` event, with the details it had when it was last seen.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

from ztmon.model.findings import Finding, Report, Severity

SCHEMA_VERSION = 1
STATUS_ONLINE = b"online"
STATUS_OFFLINE = b"offline"
_TOPIC_UNSAFE = str.maketrans(dict.fromkeys("/+#\x00", "_"))
_MESSAGE_LIMIT_WHEN_TRUNCATED = 512

Record = Mapping[str, Any]  # a finding as published under "finding" (JSON-ready)


class EventType(StrEnum):
    OPENED = "opened"
    RESOLVED = "resolved"
    CHANGED = "changed"


def ts(t: datetime) -> str:
    """RFC 3339 in UTC with a Z, as the JSON report writes times."""
    return t.isoformat().replace("+00:00", "Z")


class EventIds:
    """UUIDv7 (RFC 9562) strings: unique, and sortable by creation time within one process.

    Within the same millisecond the 12-bit `rand_a` field is a counter, so ids made in one process never
    sort out of creation order. Consumers de-duplicate by this id (delivery is at-least-once).
    """

    def __init__(self, *, clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000) -> None:
        self._clock_ms = clock_ms
        self._last_ms = -1
        self._counter = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            ms = self._clock_ms()
            if ms <= self._last_ms:
                ms = self._last_ms
                self._counter += 1
                if self._counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                    ms += 1
                    self._counter = 0
            else:
                self._counter = 0
            self._last_ms = ms
            counter = self._counter
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
        return str(uuid.UUID(int=value))


def finding_record(f: Finding) -> dict[str, Any]:
    """The `finding` object of an event. Evidence holds facts (names, settings), never secret values."""
    r = f.resource
    return {
        "id": f.id,
        "check": f.check,
        "severity": f.severity.label,
        "message": f.message,
        "resource": {
            "kind": r.kind,
            "namespace": r.namespace,
            "pod": r.pod,
            "name": r.name,
            "container": r.container,
            "container_id": r.container_id,
            "image": r.image,
        },
        "evidence": dict(f.evidence),
    }


@dataclass(frozen=True, slots=True)
class Tracked:
    """What the sink remembers of an open finding between reports (and across restarts)."""

    finding: Record
    opened_at: str

    def to_json(self) -> bytes:
        return orjson.dumps({"finding": self.finding, "opened_at": self.opened_at})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Tracked:
        data = orjson.loads(raw)
        return cls(finding=data["finding"], opened_at=str(data["opened_at"]))


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    event_id: str
    finding: Record
    cluster: str
    node: str
    scan_id: str
    occurred_at: str  # when the scan that saw the change was taken
    emitted_at: str  # when this event was made (a replay keeps it)
    opened_at: str
    previous: Record | None = None  # changed: the severity and evidence before
    changes: tuple[str, ...] = ()  # changed: which of "severity", "evidence"
    resolution: str = ""  # resolved: "not_observed" | "suppressed"
    suppressed_by: str = ""
    truncated: bool = False

    @property
    def finding_id(self) -> str:
        return str(self.finding["id"])

    @property
    def check(self) -> str:
        return str(self.finding["check"])

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "event_id": self.event_id,
            "type": self.type.value,
            "cluster": self.cluster,
            "node": self.node,
            "scan_id": self.scan_id,
            "occurred_at": self.occurred_at,
            "emitted_at": self.emitted_at,
            "opened_at": self.opened_at,
            "finding": self.finding,
        }
        if self.type is EventType.CHANGED:
            out["changes"] = list(self.changes)
            out["previous"] = self.previous
        if self.type is EventType.RESOLVED:
            out["resolution"] = self.resolution
            if self.suppressed_by:
                out["suppressed_by"] = self.suppressed_by
        if self.truncated:
            out["truncated"] = True
        return out

    def to_json(self) -> bytes:
        return orjson.dumps(self.payload())


@dataclass(frozen=True, slots=True)
class Diff:
    events: tuple[Event, ...]
    state: dict[str, Tracked]  # the open findings after this report
    upserts: dict[str, Tracked] = field(default_factory=dict)  # entries of `state` that are new or changed
    deletes: tuple[str, ...] = ()  # ids no longer open


def _changes(before: Record, after: Record) -> tuple[str, ...]:
    out = []
    if before.get("severity") != after.get("severity"):
        out.append("severity")
    if before.get("evidence") != after.get("evidence"):
        out.append("evidence")
    return tuple(out)


def hold_resolutions(report: Report) -> bool:
    """True while a source has never succeeded in this process: its findings are unknown, not resolved.

    After a restart the persisted state says which findings were open; if the container runtime is not
    reachable yet, its findings are simply missing from the report. Resolving them would send a burst of
    false `resolved` events (and `opened` again a minute later).
    """
    return any(not s.up and s.last_success is None for s in report.sources)


def diff(
    previous: Mapping[str, Tracked],
    report: Report,
    *,
    cluster: str,
    now: datetime,
    new_id: Callable[[], str],
) -> Diff:
    """Events for the change from `previous` (open findings by id) to `report`, ordered per finding.

    Order of the list: resolved, then changed, then opened, each in the report's (or previous) order; the
    order only matters per finding, and one report gives at most one event per finding.
    """
    occurred, emitted = ts(report.taken_at), ts(now)
    node, scan_id = report.node, report.scan_id
    current = {f.id: f for f in report.findings}
    suppressed = {f.id: f for f in report.suppressed}
    events: list[Event] = []
    state: dict[str, Tracked] = {}
    upserts: dict[str, Tracked] = {}
    deletes: list[str] = []
    hold = hold_resolutions(report)

    for fid, tracked in previous.items():
        if fid in current:
            continue
        if hold and fid not in suppressed:
            state[fid] = tracked
            continue
        sup = suppressed.get(fid)
        events.append(
            Event(
                type=EventType.RESOLVED,
                event_id=new_id(),
                finding=tracked.finding,
                occurred_at=occurred,
                emitted_at=emitted,
                opened_at=tracked.opened_at,
                resolution="suppressed" if sup is not None else "not_observed",
                suppressed_by=sup.suppressed_by if sup is not None else "",
                cluster=cluster,
                node=node,
                scan_id=scan_id,
            )
        )
        deletes.append(fid)

    opened: list[Event] = []
    for fid, f in current.items():
        record = finding_record(f)
        before = previous.get(fid)
        if before is None:
            tracked = Tracked(finding=record, opened_at=occurred)
            opened.append(
                Event(
                    type=EventType.OPENED,
                    event_id=new_id(),
                    finding=record,
                    occurred_at=occurred,
                    emitted_at=emitted,
                    opened_at=occurred,
                    cluster=cluster,
                    node=node,
                    scan_id=scan_id,
                )
            )
            upserts[fid] = tracked
        else:
            tracked = before
            changes = _changes(before.finding, record)
            if changes:
                tracked = Tracked(finding=record, opened_at=before.opened_at)
                events.append(
                    Event(
                        type=EventType.CHANGED,
                        event_id=new_id(),
                        finding=record,
                        occurred_at=occurred,
                        emitted_at=emitted,
                        opened_at=before.opened_at,
                        previous={
                            "severity": before.finding.get("severity"),
                            "evidence": before.finding.get("evidence"),
                        },
                        changes=changes,
                        cluster=cluster,
                        node=node,
                        scan_id=scan_id,
                    )
                )
                upserts[fid] = tracked
            elif before.finding != record:
                tracked = Tracked(finding=record, opened_at=before.opened_at)  # message or resource detail
                upserts[fid] = tracked
        state[fid] = tracked
    events.extend(opened)
    return Diff(events=tuple(events), state=state, upserts=upserts, deletes=tuple(deletes))


def shrink(event: Event) -> Event:
    """The same event without its evidence and with a short message, for a payload over the size limit."""
    finding = dict(event.finding)
    finding["evidence"] = {}
    message = str(finding.get("message", ""))
    if len(message) > _MESSAGE_LIMIT_WHEN_TRUNCATED:
        finding["message"] = message[:_MESSAGE_LIMIT_WHEN_TRUNCATED] + "…"
    previous = event.previous
    if previous is not None:
        previous = {"severity": previous.get("severity"), "evidence": {}}
    return Event(
        type=event.type,
        event_id=event.event_id,
        finding=finding,
        cluster=event.cluster,
        node=event.node,
        scan_id=event.scan_id,
        occurred_at=event.occurred_at,
        emitted_at=event.emitted_at,
        opened_at=event.opened_at,
        previous=previous,
        changes=event.changes,
        resolution=event.resolution,
        suppressed_by=event.suppressed_by[:_MESSAGE_LIMIT_WHEN_TRUNCATED],
        truncated=True,
    )


def summary(report: Report, *, cluster: str, checks: Iterable[str] | None = None) -> dict[str, Any]:
    """The retained per-node summary: open findings by check and severity, and the last scan time.

    Every enabled check appears (with zeros), so a consumer can tell "no findings" from "not checked".
    """
    severities = [s.label for s in Severity]
    by_check: dict[str, dict[str, int]] = {
        c: dict.fromkeys(severities, 0) for c in (checks if checks is not None else report.checks_enabled)
    }
    by_severity = dict.fromkeys(severities, 0)
    for f in report.findings:
        by_check.setdefault(f.check, dict.fromkeys(severities, 0))[f.severity.label] += 1
        by_severity[f.severity.label] += 1
    return {
        "schema_version": SCHEMA_VERSION,
        "cluster": cluster,
        "node": report.node,
        "scan_id": report.scan_id,
        "last_scan_at": ts(report.taken_at),
        "open": len(report.findings),
        "suppressed": len(report.suppressed),
        "by_severity": by_severity,
        "by_check": dict(sorted(by_check.items())),
    }


def topic_level(text: str) -> str:
    """One topic level: `/`, `+`, `#` and NUL would change the topic's shape, so they become `_`."""
    return text.translate(_TOPIC_UNSAFE) or "_"


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str
    cluster: str
    node: str

    @property
    def base(self) -> str:
        return "/".join(
            [*(p for p in self.prefix.strip("/").split("/") if p), topic_level(self.cluster), topic_level(self.node)]
        )

    def finding(self, check: str) -> str:
        return f"{self.base}/findings/{topic_level(check)}"

    @property
    def summary(self) -> str:
        return f"{self.base}/summary"

    @property
    def status(self) -> str:
        return f"{self.base}/status"
