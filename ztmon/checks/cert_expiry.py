"""cert-expiry: the certificate a TLS listener serves expires soon (warning) or very soon / has expired
(critical). Thresholds: `checks.policy.network.cert_warning_days` / `cert_critical_days`. Certificates in
Kubernetes TLS Secrets are judged by `k8s_cert_expiry` under the same id and thresholds.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks import _net, k8s_cert_expiry
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "cert-expiry"
_DAY = 86400.0


@check(ID, severity=Severity.CRITICAL, title="Served TLS certificate expires soon or has expired")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    net = snapshot.policy.network
    by_id = _net.containers_by_id(snapshot)
    reported: set[tuple[str, int]] = set()
    for li in snapshot.listeners:
        probe = li.probe
        if probe is None or probe.cert_not_after is None:
            continue
        key = (li.netns, li.port)
        if key in reported:
            continue
        days = (probe.cert_not_after - snapshot.taken_at).total_seconds() / _DAY
        if days >= net.cert_warning_days:
            continue
        reported.add(key)
        if days < 0:
            severity, state = Severity.CRITICAL, f"expired {-days:.0f} days ago"
        elif days < net.cert_critical_days:
            severity, state = Severity.CRITICAL, f"expires in {days:.1f} days"
        else:
            severity, state = Severity.MEDIUM, f"expires in {days:.0f} days"
        subject = probe.cert_subject_cn or "(no CN)"
        yield Finding.make(
            check=ID,
            severity=severity,
            resource=_net.listener_resource(li, by_id.get(li.container_id), snapshot),
            message=f"certificate {subject} served on {_net.where(li)} {state}",
            evidence={
                **_net.evidence(li),
                "subject_cn": subject,
                "not_after": probe.cert_not_after.isoformat().replace("+00:00", "Z"),
                "days_left": f"{days:.1f}",
            },
            discriminator=f"{li.protocol}/{li.port}",
        )
    yield from k8s_cert_expiry.findings(snapshot)
