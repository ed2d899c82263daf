"""capabilities: dangerous added capabilities (high, discriminator "added"); ALL not dropped (low, "drop-all")."""

from __future__ import annotations

import pytest

from ztmon.checks.common import normalise_capability
from ztmon.model.findings import Severity
from ztmon.model.policy import Policy


@pytest.mark.parametrize(
    ("spelling", "normal"),
    [
        ("SYS_ADMIN", "SYS_ADMIN"),
        ("CAP_SYS_ADMIN", "SYS_ADMIN"),
        ("sys_admin", "SYS_ADMIN"),
        ("cap_sys_admin", "SYS_ADMIN"),
        (" NET_RAW ", "NET_RAW"),
        ("all", "ALL"),
    ],
)
def test_normalise_capability(spelling, normal):
    assert normalise_capability(spelling) == normal


def _added(findings):
    return [f for f in findings if f.severity is Severity.HIGH]


def _drop_all(findings):
    return [f for f in findings if f.severity is Severity.LOW]


@pytest.mark.parametrize("spelling", ["SYS_ADMIN", "CAP_SYS_ADMIN", "sys_admin", "cap_sys_admin"])
def test_capabilities_flags_sys_admin_in_any_spelling(check, container, spelling):
    (f,) = check("capabilities", container(cap_add=(spelling,)))
    assert f.severity is Severity.HIGH
    assert dict(f.evidence) == {"added": "SYS_ADMIN"}


@pytest.mark.parametrize(
    ("cap_add", "added"),
    [
        (("NET_RAW", "SYS_ADMIN", "CHOWN"), "NET_RAW,SYS_ADMIN"),  # sorted; benign CHOWN left out
        (("SYS_ADMIN", "CAP_SYS_ADMIN"), "SYS_ADMIN"),  # one capability, two spellings
        (("ALL",), "ALL"),
        (("SYS_PTRACE", "BPF", "SYS_MODULE"), "BPF,SYS_MODULE,SYS_PTRACE"),
    ],
)
def test_capabilities_lists_dangerous_added(check, container, cap_add, added):
    (f,) = check("capabilities", container(cap_add=cap_add))
    assert dict(f.evidence) == {"added": added}


@pytest.mark.parametrize("cap_add", [(), ("CHOWN",), ("NET_BIND_SERVICE", "SETUID", "SETGID")])
def test_capabilities_ignores_benign_added(check, container, cap_add):
    assert check("capabilities", container(cap_add=cap_add)) == []


@pytest.mark.parametrize(
    ("cap_drop", "dropped"),
    [
        ((), "(none)"),
        (("NET_RAW",), "NET_RAW"),
        (("SETUID", "cap_net_raw"), "NET_RAW,SETUID"),
    ],
)
def test_capabilities_flags_all_not_dropped_as_low(check, container, cap_drop, dropped):
    (f,) = check("capabilities", container(cap_drop=cap_drop))
    assert f.severity is Severity.LOW
    assert dict(f.evidence) == {"dropped": dropped}


@pytest.mark.parametrize("cap_drop", [("ALL",), ("all",), ("CAP_ALL",), ("NET_RAW", "ALL")])
def test_capabilities_accepts_all_dropped_in_any_spelling(check, container, cap_drop):
    assert check("capabilities", container(cap_drop=cap_drop)) == []


def test_capabilities_added_and_not_dropped_give_two_findings_with_distinct_ids(check, container):
    findings = check("capabilities", container(cap_add=("SYS_ADMIN",), cap_drop=()))
    assert len(_added(findings)) == 1
    assert len(_drop_all(findings)) == 1
    assert len({f.id for f in findings}) == 2


def test_capabilities_added_finding_id_does_not_depend_on_which_capabilities(check, container):
    (a,) = check("capabilities", container(cap_add=("SYS_ADMIN",)))
    (b,) = check("capabilities", container(cap_add=("SYS_ADMIN", "NET_ADMIN")))
    assert a.id == b.id  # one problem ("adds dangerous capabilities") whose evidence changed


def test_capabilities_skips_privileged_container(check, container):
    assert check("capabilities", container(privileged=True, cap_add=("SYS_ADMIN",), cap_drop=())) == []


def test_capabilities_policy_list_is_normalised(check, container):
    policy = Policy(dangerous_capabilities=("cap_chown",))
    (f,) = check("capabilities", container(cap_add=("CHOWN",)), policy=policy)
    assert dict(f.evidence) == {"added": "CHOWN"}
