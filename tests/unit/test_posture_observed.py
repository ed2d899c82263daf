"""Posture checks prefer what /proc says over what the runtime declared (evidence names /proc)."""

from __future__ import annotations

import pytest

from ztmon.model.network import ProcessPosture

CID = "c0ffee" + "0" * 58


def observed(**kw):
    base = {"container_id": CID, "pid": 4242, "no_new_privs": True, "uids": (1000, 1000, 1000, 1000)}
    base.update(kw)
    return ProcessPosture(**base)


@pytest.mark.parametrize(
    ("declared_ro", "observed_ro", "flagged"),
    [(True, False, True), (False, True, False), (True, None, False), (False, None, True)],
)
def test_readonly_rootfs_follows_mountinfo_when_known(check, container, declared_ro, observed_ro, flagged):
    c = container(read_only_rootfs=declared_ro, observed=observed(rootfs_read_only=observed_ro))
    found = check("readonly-rootfs", c)
    assert bool(found) is flagged
    if found and observed_ro is not None:
        assert dict(found[0].evidence)["observed_from"] == "/proc/4242/mountinfo"


@pytest.mark.parametrize(
    ("declared", "nnp", "flagged"), [(True, False, True), (False, True, False), (False, None, True)]
)
def test_privilege_escalation_follows_nonewprivs_when_known(check, container, declared, nnp, flagged):
    c = container(no_new_privileges=declared, observed=observed(no_new_privs=nnp))
    assert bool(check("privilege-escalation", c)) is flagged


@pytest.mark.parametrize(
    ("user", "uids", "flagged"),
    [("1000", (0, 0, 0, 0), True), ("root", (1000, 1000, 1000, 1000), False), ("root", (), True)],
)
def test_run_as_root_follows_effective_uid_when_known(check, container, user, uids, flagged):
    found = check("run-as-root", container(user=user, observed=observed(uids=uids)))
    assert bool(found) is flagged


def test_capabilities_observed_dangerous_capability_is_reported_even_if_not_declared(check, container):
    c = container(cap_drop=("ALL",), observed=observed(cap_bounding=("SYS_ADMIN",), cap_effective=("SYS_ADMIN",)))
    (f,) = check("capabilities", c)
    assert dict(f.evidence)["added"] == "SYS_ADMIN"
    assert dict(f.evidence)["observed_from"] == "/proc/4242/status"


def test_capabilities_runtime_default_set_is_not_high_but_drop_all_is_reported(check, container):
    defaults = ("CHOWN", "NET_RAW", "SETUID", "SETGID", "KILL")
    c = container(cap_drop=(), observed=observed(cap_bounding=defaults))
    (f,) = check("capabilities", c)
    assert f.severity.label == "low"


def test_capabilities_empty_bounding_set_counts_as_dropped_all(check, container):
    assert check("capabilities", container(cap_drop=(), observed=observed(cap_bounding=()))) == []


def test_capabilities_explicit_net_raw_addition_is_still_reported_when_held(check, container):
    c = container(cap_add=("NET_RAW",), observed=observed(cap_bounding=("NET_RAW",)))
    (f,) = check("capabilities", c)
    assert dict(f.evidence)["added"] == "NET_RAW"
