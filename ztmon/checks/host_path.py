"""host-path: bind mounts of sensitive host paths (the root, /etc, /proc, runtime sockets, ...).

A mount matches when its host source is a listed path or lies below one ("/etc/ssl" matches "/etc";
"/" matches only "/" itself, otherwise every bind mount would). Runtime sockets and "/" are critical:
they are a direct path to root on the node, read-only or not.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "host-path"

# Exactly these host paths are critical (the node's root, or a directory holding runtime sockets) ...
_CRITICAL_EXACT = frozenset({"/", "/var/run", "/run"})
# ... and so is anything at or below these (runtime sockets and their directories).
_CRITICAL_TREES = frozenset(
    {
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/run/containerd",
        "/var/run/containerd",
        "/run/crio",
        "/var/run/crio",
        "/run/podman",
        "/var/run/podman",
    }
)


def _normalise(path: str) -> str:
    parts = [p for p in path.split("/") if p not in {"", "."}]
    return "/" + "/".join(parts)


def sensitive_match(path: str, sensitive: tuple[str, ...]) -> str | None:
    """The listed path that `path` equals or lies below; the most specific one wins."""
    p = _normalise(path)
    best: str | None = None
    for s in sensitive:
        s_n = _normalise(s)
        below = p == s_n or (s_n != "/" and p.startswith(s_n + "/"))
        if below and (best is None or len(s_n) > len(best)):
            best = s_n
    return best


@check(ID, severity=Severity.CRITICAL, title="Sensitive host path mounted")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    for c in snapshot.containers:
        for m in c.mounts:
            if m.type not in {"bind", "hostPath"}:
                continue
            match = sensitive_match(m.source, snapshot.policy.sensitive_host_paths)
            if match is None:
                continue
            critical = _normalise(m.source) in _CRITICAL_EXACT or match in _CRITICAL_TREES
            sev = Severity.CRITICAL if critical else Severity.HIGH
            yield finding(
                ID,
                sev,
                c,
                snapshot,
                f"container {c.name} mounts host path {m.source} at {m.destination}"
                + (" (read-only)" if m.read_only else ""),
                evidence={
                    "host_path": m.source,
                    "mount_path": m.destination,
                    "read_only": str(m.read_only).lower(),
                    "matched": match,
                },
                discriminator=f"{m.source}->{m.destination}",
            )
