"""`plaintext` on configuration: Kubernetes and service-mesh settings that let traffic travel unencrypted.

Not registered on its own: the id `plaintext` belongs to one module, which calls `findings()` here
(the listener-based half judges what is observed on the wire; this half judges what is configured).

- Ingress: no `tls` (or `tls: []`) -> every host is served over plain HTTP; otherwise each rule host
  not covered by a `tls[].hosts` entry (`*.example.com` covers one label; an entry without hosts covers
  every host, as controllers apply it as the default certificate).
- Istio PeerAuthentication, with Istio's precedence: a workload policy (selector) over the namespace
  policy over the mesh policy (no selector, in `policy.kube.istio_root_namespace`); `UNSET` inherits;
  `portLevelMtls` (only on a workload policy) overrides per port. The policy that decides a workload's
  mode is blamed: DISABLE is high, PERMISSIVE medium, listing the workloads it governs. Without known
  workloads every PERMISSIVE/DISABLE policy is reported. No policy at all is not reported (nothing
  proves the workload is in the mesh).
- Istio DestinationRule: `tls.mode: DISABLE` for the host, a port or a subset (high).
- Linkerd: a workload annotated `linkerd.io/inject: disabled` in a namespace annotated `enabled`
  (medium); `config.linkerd.io/skip-inbound-ports` on a meshed workload (low): those ports bypass mTLS.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.kube_common import distinct_workloads, listing, object_resource, ref, workload_resource
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot
from ztmon.model.kube import Ingress, PeerAuthentication, Workload, label_value

ID = "plaintext"
_WEAK = {"DISABLE": Severity.HIGH, "PERMISSIVE": Severity.MEDIUM}


def _host_covered(host: str, tls_hosts: set[str]) -> bool:
    if host in tls_hosts:
        return True
    head, dot, rest = host.partition(".")
    return bool(dot and head and f"*.{rest}" in tls_hosts)


def uncovered_hosts(ing: Ingress) -> list[str] | None:
    """Hosts served without TLS; None when the Ingress has no TLS at all."""
    if not ing.tls:
        return None
    if any(not t.hosts for t in ing.tls):
        return []
    tls_hosts = {h for t in ing.tls for h in t.hosts}
    return sorted({h or "*" for h in ing.hosts if not (h and _host_covered(h, tls_hosts))})


def ingress_findings(snapshot: Snapshot) -> Iterator[Finding]:
    for ing in snapshot.kube.ingresses:
        res = object_resource("Ingress", ing.namespace, ing.name, ing.origin)
        missing = uncovered_hosts(ing)
        if missing is None:
            hosts = listing(h or "*" for h in ing.hosts) or "*"
            yield Finding.make(
                check=ID,
                severity=Severity.MEDIUM,
                resource=res,
                message=f"Ingress {ref(ing.namespace, ing.name)} has no TLS: {hosts} served over plain HTTP",
                evidence={"source": "ingress", "hosts": hosts},
                discriminator="ingress",
            )
        elif missing:
            yield Finding.make(
                check=ID,
                severity=Severity.MEDIUM,
                resource=res,
                message=f"Ingress {ref(ing.namespace, ing.name)} serves {listing(missing)} without TLS",
                evidence={"source": "ingress", "hosts": ",".join(missing)},
                discriminator="ingress",
            )


def _scope(pa: PeerAuthentication, root: str) -> str:
    if pa.selector is not None:
        return "workload"
    return "mesh" if pa.namespace == root else "namespace"


def _pa_finding(pa: PeerAuthentication, mode: str, root: str, governed: list[str], port: int | None) -> Finding:
    scope = _scope(pa, root)
    where = f" on port {port}" if port is not None else ""
    whom = f" for {listing(governed)}" if governed else ""
    return Finding.make(
        check=ID,
        severity=_WEAK[mode],
        resource=object_resource("PeerAuthentication", pa.namespace, pa.name, pa.origin),
        message=f"PeerAuthentication {ref(pa.namespace, pa.name)} ({scope}) sets mTLS {mode}{where}{whom}: "
        + ("plaintext is sent" if mode == "DISABLE" else "plaintext is accepted"),
        evidence={
            "source": "peerauthentication",
            "scope": scope,
            "mode": mode,
            **({"port": str(port)} if port is not None else {}),
            **({"workloads": str(len(governed))} if governed else {}),
        },
        discriminator=f"pa:{port if port is not None else 'all'}",
    )


def peer_authentication_findings(snapshot: Snapshot) -> Iterator[Finding]:
    kube = snapshot.kube
    root = snapshot.policy.kube.istio_root_namespace
    pas = sorted(kube.peer_authentications, key=lambda p: (p.namespace, p.name))
    if not pas:
        return
    mesh = next((p for p in pas if p.namespace == root and p.selector is None), None)
    ns_wide: dict[str, PeerAuthentication] = {}
    for p in pas:
        if p.selector is None and p.namespace != root:
            ns_wide.setdefault(p.namespace, p)
    workloads = list(distinct_workloads(snapshot))
    if not workloads:
        for p in pas:
            if p.mode in _WEAK:
                yield _pa_finding(p, p.mode, root, [], None)
            for port, mode in p.port_modes:
                if mode in _WEAK and p.selector is not None:
                    yield _pa_finding(p, mode, root, [], port)
        return
    blamed: dict[tuple[str, str, int | None], tuple[PeerAuthentication, str, list[str]]] = {}

    def blame(p: PeerAuthentication, mode: str, port: int | None, w: Workload) -> None:
        entry = blamed.setdefault((p.namespace, p.name, port), (p, mode, []))
        entry[2].append(f"{w.kind} {ref(w.namespace, w.name)}")

    for w in workloads:
        own = next((p for p in pas if p.namespace == w.namespace and p.selector and p.selector.matches(w.labels)), None)
        chain = [p for p in (own, ns_wide.get(w.namespace), mesh) if p is not None]
        decider = next((p for p in chain if p.mode != "UNSET"), None)
        if decider is not None and decider.mode in _WEAK:
            blame(decider, decider.mode, None, w)
        if own is not None:
            for port, mode in own.port_modes:
                if mode in _WEAK:
                    blame(own, mode, port, w)
    for key, (p, mode, governed) in blamed.items():
        yield _pa_finding(p, mode, root, governed, key[2])


def destination_rule_findings(snapshot: Snapshot) -> Iterator[Finding]:
    for dr in snapshot.kube.destination_rules:
        res = object_resource("DestinationRule", dr.namespace, dr.name, dr.origin)
        targets: list[tuple[str, str]] = []
        if dr.tls_mode == "DISABLE":
            targets.append(("host", f"host {dr.host}"))
        targets += [(f"port:{p}", f"port {p} of {dr.host}") for p, m in dr.port_tls_modes if m == "DISABLE"]
        targets += [(f"subset:{s}", f"subset {s} of {dr.host}") for s, m in dr.subset_tls_modes if m == "DISABLE"]
        for disc, what in targets:
            yield Finding.make(
                check=ID,
                severity=Severity.HIGH,
                resource=res,
                message=f"DestinationRule {ref(dr.namespace, dr.name)} disables TLS to {what}: "
                "traffic leaves in plaintext",
                evidence={"source": "destinationrule", "host": dr.host, "target": disc},
                discriminator=f"dr:{disc}",
            )


def linkerd_findings(snapshot: Snapshot) -> Iterator[Finding]:
    meshed_ns = {
        n.name for n in snapshot.kube.namespaces if label_value(n.annotations, "linkerd.io/inject") == "enabled"
    }
    for w in distinct_workloads(snapshot):
        inject = label_value(w.annotations, "linkerd.io/inject")
        in_mesh_ns = w.namespace in meshed_ns
        if inject == "disabled" and in_mesh_ns:
            yield Finding.make(
                check=ID,
                severity=Severity.MEDIUM,
                resource=workload_resource(w, snapshot),
                message=f"{w.kind} {ref(w.namespace, w.name)} opts out of Linkerd in a meshed namespace: no mTLS",
                evidence={"source": "linkerd", "annotation": "linkerd.io/inject=disabled"},
                discriminator="linkerd:inject",
            )
            continue
        skipped = label_value(w.annotations, "config.linkerd.io/skip-inbound-ports")
        if skipped and (inject == "enabled" or in_mesh_ns):
            yield Finding.make(
                check=ID,
                severity=Severity.LOW,
                resource=workload_resource(w, snapshot),
                message=f"{w.kind} {ref(w.namespace, w.name)} skips the Linkerd proxy for inbound ports {skipped}",
                evidence={"source": "linkerd", "ports": skipped},
                discriminator="linkerd:skip-inbound",
            )


def findings(snapshot: Snapshot) -> Iterator[Finding]:
    """Every configuration-plaintext finding; the `plaintext` check yields these besides its own."""
    yield from ingress_findings(snapshot)
    yield from peer_authentication_findings(snapshot)
    yield from destination_rule_findings(snapshot)
    yield from linkerd_findings(snapshot)
