"""`cert-expiry` on TLS Secrets: certificates read from `tls.crt` (and other `*.crt` keys).

Not registered on its own: the id `cert-expiry` belongs to one module, which calls `findings()` here.
Offline the manifest holds the certificate; in cluster mode only when reading kubernetes.io/tls Secrets
is enabled (`kubernetes.read_tls_secrets`). Thresholds are the listener check's
(`policy.network.cert_warning_days` / `cert_critical_days`): expired or within the critical window is
critical (as for listeners), within the warning window medium. `--now` fixes the clock offline.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.kube_common import object_resource, ref
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "cert-expiry"


def findings(snapshot: Snapshot) -> Iterator[Finding]:
    net = snapshot.policy.network
    for cert in snapshot.kube.certificates:
        left = cert.not_after - snapshot.taken_at
        days = left.total_seconds() / 86400
        if days < 0:
            severity, state = Severity.CRITICAL, f"expired {int(-days)} days ago"
        elif days < net.cert_critical_days:
            severity, state = Severity.CRITICAL, f"expires in {days:.1f} days"
        elif days < net.cert_warning_days:
            severity, state = Severity.MEDIUM, f"expires in {int(days)} days"
        else:
            continue
        yield Finding.make(
            check=ID,
            severity=severity,
            resource=object_resource("Secret", cert.namespace, cert.secret, cert.origin),
            message=f"certificate {cert.subject_cn or '(no CN)'} in secret {ref(cert.namespace, cert.secret)} "
            f"[{cert.key}] {state}",
            evidence={
                "source": "secret",
                "key": cert.key,
                "subject_cn": cert.subject_cn,
                "not_after": cert.not_after.isoformat(),
                "days_left": f"{days:.1f}",
            },
            discriminator=f"secret:{cert.key}",
        )
