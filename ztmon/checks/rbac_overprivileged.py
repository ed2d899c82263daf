"""rbac-overprivileged: bindings that hand subjects more power than an application needs.

Judged per binding (a Role grants nothing until bound), over the binding's resolved role:
- bound to `cluster-admin`: critical through a ClusterRoleBinding, high through a RoleBinding (admin of
  that namespace);
- wildcard verbs or resources (`*`);
- reading Secrets (get/list/watch on `secrets` in the core group, not limited by resourceNames): high
  through a ClusterRoleBinding (every namespace), medium through a RoleBinding — also when the
  RoleBinding points at a ClusterRole, since a RoleBinding scopes any role to its namespace;
- `pods/exec` (create, or get as newer kubectl uses over websockets);
- `escalate`, `bind` or `impersonate` verbs.
Built-in ClusterRoles `cluster-admin`, `admin` and `edit` are known when not among the objects read.
Bindings named `system:*` (reconciled by the API server) are skipped (`policy.kube`), as are bindings
without subjects. An aggregated ClusterRole whose rules are not filled in (a manifest) is judged by the
rules it lists, i.e. none.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.kube_common import listing, object_resource
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot
from ztmon.model.kube import PolicyRule, Role, RoleBinding

ID = "rbac-overprivileged"

_READ = frozenset({"get", "list", "watch", "*"})
_ALL = ("*",)
_BUILTIN: dict[str, tuple[PolicyRule, ...]] = {
    "cluster-admin": (PolicyRule(api_groups=_ALL, resources=_ALL, verbs=_ALL),),
    # admin and edit (aggregated defaults): read/write Secrets and exec into pods in their scope
    "admin": (
        PolicyRule(api_groups=("",), resources=("secrets",), verbs=("get", "list", "watch", "create", "update")),
        PolicyRule(api_groups=("",), resources=("pods/exec", "pods/attach"), verbs=("create", "get")),
    ),
    "edit": (
        PolicyRule(api_groups=("",), resources=("secrets",), verbs=("get", "list", "watch", "create", "update")),
        PolicyRule(api_groups=("",), resources=("pods/exec", "pods/attach"), verbs=("create", "get")),
    ),
}


def _covers(values: tuple[str, ...], wanted: str) -> bool:
    return "*" in values or wanted in values


def rule_reasons(rule: PolicyRule, *, cluster_wide: bool) -> list[tuple[str, Severity]]:
    """What is dangerous in one rule, with the severity it earns in this binding's scope."""
    out: list[tuple[str, Severity]] = []
    if "*" in rule.verbs or "*" in rule.resources:
        what = " and ".join(w for w, on in (("verbs", "*" in rule.verbs), ("resources", "*" in rule.resources)) if on)
        out.append((f"wildcard {what}", Severity.HIGH))
    core = _covers(rule.api_groups, "")
    if core and _covers(rule.resources, "secrets") and _READ & set(rule.verbs) and not rule.resource_names:
        if cluster_wide:
            out.append(("reads secrets in every namespace", Severity.HIGH))
        else:
            out.append(("reads secrets in its namespace", Severity.MEDIUM))
    exec_res = any(r in {"pods/exec", "pods/*", "*"} for r in rule.resources)
    if core and exec_res and {"create", "get", "*"} & set(rule.verbs):
        out.append(("can exec into pods", Severity.HIGH))
    out.extend((f"has the {v} verb", Severity.HIGH) for v in ("escalate", "bind", "impersonate") if v in rule.verbs)
    return out


def _role_rules(b: RoleBinding, roles: dict[tuple[str, str, str], Role]) -> tuple[PolicyRule, ...] | None:
    ns = b.namespace if b.role_kind == "Role" else ""
    role = roles.get((b.role_kind, ns, b.role_name))
    if role is not None and (role.rules or not role.aggregated or b.role_name not in _BUILTIN):
        return role.rules
    if b.role_kind == "ClusterRole" and b.role_name in _BUILTIN:
        return _BUILTIN[b.role_name]
    return None


@check(ID, severity=Severity.CRITICAL, title="RBAC binding grants excessive privileges")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    kube = snapshot.kube
    ignored = snapshot.policy.kube.rbac_ignored_binding_prefixes
    roles = {(r.kind, r.namespace, r.name): r for r in kube.roles}
    for b in kube.bindings:
        if not b.subjects or any(b.name.startswith(p) for p in ignored):
            continue
        cluster_wide = b.kind == "ClusterRoleBinding"
        reasons: list[tuple[str, Severity]] = []
        if b.role_kind == "ClusterRole" and b.role_name == "cluster-admin":
            reasons.append(("bound to cluster-admin", Severity.CRITICAL if cluster_wide else Severity.HIGH))
        else:
            rules = _role_rules(b, roles)
            if rules is None:
                continue  # role not among the objects read: nothing to judge
            for rule in rules:
                reasons.extend(r for r in rule_reasons(rule, cluster_wide=cluster_wide) if r not in reasons)
        if not reasons:
            continue
        severity = max(s for _, s in reasons)
        subjects = [s.display() for s in b.subjects]
        scope = "cluster-wide" if cluster_wide else f"in namespace {b.namespace}"
        yield Finding.make(
            check=ID,
            severity=severity,
            resource=object_resource(b.kind, b.namespace, b.name, b.origin),
            message=f"{b.kind} {b.name} gives {listing(subjects, 3)} {b.role_kind} {b.role_name} {scope}: "
            + "; ".join(r for r, _ in reasons),
            evidence={
                "role": f"{b.role_kind}/{b.role_name}",
                "subjects": ",".join(subjects),
                "reasons": ";".join(r for r, _ in reasons),
            },
        )
