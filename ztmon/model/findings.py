"""Findings and the Report: what checks produce and what every sink renders."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime


class Severity(enum.IntEnum):
    """Ordered so that `--fail-on high` means `severity >= HIGH`."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (one of {names})") from None


@dataclass(frozen=True, slots=True)
class Resource:
    """What a finding is about. For a Docker container: kind "Container", name = container name."""

    kind: str
    name: str
    namespace: str = ""
    container: str = ""
    container_id: str = ""
    node: str = ""
    pod: str = ""
    image: str = ""

    def identity(self) -> str:
        """Stable across restarts and nodes: a recreated container with the same name is the same resource.

        The runtime id and node are deliberately left out: they change when a container is recreated or
        a pod is rescheduled, and the problem (same workload, same setting) is the same problem.
        """
        return f"{self.kind}/{self.namespace}/{self.pod}/{self.name}/{self.container}"


def finding_id(check: str, resource: Resource, discriminator: str = "") -> str:
    """Stable hash of (check id, resource identity, discriminator such as a port, path or variable)."""
    raw = f"{check}\x1f{resource.identity()}\x1f{discriminator}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Finding:
    id: str
    check: str
    severity: Severity
    resource: Resource
    message: str
    evidence: tuple[tuple[str, str], ...] = ()  # ordered key/value facts; never a secret value
    suppressed_by: str = ""  # why it is suppressed ("" = open)

    @classmethod
    def make(
        cls,
        *,
        check: str,
        severity: Severity,
        resource: Resource,
        message: str,
        evidence: dict[str, str] | None = None,
        discriminator: str = "",
    ) -> Finding:
        return cls(
            id=finding_id(check, resource, discriminator),
            check=check,
            severity=severity,
            resource=resource,
            message=message,
            evidence=tuple((evidence or {}).items()),
        )


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    up: bool
    last_success: datetime | None
    duration_seconds: float
    error: str = ""  # one line, for people; never carries secret values


@dataclass(frozen=True, slots=True)
class CheckStatus:
    name: str
    ok: bool
    duration_seconds: float
    errors_total: int
    error: str = ""


@dataclass(frozen=True, slots=True)
class ContainerState:
    """Per-container facts that metrics expose besides findings."""

    runtime: str
    namespace: str
    pod: str
    name: str
    id: str
    image: str
    read_only_rootfs: bool


@dataclass(frozen=True, slots=True)
class Report:
    scan_id: str
    taken_at: datetime
    node: str
    checks_enabled: tuple[str, ...]
    findings: tuple[Finding, ...] = ()  # open findings
    suppressed: tuple[Finding, ...] = ()
    containers: tuple[ContainerState, ...] = ()
    sources: tuple[SourceStatus, ...] = ()
    sinks: tuple[SourceStatus, ...] = ()  # same shape: name, up, last success, duration, error
    checks: tuple[CheckStatus, ...] = ()
    cycles_total: int = 0

    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)
