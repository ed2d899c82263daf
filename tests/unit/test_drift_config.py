"""drift-config: one finding per security setting that differs; loosened high, tightened low."""

from __future__ import annotations

import pytest

from tests.unit.conftest import HARDENED, make_container
from tests.unit.drift_helpers import locked, run, snapshot, workload
from ztmon.model.baseline import ContainerBaseline, SecurityBaseline
from ztmon.model.drift import security_of
from ztmon.model.findings import Severity
from ztmon.model.inventory import Mount

ID = "drift-config"
BASE = workload("web", ContainerBaseline("web", security=security_of(HARDENED)))


def test_unchanged_settings_are_no_drift() -> None:
    assert run(ID, snapshot(HARDENED, view=locked(BASE))) == []


@pytest.mark.parametrize(
    ("changes", "setting", "severity"),
    [
        ({"privileged": True}, "privileged", Severity.HIGH),
        ({"read_only_rootfs": False}, "read_only_rootfs", Severity.HIGH),
        ({"user": "root"}, "user", Severity.HIGH),
        ({"user": "2000"}, "user", Severity.LOW),
        ({"cap_add": ("SYS_ADMIN",)}, "cap_add", Severity.HIGH),
        ({"cap_drop": ()}, "cap_drop", Severity.HIGH),
        ({"no_new_privileges": False}, "no_new_privileges", Severity.HIGH),
        ({"host_pid": True}, "host_pid", Severity.HIGH),
        ({"mounts": (Mount("/var/run/docker.sock", "/sock", "bind", read_only=False),)}, "host_mounts", Severity.HIGH),
    ],
)
def test_each_changed_setting_is_one_finding(changes: dict, setting: str, severity: Severity) -> None:
    [f] = run(ID, snapshot(make_container(**changes), view=locked(BASE)))
    assert dict(f.evidence)["setting"] == setting
    assert f.severity is severity


def test_volume_mounts_are_not_host_mounts() -> None:
    c = make_container(mounts=(Mount("anon-1234", "/data", "volume", read_only=False),))
    assert run(ID, snapshot(c, view=locked(BASE))) == []


def test_only_recorded_settings_are_compared() -> None:
    base = workload("web", ContainerBaseline("web", security=SecurityBaseline(privileged=False)))
    assert run(ID, snapshot(make_container(user="root", cap_drop=()), view=locked(base))) == []


def test_a_container_the_locked_workload_does_not_list() -> None:
    sidecar = make_container(name="web", pod="p", namespace="ns", workload_kind="Deployment", workload_name="web")
    base = workload("Deployment/web", ContainerBaseline("app"), namespace="ns")
    [f] = run(ID, snapshot(sidecar, view=locked(base)))
    assert f.severity is Severity.MEDIUM
    assert "not in the baseline of ns/Deployment/web" in f.message
