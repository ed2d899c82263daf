"""Findings and the Report: what checks produce and what every sink renders."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from ztmon.model.baseline import BaselineSummary
from ztmon.model.kube import KubeStates


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
    # Kubernetes: the pod's owner (Deployment, StatefulSet, ...), and file:line of a manifest.
    # Not part of the identity: kind/name already name the workload for manifests and the pod at runtime.
    workload_kind: str = ""
    workload: str = ""
    origin: str = ""

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
    odd_inputs: tuple[tuple[str, int], ...] = ()  # cumulative skipped odd items by kind (sources only)


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
    capabilities_effective: tuple[str, ...] | None = None  # observed from /proc; None = not observed


@dataclass(frozen=True, slots=True)
class ListenerState:
    """One listening socket as metrics and tables show it, resolved to its workload (procfs source)."""

    namespace: str
    pod: str
    container: str  # "" for the node's own listeners
    container_id: str
    address: str
    address_scope: str  # all | loopback | specific
    port: int
    protocol: str  # tcp | udp
    tls: str  # tls | plaintext | unknown
    app_protocol: str = ""  # http, redis, smtp, ... as the probe recognised it
    reason: str = ""
    tls_version: str = ""
    subject_cn: str = ""
    not_after: datetime | None = None
    probe_duration_seconds: float | None = None  # None = not probed (UDP, cached elsewhere, ...)
    process: str = ""  # comm of a process holding the socket
    pid: int = 0


@dataclass(frozen=True, slots=True)
class FlowState:
    """Plaintext packets seen on the wire to one listener (cumulative since the agent started)."""

    namespace: str
    pod: str
    container: str
    port: int
    protocol: str
    packets: int


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
    listeners: tuple[ListenerState, ...] = ()
    flows: tuple[FlowState, ...] = ()
    kube: KubeStates = field(default_factory=KubeStates)  # secrets, certificates, segmentation, watches
    baseline: BaselineSummary | None = None  # drift, writable-layer changes, modes, loaded documents

    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)
