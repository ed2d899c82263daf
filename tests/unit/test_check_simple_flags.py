"""readonly-rootfs, privileged, privilege-escalation and host-namespaces: one boolean each."""

from __future__ import annotations

import pytest

from ztmon.model.findings import Severity

# -- readonly-rootfs ------------------------------------------------------------------------------


def test_readonly_rootfs_flags_writable_root(check, container):
    (f,) = check("readonly-rootfs", container(read_only_rootfs=False))
    assert f.severity is Severity.MEDIUM
    assert dict(f.evidence) == {"read_only_rootfs": "false"}
    assert f.message == "container web has a writable root filesystem"


def test_readonly_rootfs_passes_read_only_root(check, container):
    assert check("readonly-rootfs", container(read_only_rootfs=True)) == []


def test_readonly_rootfs_one_finding_per_container(check, container):
    findings = check(
        "readonly-rootfs",
        container(read_only_rootfs=False),
        container(read_only_rootfs=False, name="api", id="a" * 64),
        container(read_only_rootfs=True, name="ok", id="b" * 64),
    )
    assert [f.resource.name for f in findings] == ["web", "api"]
    assert len({f.id for f in findings}) == 2


# -- privileged -----------------------------------------------------------------------------------


def test_privileged_flags_privileged_container_as_critical(check, container):
    (f,) = check("privileged", container(privileged=True))
    assert f.severity is Severity.CRITICAL
    assert dict(f.evidence) == {"privileged": "true"}


def test_privileged_passes_unprivileged_container(check, container):
    assert check("privileged", container(privileged=False)) == []


# -- privilege-escalation -------------------------------------------------------------------------


def test_privilege_escalation_flags_missing_no_new_privileges(check, container):
    (f,) = check("privilege-escalation", container(no_new_privileges=False))
    assert f.severity is Severity.MEDIUM
    assert dict(f.evidence) == {"no_new_privileges": "false"}


def test_privilege_escalation_passes_no_new_privileges(check, container):
    assert check("privilege-escalation", container(no_new_privileges=True)) == []


def test_privilege_escalation_still_reported_for_privileged_container(check, container):
    assert len(check("privilege-escalation", container(privileged=True, no_new_privileges=False))) == 1


# -- host-namespaces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "namespaces"),
    [
        ({}, []),
        ({"host_network": True}, ["network"]),
        ({"host_pid": True}, ["pid"]),
        ({"host_ipc": True}, ["ipc"]),
        ({"host_network": True, "host_ipc": True}, ["network", "ipc"]),
        ({"host_network": True, "host_pid": True, "host_ipc": True}, ["network", "pid", "ipc"]),
    ],
)
def test_host_namespaces_one_finding_per_shared_namespace(check, container, flags, namespaces):
    findings = check("host-namespaces", container(**flags))
    assert [dict(f.evidence) for f in findings] == [{"namespace": ns} for ns in namespaces]
    assert all(f.severity is Severity.HIGH for f in findings)


def test_host_namespaces_findings_have_distinct_ids(check, container):
    findings = check("host-namespaces", container(host_network=True, host_pid=True, host_ipc=True))
    assert len({f.id for f in findings}) == 3


def test_host_namespaces_message_names_the_namespace(check, container):
    (f,) = check("host-namespaces", container(host_pid=True))
    assert f.message == "container web shares the host pid namespace"
