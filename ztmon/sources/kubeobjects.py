"""Kubernetes objects (plain JSON dicts, from the API or from manifest files) -> frozen model values.

Shared by the offline `files` source and the live `kube` source, so that a Deployment in Git and the pod
it becomes are judged by the same mapping. Pure apart from classifying env values (secretscan) and
parsing certificates: no network, no files.

Pod spec -> `Container`, following the API's own rules:
- securityContext inheritance: `runAsUser`, `runAsGroup`, `runAsNonRoot` (and seccomp/AppArmor) may be set
  on the pod and are overridden per container; `privileged`, `allowPrivilegeEscalation`,
  `readOnlyRootFilesystem` and `capabilities` exist on containers only.
- `allowPrivilegeEscalation` is effectively true, whatever it says, for a privileged container or one that
  adds CAP_SYS_ADMIN (API reference, SecurityContext); unset means true.
- initContainers (sidecars included) and ephemeralContainers are mapped like containers.
- env: `value` is classified and dropped (secretscan); `valueFrom` is a reference, never a literal.
- hostPath volumes become `Mount(type="hostPath")` only where a container mounts them.

Malformed fields raise `ObjectError` naming the field path (`spec.template.spec.containers[1].env`);
missing or null fields take the API's defaults.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ztmon.model.inventory import Container, EnvVar, Mount, PublishedPort, ValueKind
from ztmon.model.kube import (
    Certificate,
    DestinationRule,
    Ingress,
    IngressTLS,
    KubeObjects,
    Labels,
    LabelSelector,
    Namespace,
    NetworkPolicy,
    PeerAuthentication,
    PolicyRule,
    Requirement,
    Role,
    RoleBinding,
    SecretMeta,
    Service,
    ServiceAccount,
    Subject,
    Workload,
)
from ztmon.sources import secretscan

ROTATED_ANNOTATION = "ztmon.io/rotated-at"  # RFC 3339: when the data was last rotated, for Secrets from Git
WORKLOAD_KINDS = frozenset(
    {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob"}
)
_KNOWN_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})
_CRONJOB_JOB = re.compile(r"^(?P<cron>.+)-\d{8,}$")  # CronJob controller names Jobs <cronjob>-<minutes>


class ObjectError(ValueError):
    """A field of an object we cannot read; the message names the field path."""


Model = object  # one of the model values below; `assemble` dispatches on type


# -- tolerant, typed accessors -------------------------------------------------------------------------
def _map(d: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    v = d.get(key)
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise ObjectError(f"{where}{key}: expected an object, got {type(v).__name__}")
    return v


def _seq(d: Mapping[str, Any], key: str, where: str) -> list[Any]:
    v = d.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise ObjectError(f"{where}{key}: expected a list, got {type(v).__name__}")
    return v


def _items(d: Mapping[str, Any], key: str, where: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for i, item in enumerate(_seq(d, key, where)):
        path = f"{where}{key}[{i}]"
        if not isinstance(item, Mapping):
            raise ObjectError(f"{path}: expected an object, got {type(item).__name__}")
        yield path + ".", item


def _str(d: Mapping[str, Any], key: str, where: str = "", default: str = "") -> str:
    v = d.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise ObjectError(f"{where}{key}: expected a string, got {type(v).__name__}")
    return str(v)


def _bool(d: Mapping[str, Any], key: str, where: str) -> bool | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in {"true", "false"}:  # YAML written by hand: "true"
        return v.lower() == "true"
    raise ObjectError(f"{where}{key}: expected a boolean, got {type(v).__name__}")


def _int(d: Mapping[str, Any], key: str, where: str) -> int | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool):
        raise ObjectError(f"{where}{key}: expected an integer, got bool")
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    raise ObjectError(f"{where}{key}: expected an integer, got {type(v).__name__}")


def labels_of(d: Mapping[str, Any], key: str, where: str) -> Labels:
    return tuple(sorted((str(k), "" if v is None else str(v)) for k, v in _map(d, key, where).items()))


def parse_time(text: str) -> datetime | None:
    """RFC 3339 as the API writes it (`2024-01-02T03:04:05Z`, fractions allowed); None when unreadable."""
    t = text.strip()
    if not t:
        return None
    try:
        parsed = datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _time_of(value: Any) -> datetime | None:
    if isinstance(value, datetime):  # YAML loaders turn unquoted timestamps into datetimes
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        return parse_time(value)
    return None


@dataclass(frozen=True, slots=True)
class Meta:
    kind: str
    api_version: str
    namespace: str
    name: str
    labels: Labels
    annotations: Labels
    created: datetime | None
    raw: Mapping[str, Any]

    def ref(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name or '(unnamed)'}"


def meta_of(obj: Mapping[str, Any], *, default_namespace: str = "") -> Meta:
    md = _map(obj, "metadata", "")
    return Meta(
        kind=_str(obj, "kind"),
        api_version=_str(obj, "apiVersion"),
        namespace=_str(md, "namespace", "metadata.") or default_namespace,
        name=_str(md, "name", "metadata."),
        labels=labels_of(md, "labels", "metadata."),
        annotations=labels_of(md, "annotations", "metadata."),
        created=_time_of(md.get("creationTimestamp")),
        raw=md,
    )


# -- selectors -----------------------------------------------------------------------------------------
def selector_of(d: Mapping[str, Any], where: str) -> LabelSelector:
    match_labels = tuple(sorted((str(k), str(v)) for k, v in _map(d, "matchLabels", where).items()))
    reqs: list[Requirement] = []
    invalid = ""
    for path, e in _items(d, "matchExpressions", where):
        op = _str(e, "operator", path)
        if op not in _KNOWN_OPERATORS:
            invalid = f"{path}operator: unknown operator {op!r}"
        values = tuple(str(v) for v in _seq(e, "values", path))
        reqs.append(Requirement(key=_str(e, "key", path), operator=op, values=values))
    return LabelSelector(match_labels=match_labels, match_expressions=tuple(reqs), invalid=invalid)


# -- owners ----------------------------------------------------------------------------------------------
def owner_of(meta: Meta) -> tuple[str, str]:
    """The workload that owns a pod: (kind, name). A bare pod owns itself.

    Deployment pods are owned by a ReplicaSet named `<deployment>-<pod-template-hash>`; the hash is also the
    pod's `pod-template-hash` label, so the Deployment is known without reading ReplicaSets (no extra RBAC).
    A Job named `<name>-<8+ digits>` is taken as created by CronJob `<name>` (the CronJob controller's
    naming); any other Job is reported as the Job.
    """
    for ref in _seq(meta.raw, "ownerReferences", "metadata."):
        if not isinstance(ref, Mapping) or ref.get("controller") is False:
            continue
        kind, name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        if not kind or not name:
            continue
        if kind == "ReplicaSet":
            h = dict(meta.labels).get("pod-template-hash", "")
            if h and name.endswith("-" + h):
                return "Deployment", name[: -len(h) - 1]
        if kind == "Job" and (m := _CRONJOB_JOB.match(name)):
            return "CronJob", m.group("cron")
        return kind, name
    return "Pod", meta.name


# -- pod spec -> containers --------------------------------------------------------------------------------
def _env(c: Mapping[str, Any], where: str) -> tuple[EnvVar, ...]:
    out: list[EnvVar] = []
    for path, e in _items(c, "env", where):
        name = _str(e, "name", path)
        if not name:
            continue
        if e.get("valueFrom") is not None:
            out.append(EnvVar(name, ValueKind.REFERENCE))
        else:
            out.append(secretscan.classify(name, _str(e, "value", path)))
    return tuple(out)


def _caps(sc: Mapping[str, Any], where: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    caps = _map(sc, "capabilities", where)
    add = tuple(str(x).strip().upper().removeprefix("CAP_") for x in _seq(caps, "add", where + "capabilities."))
    drop = tuple(str(x).strip().upper().removeprefix("CAP_") for x in _seq(caps, "drop", where + "capabilities."))
    return add, drop


def _container_id(status: Mapping[str, Any]) -> tuple[str, str]:
    """(runtime, bare id) from `docker://abc...`; ("", "") when not started."""
    raw = str(status.get("containerID") or "")
    scheme, sep, cid = raw.partition("://")
    return (scheme, cid) if sep else ("", raw)


@dataclass(frozen=True, slots=True)
class PodContext:
    namespace: str
    pod: str  # "" offline
    workload_kind: str
    workload_name: str
    labels: Labels = ()
    annotations: Labels = ()
    origin: str = ""
    statuses: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # container name -> status


def containers_of(spec: Mapping[str, Any], ctx: PodContext, where: str) -> tuple[Container, ...]:
    pod_sc = _map(spec, "securityContext", where)
    psc = where + "securityContext."
    pod_user = _int(pod_sc, "runAsUser", psc)
    pod_non_root = _bool(pod_sc, "runAsNonRoot", psc)
    host_network = bool(_bool(spec, "hostNetwork", where))
    host_pid = bool(_bool(spec, "hostPID", where))
    host_ipc = bool(_bool(spec, "hostIPC", where))
    volumes: dict[str, tuple[str, str]] = {}  # name -> (type, source)
    for path, v in _items(spec, "volumes", where):
        kinds = [k for k in v if k != "name"]
        vtype = kinds[0] if kinds else "emptyDir"
        source = _str(_map(v, "hostPath", path), "path", path + "hostPath.") if vtype == "hostPath" else ""
        volumes[_str(v, "name", path)] = (vtype, source or _str(v, "name", path))
    out: list[Container] = []
    for key, ctype in (("initContainers", "init"), ("containers", ""), ("ephemeralContainers", "ephemeral")):
        for path, c in _items(spec, key, where):
            name = _str(c, "name", path)
            sc = _map(c, "securityContext", path)
            scp = path + "securityContext."
            privileged = bool(_bool(sc, "privileged", scp))
            add, drop = _caps(sc, scp)
            ape = _bool(sc, "allowPrivilegeEscalation", scp)
            escalation_off = ape is False and not privileged and "SYS_ADMIN" not in add
            user = _int(sc, "runAsUser", scp)
            user = pod_user if user is None else user
            non_root = _bool(sc, "runAsNonRoot", scp)
            non_root = pod_non_root if non_root is None else non_root
            mounts = []
            for mpath, m in _items(c, "volumeMounts", path):
                vtype, source = volumes.get(_str(m, "name", mpath), ("unknown", _str(m, "name", mpath)))
                mounts.append(
                    Mount(
                        source=source,
                        destination=_str(m, "mountPath", mpath),
                        type=vtype,
                        read_only=bool(_bool(m, "readOnly", mpath)),
                    )
                )
            ports, exposed = [], []
            for ppath, p in _items(c, "ports", path):
                cport = _int(p, "containerPort", ppath) or 0
                proto = _str(p, "protocol", ppath, "TCP").lower()
                exposed.append(f"{cport}/{proto}")
                hport = _int(p, "hostPort", ppath)
                if hport:
                    ports.append(
                        PublishedPort(
                            container_port=cport, protocol=proto, host_ip=_str(p, "hostIP", ppath), host_port=hport
                        )
                    )
            status = ctx.statuses.get(name, {})
            _runtime, cid = _container_id(status)
            image_id = str(status.get("imageID") or "")
            running = status.get("state", {}).get("running") if isinstance(status.get("state"), Mapping) else None
            started = _time_of(running.get("startedAt")) if isinstance(running, Mapping) else None
            out.append(
                Container(
                    runtime="kubernetes",
                    id=cid,
                    name=name,
                    image=_str(c, "image", path),
                    image_digest=image_id.rpartition("@")[2] if "@" in image_id else "",
                    labels=ctx.labels,
                    namespace=ctx.namespace,
                    pod=ctx.pod,
                    read_only_rootfs=bool(_bool(sc, "readOnlyRootFilesystem", scp)),
                    privileged=privileged,
                    user="" if user is None else str(user),
                    run_as_non_root=bool(non_root),
                    cap_add=add,
                    cap_drop=drop,
                    no_new_privileges=escalation_off,
                    host_network=host_network,
                    host_pid=host_pid,
                    host_ipc=host_ipc,
                    mounts=tuple(mounts),
                    ports=tuple(ports),
                    exposed_ports=tuple(exposed),
                    env=_env(c, path),
                    started_at=started,
                    workload_kind=ctx.workload_kind,
                    workload_name=ctx.workload_name,
                    container_type=ctype,
                    annotations=ctx.annotations,
                    origin=ctx.origin,
                )
            )
    return tuple(out)


def _token_mounted(spec: Mapping[str, Any]) -> bool:
    """Whether admission mounted an API token: a projected volume with a serviceAccountToken source."""
    for v in spec.get("volumes") or ():
        projected = v.get("projected") if isinstance(v, Mapping) else None
        sources = projected.get("sources") if isinstance(projected, Mapping) else None
        if isinstance(sources, list) and any(isinstance(s, Mapping) and "serviceAccountToken" in s for s in sources):
            return True
    return False


def _template(obj: Mapping[str, Any], kind: str) -> tuple[Mapping[str, Any], str]:
    """(pod template, its path) of a workload kind; a Pod is its own template."""
    if kind == "Pod":
        return obj, ""
    spec = _map(obj, "spec", "")
    if kind == "CronJob":
        job = _map(spec, "jobTemplate", "spec.")
        return _map(_map(job, "spec", "spec.jobTemplate."), "template", "spec.jobTemplate.spec."), (
            "spec.jobTemplate.spec.template."
        )
    return _map(spec, "template", "spec."), "spec.template."


def workload_items(obj: Mapping[str, Any], meta: Meta, *, origin: str = "", node_pod: bool = False) -> list[Model]:
    """A Workload and its containers. `node_pod`: a live pod whose owner is resolved and status joined."""
    tmpl, where = _template(obj, meta.kind)
    tmeta = _map(tmpl, "metadata", where)
    spec = _map(tmpl, "spec", where)
    labels = meta.labels if meta.kind == "Pod" else labels_of(tmeta, "labels", where + "metadata.")
    annotations = meta.annotations if meta.kind == "Pod" else labels_of(tmeta, "annotations", where + "metadata.")
    if node_pod:
        kind, name = owner_of(meta)
        pod = meta.name
    elif meta.kind == "Pod" and meta.raw.get("ownerReferences"):  # `kubectl get pods -o yaml`: name the owner
        kind, name = owner_of(meta)
        pod = ""
    else:
        kind, name, pod = meta.kind, meta.name, ""
    statuses: dict[str, Mapping[str, Any]] = {}
    if node_pod:
        st = _map(obj, "status", "")
        for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
            for _, s in _items(st, key, "status."):
                statuses[str(s.get("name") or "")] = s
    ctx = PodContext(
        namespace=meta.namespace,
        pod=pod,
        workload_kind=kind,
        workload_name=name,
        labels=labels,
        annotations=annotations,
        origin=origin,
        statuses=statuses,
    )
    spec_where = where + "spec."
    wl = Workload(
        kind=kind,
        namespace=meta.namespace,
        name=name,
        pod=pod,
        labels=labels,
        annotations=annotations,
        service_account=_str(spec, "serviceAccountName", spec_where)
        or _str(spec, "serviceAccount", spec_where)
        or "default",
        automount_token=_bool(spec, "automountServiceAccountToken", spec_where),
        token_mounted=_token_mounted(spec) if node_pod else None,
        host_network=bool(_bool(spec, "hostNetwork", spec_where)),
        node=_str(spec, "nodeName", spec_where),
        origin=origin,
    )
    return [wl, *containers_of(spec, ctx, spec_where)]


# -- secrets ---------------------------------------------------------------------------------------------------
def data_changed(meta: Meta) -> datetime | None:
    """When the Secret's data last changed: the rotation annotation, else the newest managedFields entry
    whose fieldsV1 touches data or stringData (what `kubectl apply`/`edit` and controllers record)."""
    rotated = dict(meta.annotations).get(ROTATED_ANNOTATION)
    if rotated and (t := parse_time(rotated)) is not None:
        return t
    newest: datetime | None = None
    for mf in _seq(meta.raw, "managedFields", "metadata."):
        if not isinstance(mf, Mapping):
            continue
        fields = mf.get("fieldsV1")
        if not isinstance(fields, Mapping) or not ({"f:data", "f:stringData"} & set(fields)):
            continue
        t = _time_of(mf.get("time"))
        if t is not None and (newest is None or t > newest):
            newest = t
    return newest


def _decode(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        return None


def certificates_of(meta: Meta, data: Mapping[str, Any], string_data: Mapping[str, Any], origin: str) -> list[Model]:
    """The leaf certificate of each *.crt / ca.crt key. Private keys are never decoded."""
    from cryptography import x509  # noqa: PLC0415 - only when a TLS Secret's data is read
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    out: list[Model] = []
    keys = sorted({k for k in (*data, *string_data) if str(k).endswith(".crt") or str(k) in {"tls.crt", "ca.crt"}})
    for key in keys:
        raw = str(string_data[key]).encode() if key in string_data else _decode(data.get(key))
        if not raw or b"-----BEGIN CERTIFICATE-----" not in raw:
            continue
        try:
            certs = x509.load_pem_x509_certificates(raw)
        except ValueError:
            continue
        leaf = certs[0]
        cns = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        cn = str(cns[0].value) if cns else ""
        out.append(
            Certificate(
                namespace=meta.namespace,
                secret=meta.name,
                key=str(key),
                subject_cn=cn,
                not_after=leaf.not_valid_after_utc,
                not_before=leaf.not_valid_before_utc,
                origin=origin,
            )
        )
    return out


def infer_secret_type(meta: Meta) -> str:
    """A metadata-only Secret (PartialObjectMetadata) has no `type`: infer what metadata proves.

    kubernetes.io/service-account-token Secrets must carry the `kubernetes.io/service-account.name`
    annotation (API validation); Helm 3 names its release records `sh.helm.release.v1.<release>.v<n>` and
    labels them `owner=helm`. Anything else is "" (unknown), judged with the default maximum age.
    """
    ann, labels = dict(meta.annotations), dict(meta.labels)
    if "kubernetes.io/service-account.name" in ann:
        return "kubernetes.io/service-account-token"
    if meta.name.startswith("sh.helm.release.v1.") and labels.get("owner") == "helm":
        return "helm.sh/release.v1"
    return ""


def secret_items(obj: Mapping[str, Any], meta: Meta, *, origin: str = "", read_certs: bool = False) -> list[Model]:
    metadata_only = _str(obj, "kind") == "PartialObjectMetadata"
    items: list[Model] = [
        SecretMeta(
            namespace=meta.namespace,
            name=meta.name,
            type=infer_secret_type(meta) if metadata_only else (_str(obj, "type") or "Opaque"),
            created=meta.created,
            data_changed=data_changed(meta),
            labels=meta.labels,
            annotations=meta.annotations,
            origin=origin,
        )
    ]
    if read_certs:
        items.extend(certificates_of(meta, _map(obj, "data", ""), _map(obj, "stringData", ""), origin))
    return items


# -- RBAC ------------------------------------------------------------------------------------------------------
def _strs(d: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    return tuple(str(x) for x in _seq(d, key, where))


def role_items(obj: Mapping[str, Any], meta: Meta, *, origin: str = "") -> list[Model]:
    rules = tuple(
        PolicyRule(
            api_groups=_strs(r, "apiGroups", p),
            resources=_strs(r, "resources", p),
            verbs=_strs(r, "verbs", p),
            resource_names=_strs(r, "resourceNames", p),
            non_resource_urls=_strs(r, "nonResourceURLs", p),
        )
        for p, r in _items(obj, "rules", "")
    )
    return [
        Role(
            kind=meta.kind,
            namespace=meta.namespace if meta.kind == "Role" else "",
            name=meta.name,
            rules=rules,
            aggregated=obj.get("aggregationRule") is not None,
            origin=origin,
        )
    ]


def binding_items(obj: Mapping[str, Any], meta: Meta, *, origin: str = "") -> list[Model]:
    ref = _map(obj, "roleRef", "")
    ns = meta.namespace if meta.kind == "RoleBinding" else ""
    subjects = tuple(
        Subject(
            kind=_str(s, "kind", p),
            name=_str(s, "name", p),
            namespace=_str(s, "namespace", p) or (ns if _str(s, "kind", p) == "ServiceAccount" else ""),
        )
        for p, s in _items(obj, "subjects", "")
    )
    return [
        RoleBinding(
            kind=meta.kind,
            namespace=ns,
            name=meta.name,
            role_kind=_str(ref, "kind", "roleRef."),
            role_name=_str(ref, "name", "roleRef."),
            subjects=subjects,
            origin=origin,
        )
    ]


# -- network ---------------------------------------------------------------------------------------------------
def network_policy_items(obj: Mapping[str, Any], meta: Meta, *, origin: str = "") -> list[Model]:
    spec = _map(obj, "spec", "")
    types = _strs(spec, "policyTypes", "spec.")
    if not types:  # API default: Ingress always; Egress when the policy has egress rules
        types = ("Ingress", "Egress") if spec.get("egress") else ("Ingress",)
    return [
        NetworkPolicy(
            namespace=meta.namespace,
            name=meta.name,
            pod_selector=selector_of(_map(spec, "podSelector", "spec."), "spec.podSelector."),
            policy_types=types,
            origin=origin,
        )
    ]


def ingress_items(obj: Mapping[str, Any], meta: Meta, *, origin: str = "") -> list[Model]:
    spec = _map(obj, "spec", "")
    hosts = tuple(_str(r, "host", p) for p, r in _items(spec, "rules", "spec."))
    tls = tuple(
        IngressTLS(hosts=_strs(t, "hosts", p), secret_name=_str(t, "secretName", p))
        for p, t in _items(spec, "tls", "spec.")
    )
    return [
        Ingress(
            namespace=meta.namespace, name=meta.name, hosts=hosts, tls=tls, annotations=meta.annotations, origin=origin
        )
    ]


def peer_authentication_items(obj: Mapping[str, Any], meta: Meta, *, origin: str = "") -> list[Model]:
    spec = _map(obj, "spec", "")
    sel = spec.get("selector")
    selector = None
    if isinstance(sel, Mapping):
        labels = _map(sel, "matchLabels", "spec.selector.")
        selector = LabelSelector(match_labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())))
    port_modes = []
    for port, cfg in _map(spec, "portLevelMtls", "spec.").items():
        mode = _str(cfg, "mode", f"spec.portLevelMtls.{port}.") if isinstance(cfg, Mapping) else ""
        if str(port).isdigit():
            port_modes.append((int(port), mode.upper() or "UNSET"))
    mode = _str(_map(spec, "mtls", "spec."), "mode", "spec.mtls.").upper() or "UNSET"
    return [
        PeerAuthentication(
            namespace=meta.namespace,
            name=meta.name,
            selector=selector,
            mode=mode,
            port_modes=tuple(sorted(port_modes)),
            origin=origin,
        )
    ]


def _tls_mode(policy: Mapping[str, Any], where: str) -> str:
    return _str(_map(policy, "tls", where), "mode", where + "tls.").upper()


def destination_rule_items(obj: Mapping[str, Any], meta: Meta, *, origin: str = "") -> list[Model]:
    spec = _map(obj, "spec", "")
    tp = _map(spec, "trafficPolicy", "spec.")
    port_modes = []
    for p, pls in _items(tp, "portLevelSettings", "spec.trafficPolicy."):
        port = _int(_map(pls, "port", p), "number", p + "port.")
        mode = _tls_mode(pls, p)
        if port is not None and mode:
            port_modes.append((port, mode))
    subsets = []
    for p, s in _items(spec, "subsets", "spec."):
        mode = _tls_mode(_map(s, "trafficPolicy", p), p + "trafficPolicy.")
        if mode:
            subsets.append((_str(s, "name", p), mode))
    return [
        DestinationRule(
            namespace=meta.namespace,
            name=meta.name,
            host=_str(spec, "host", "spec."),
            tls_mode=_tls_mode(tp, "spec.trafficPolicy."),
            port_tls_modes=tuple(port_modes),
            subset_tls_modes=tuple(subsets),
            origin=origin,
        )
    ]


def service_items(obj: Mapping[str, Any], meta: Meta, *, origin: str = "") -> list[Model]:
    del origin
    spec = _map(obj, "spec", "")
    ports = tuple(_int(p, "port", w) or 0 for w, p in _items(spec, "ports", "spec."))
    return [
        Service(
            namespace=meta.namespace,
            name=meta.name,
            type=_str(spec, "type", "spec.") or "ClusterIP",
            selector=labels_of(spec, "selector", "spec."),
            ports=ports,
        )
    ]


# -- dispatch --------------------------------------------------------------------------------------------------
def parse(
    obj: Mapping[str, Any],
    *,
    origin: str = "",
    default_namespace: str = "",
    node_pod: bool = False,
    read_certs: bool = False,
    kind: str = "",
) -> list[Model]:
    """Model values for one object; [] for kinds no check reads. Raises ObjectError on malformed fields.

    `kind` names the kind of a metadata-only object (its own kind is PartialObjectMetadata).
    """
    if not isinstance(obj, Mapping):
        raise ObjectError(f"expected an object, got {type(obj).__name__}")
    meta = meta_of(obj, default_namespace=default_namespace)
    if kind and meta.kind in {"PartialObjectMetadata", ""}:
        meta = dataclasses.replace(meta, kind=kind)
    kind = meta.kind
    if kind in WORKLOAD_KINDS:
        return workload_items(obj, meta, origin=origin, node_pod=node_pod)
    if kind == "Secret":
        return secret_items(obj, meta, origin=origin, read_certs=read_certs)
    if kind in {"Role", "ClusterRole"}:
        return role_items(obj, meta, origin=origin)
    if kind in {"RoleBinding", "ClusterRoleBinding"}:
        return binding_items(obj, meta, origin=origin)
    if kind == "NetworkPolicy" and meta.api_version.startswith("networking.k8s.io"):
        return network_policy_items(obj, meta, origin=origin)
    if kind == "Ingress":
        return ingress_items(obj, meta, origin=origin)
    if kind == "PeerAuthentication":
        return peer_authentication_items(obj, meta, origin=origin)
    if kind == "DestinationRule":
        return destination_rule_items(obj, meta, origin=origin)
    if kind == "Namespace":
        return [Namespace(name=meta.name, labels=meta.labels, annotations=meta.annotations)]
    if kind == "ServiceAccount":
        sa = ServiceAccount(
            namespace=meta.namespace,
            name=meta.name,
            automount_token=_bool(obj, "automountServiceAccountToken", ""),
            origin=origin,
        )
        return [sa]
    if kind == "Service":
        return service_items(obj, meta, origin=origin)
    return []


_KIND_OF_TYPE: dict[type, str] = {
    Workload: "Workload",
    ServiceAccount: "ServiceAccount",
    SecretMeta: "Secret",
    Certificate: "Certificate",
    Role: "Role",
    RoleBinding: "RoleBinding",
    NetworkPolicy: "NetworkPolicy",
    Ingress: "Ingress",
    PeerAuthentication: "PeerAuthentication",
    DestinationRule: "DestinationRule",
    Namespace: "Namespace",
    Service: "Service",
}


def assemble(
    items: Iterable[Model], *, observed: frozenset[str] = frozenset(), offline: bool = False
) -> tuple[tuple[Container, ...], KubeObjects]:
    """Sort parsed values into the Snapshot's containers and its KubeObjects."""
    containers: list[Container] = []
    groups: dict[str, list[Any]] = {k: [] for k in _KIND_OF_TYPE.values()}
    for item in items:
        if isinstance(item, Container):
            containers.append(item)
        else:
            groups[_KIND_OF_TYPE[type(item)]].append(item)
    kube = KubeObjects(
        workloads=tuple(groups["Workload"]),
        service_accounts=tuple(groups["ServiceAccount"]),
        secrets=tuple(groups["Secret"]),
        certificates=tuple(groups["Certificate"]),
        roles=tuple(groups["Role"]),
        bindings=tuple(groups["RoleBinding"]),
        network_policies=tuple(groups["NetworkPolicy"]),
        ingresses=tuple(groups["Ingress"]),
        peer_authentications=tuple(groups["PeerAuthentication"]),
        destination_rules=tuple(groups["DestinationRule"]),
        namespaces=tuple(groups["Namespace"]),
        services=tuple(groups["Service"]),
        observed=observed,
        offline=offline,
    )
    return tuple(containers), kube
