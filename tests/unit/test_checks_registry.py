"""The registry and what every check shares: ids, default severities, resources, stable finding ids."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from ztmon.checks.common import resource_of
from ztmon.checks.registry import all_checks
from ztmon.model.findings import Severity, finding_id
from ztmon.model.inventory import EnvVar, Mount, Node, ValueKind

DOCS = Path(__file__).resolve().parents[2] / "docs" / "checks.md"

# The ids are a public contract (docs/checks.md): configuration, suppressions and alerts name them.
DEFAULT_SEVERITY = {
    "capabilities": Severity.HIGH,
    "host-namespaces": Severity.HIGH,
    "host-path": Severity.CRITICAL,  # registered at its highest variant
    "mutable-image": Severity.MEDIUM,
    "privilege-escalation": Severity.MEDIUM,
    "privileged": Severity.CRITICAL,
    "readonly-rootfs": Severity.MEDIUM,
    "run-as-root": Severity.MEDIUM,
    "secret-in-env": Severity.HIGH,
}

# One change to the hardened container that each check flags.
FLAGGED_BY: dict[str, dict[str, object]] = {
    "capabilities": {"cap_drop": ()},
    "host-namespaces": {"host_pid": True},
    "host-path": {"mounts": (Mount(source="/etc", destination="/host-etc", type="bind", read_only=True),)},
    "mutable-image": {"image": "nginx:latest"},
    "privilege-escalation": {"no_new_privileges": False},
    "privileged": {"privileged": True},
    "readonly-rootfs": {"read_only_rootfs": False},
    "run-as-root": {"user": "root"},
    "secret-in-env": {"env": (EnvVar("DB_PASSWORD", ValueKind.LITERAL),)},
}


def test_registry_holds_the_container_checks():
    assert set(DEFAULT_SEVERITY) <= set(all_checks())


def test_registry_is_sorted_by_id():
    assert list(all_checks()) == sorted(all_checks())


def _documented_ids() -> set[str]:
    return set(re.findall(r"^## `([a-z0-9-]+)`", DOCS.read_text(encoding="utf-8"), flags=re.MULTILINE))


@pytest.mark.parametrize("check_id", sorted(DEFAULT_SEVERITY))
def test_container_check_has_a_section_in_docs(check_id):
    assert check_id in _documented_ids()


def test_docs_name_only_registered_checks():
    assert _documented_ids() <= set(all_checks())


def test_flagging_table_covers_every_check():
    assert sorted(FLAGGED_BY) == sorted(DEFAULT_SEVERITY)


@pytest.mark.parametrize(("check_id", "severity"), sorted(DEFAULT_SEVERITY.items()))
def test_default_severity_of_each_check(check_id, severity):
    assert all_checks()[check_id].severity is severity


@pytest.mark.parametrize("check_id", sorted(DEFAULT_SEVERITY))
def test_every_check_is_enabled_by_default_and_titled(check_id):
    spec = all_checks()[check_id]
    assert spec.enabled_by_default
    assert spec.title


@pytest.mark.parametrize("check_id", sorted(DEFAULT_SEVERITY))
def test_hardened_container_passes_every_check(check_id, check, container):
    assert check(check_id, container()) == []


@pytest.mark.parametrize("check_id", sorted(DEFAULT_SEVERITY))
def test_empty_snapshot_gives_no_findings(check_id, check):
    assert check(check_id) == []


@pytest.mark.parametrize("check_id", sorted(DEFAULT_SEVERITY))
def test_finding_names_its_check_and_never_exceeds_default_severity(check_id, check, container):
    findings = check(check_id, container(**FLAGGED_BY[check_id]))
    assert findings
    for f in findings:
        assert f.check == check_id
        assert f.severity <= DEFAULT_SEVERITY[check_id]
        assert f.suppressed_by == ""


def test_docker_container_resource_is_kind_container_named_for_the_container(check, container):
    c = container(privileged=True)
    (f,) = check("privileged", c)
    r = f.resource
    assert (r.kind, r.namespace, r.name, r.container, r.pod) == ("Container", "", "web", "web", "")
    assert (r.container_id, r.node, r.image) == (c.id, "node-1", c.image)


def test_kubernetes_container_resource_is_kind_pod_named_for_the_pod(check, container):
    c = container(privileged=True, namespace="shop", pod="cart-7d9f", name="app")
    (f,) = check("privileged", c)
    r = f.resource
    assert (r.kind, r.namespace, r.name, r.pod, r.container) == ("Pod", "shop", "cart-7d9f", "cart-7d9f", "app")


def test_finding_id_is_stable_across_recreation_and_nodes(container, snapshot):
    run = all_checks()["privileged"].fn
    first = list(run(snapshot(container(privileged=True))))
    recreated = container(privileged=True, id="deadbeef" * 8)
    moved = dataclasses.replace(snapshot(recreated), node=Node(name="node-2"))
    second = list(run(moved))
    assert [f.id for f in first] == [f.id for f in second]


def test_finding_id_differs_by_check_resource_and_discriminator(container, snapshot):
    web = resource_of(container(), snapshot())
    api = resource_of(container(name="api"), snapshot())
    ids = {
        finding_id("privileged", web),
        finding_id("readonly-rootfs", web),
        finding_id("privileged", api),
        finding_id("host-namespaces", web, "pid"),
        finding_id("host-namespaces", web, "ipc"),
    }
    assert len(ids) == 5


def test_finding_id_is_sixteen_hex_digits(container, snapshot):
    fid = finding_id("privileged", resource_of(container(), snapshot()))
    assert len(fid) == 16
    int(fid, 16)


def test_host_path_never_exceeds_its_registered_severity(check, container):
    mount = Mount(source="/var/run/docker.sock", destination="/var/run/docker.sock", type="bind", read_only=False)
    (f,) = check("host-path", container(mounts=(mount,)))
    assert f.severity <= all_checks()["host-path"].severity


def test_every_registered_check_has_a_section_in_docs():
    missing = sorted(set(all_checks()) - _documented_ids())
    assert missing == [], f"undocumented check ids: {missing}"


def test_every_registered_check_has_a_row_in_the_id_table():
    text = DOCS.read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| \[?`([a-z0-9-]+)`", text, flags=re.MULTILINE))
    assert sorted(set(all_checks()) - rows) == []
