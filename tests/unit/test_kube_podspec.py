"""Pod spec -> Container: securityContext inheritance and the API's own rules, one behaviour per test."""

from __future__ import annotations

from typing import Any

import pytest

from ztmon.model.inventory import Container, ValueKind
from ztmon.model.kube import Workload
from ztmon.sources import kubeobjects


def pod(spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns", **meta}, "spec": spec}


def containers(spec: dict[str, Any], **kw: Any) -> dict[str, Container]:
    return {c.name: c for c in kubeobjects.parse(pod(spec), **kw) if isinstance(c, Container)}


def one(container: dict[str, Any], **pod_spec: Any) -> Container:
    (c,) = containers({"containers": [{"name": "c", "image": "i", **container}], **pod_spec}).values()
    return c


@pytest.mark.parametrize(
    ("pod_sc", "container_sc", "user", "non_root"),
    [
        ({}, {}, "", False),
        ({"runAsUser": 1000}, {}, "1000", False),
        ({"runAsUser": 1000}, {"runAsUser": 0}, "0", False),
        ({"runAsNonRoot": True}, {}, "", True),
        ({"runAsNonRoot": True}, {"runAsNonRoot": False}, "", False),
        ({}, {"runAsNonRoot": True, "runAsUser": 5}, "5", True),
    ],
    ids=[
        "unset",
        "pod-user-inherited",
        "container-user-overrides",
        "pod-nonroot-inherited",
        "container-nonroot-overrides",
        "container-only",
    ],
)
def test_run_as_user_and_non_root_inherit_from_the_pod(pod_sc, container_sc, user, non_root):
    c = one({"securityContext": container_sc}, securityContext=pod_sc)
    assert (c.user, c.run_as_non_root) == (user, non_root)


@pytest.mark.parametrize(
    ("sc", "escalation_off"),
    [
        ({}, False),
        ({"allowPrivilegeEscalation": True}, False),
        ({"allowPrivilegeEscalation": False}, True),
        ({"allowPrivilegeEscalation": False, "privileged": True}, False),
        ({"allowPrivilegeEscalation": False, "capabilities": {"add": ["CAP_SYS_ADMIN"]}}, False),
        ({"allowPrivilegeEscalation": False, "capabilities": {"add": ["sys_admin"]}}, False),
    ],
    ids=["unset-means-true", "true", "false", "privileged-forces-true", "sys-admin-forces-true", "lowercase"],
)
def test_allow_privilege_escalation_maps_to_no_new_privileges(sc, escalation_off):
    assert one({"securityContext": sc}).no_new_privileges is escalation_off


def test_container_only_fields_are_not_inherited_from_the_pod():
    # readOnlyRootFilesystem / privileged do not exist on PodSecurityContext; a stray one is ignored.
    c = one({}, securityContext={"runAsUser": 1})
    assert (c.read_only_rootfs, c.privileged) == (False, False)


def test_capability_spellings_are_normalised():
    c = one({"securityContext": {"capabilities": {"add": ["CAP_NET_ADMIN", "sys_ptrace"], "drop": ["all"]}}})
    assert (c.cap_add, c.cap_drop) == (("NET_ADMIN", "SYS_PTRACE"), ("ALL",))


def test_init_and_ephemeral_containers_are_mapped_with_their_type():
    got = containers(
        {
            "initContainers": [{"name": "init", "image": "i"}],
            "containers": [{"name": "main", "image": "i"}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
        }
    )
    assert {n: c.container_type for n, c in got.items()} == {"init": "init", "main": "", "debug": "ephemeral"}


def test_pod_level_host_namespaces_apply_to_every_container():
    got = containers(
        {
            "hostNetwork": True,
            "hostPID": True,
            "initContainers": [{"name": "a", "image": "i"}],
            "containers": [{"name": "b", "image": "i"}],
        }
    )
    assert all(c.host_network and c.host_pid and not c.host_ipc for c in got.values())


def test_host_path_is_a_mount_only_where_mounted():
    c = one(
        {"volumeMounts": [{"name": "sock", "mountPath": "/var/run/docker.sock", "readOnly": True}]},
        volumes=[
            {"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}},
            {"name": "root", "hostPath": {"path": "/"}},
            {"name": "cache", "emptyDir": {}},
        ],
    )
    assert [(m.type, m.source, m.destination, m.read_only) for m in c.mounts] == [
        ("hostPath", "/var/run/docker.sock", "/var/run/docker.sock", True)
    ]


def test_env_value_from_is_a_reference_and_values_are_classified():
    c = one(
        {
            "env": [
                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
                {"name": "API_TOKEN", "value": "s3cr3t-literal-value"},
                {"name": "PASSWORD_FILE", "value": "/run/secrets/pw"},
                {"name": "TOKEN_TTL", "value": "3600"},
                {"name": "EXPANDED", "value": "$(OTHER_VAR)"},
                {"name": "EMPTY"},
            ]
        }
    )
    assert {v.name: v.kind for v in c.env} == {
        "DB_PASSWORD": ValueKind.REFERENCE,
        "API_TOKEN": ValueKind.LITERAL,
        "PASSWORD_FILE": ValueKind.PATH,
        "TOKEN_TTL": ValueKind.NUMBER,
        "EXPANDED": ValueKind.REFERENCE,
        "EMPTY": ValueKind.EMPTY,
    }


def test_host_ports_are_published_and_container_ports_exposed():
    c = one({"ports": [{"containerPort": 53, "protocol": "UDP", "hostPort": 53}, {"containerPort": 8080}]})
    assert c.exposed_ports == ("53/udp", "8080/tcp")
    assert [(p.container_port, p.protocol, p.host_port) for p in c.ports] == [(53, "udp", 53)]


def test_live_pod_joins_container_ids_digests_and_start_times():
    obj = pod({"containers": [{"name": "c", "image": "nginx:1.27"}]})
    obj["status"] = {
        "containerStatuses": [
            {
                "name": "c",
                "containerID": "docker://" + "ab" * 32,
                "imageID": "docker-pullable://nginx@sha256:" + "cd" * 32,
                "state": {"running": {"startedAt": "2025-05-01T10:00:00Z"}},
            }
        ]
    }
    (c,) = [x for x in kubeobjects.parse(obj, node_pod=True) if isinstance(x, Container)]
    assert c.id == "ab" * 32
    assert c.image_digest == "sha256:" + "cd" * 32
    assert c.started_at is not None
    assert (c.pod, c.workload_kind, c.workload_name) == ("p", "Pod", "p")


@pytest.mark.parametrize(
    ("owner", "labels", "expected"),
    [
        ({"kind": "ReplicaSet", "name": "web-5d8f7b9c6"}, {"pod-template-hash": "5d8f7b9c6"}, ("Deployment", "web")),
        ({"kind": "ReplicaSet", "name": "standalone-rs"}, {}, ("ReplicaSet", "standalone-rs")),
        ({"kind": "StatefulSet", "name": "db"}, {}, ("StatefulSet", "db")),
        ({"kind": "DaemonSet", "name": "agent"}, {}, ("DaemonSet", "agent")),
        ({"kind": "Job", "name": "backup-28930140"}, {}, ("CronJob", "backup")),
        ({"kind": "Job", "name": "migrate"}, {}, ("Job", "migrate")),
        (None, {}, ("Pod", "p")),
    ],
    ids=["deployment-via-rs", "bare-rs", "statefulset", "daemonset", "cronjob-via-job", "job", "bare-pod"],
)
def test_owner_of_a_pod(owner, labels, expected):
    meta: dict[str, Any] = {"labels": labels}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "v1", "uid": "u", "controller": True, **owner}]
    (w, *_) = kubeobjects.parse(pod({"containers": [{"name": "c", "image": "i"}]}, **meta), node_pod=True)
    assert isinstance(w, Workload)
    assert (w.kind, w.name, w.pod) == (*expected, "p")


def test_live_pod_token_volume_is_seen():
    spec = {
        "containers": [{"name": "c", "image": "i"}],
        "volumes": [{"name": "kube-api-access-x", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}],
    }
    (w, *_) = kubeobjects.parse(pod(spec), node_pod=True)
    assert isinstance(w, Workload)
    assert w.token_mounted is True


@pytest.mark.parametrize(
    ("kind", "template_path"),
    [("Deployment", ("spec", "template")), ("CronJob", ("spec", "jobTemplate", "spec", "template"))],
)
def test_workload_kinds_read_their_pod_template(kind, template_path):
    tmpl = {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    obj: dict[str, Any] = {"apiVersion": "x", "kind": kind, "metadata": {"name": "w", "namespace": "n"}}
    node = obj
    for key in template_path[:-1]:
        node = node.setdefault(key, {})
    node[template_path[-1]] = tmpl
    w, c = kubeobjects.parse(obj)
    assert isinstance(w, Workload)
    assert isinstance(c, Container)
    assert (w.kind, w.name, w.labels, c.workload_kind, c.workload_name, c.pod) == (
        kind,
        "w",
        (("a", "b"),),
        kind,
        "w",
        "",
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("containers", "x", "spec.containers: expected a list, got str"),
        ("securityContext", [1], "spec.securityContext: expected an object, got list"),
        ("hostNetwork", "maybe", "spec.hostNetwork: expected a boolean, got str"),
    ],
)
def test_malformed_fields_name_their_path(field, value, message):
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "i"}], field: value}
    with pytest.raises(kubeobjects.ObjectError, match=message):
        kubeobjects.parse(pod(spec))


def test_label_selector_semantics():
    sel = kubeobjects.selector_of(
        {
            "matchLabels": {"app": "a"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web"]},
                {"key": "canary", "operator": "DoesNotExist"},
            ],
        },
        "",
    )
    assert sel.matches((("app", "a"), ("tier", "web")))
    assert not sel.matches((("app", "a"), ("tier", "db")))
    assert not sel.matches((("app", "a"), ("canary", "1"), ("tier", "web")))
    bad = kubeobjects.selector_of({"matchExpressions": [{"key": "k", "operator": "Like"}]}, "")
    assert bad.invalid
    assert not bad.matches(())
    assert kubeobjects.selector_of({}, "").matches((("any", "thing"),))
