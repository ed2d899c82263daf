"""drift-filesystem: changes outside allowed paths (one medium finding per kind), executables (high each)."""

from __future__ import annotations

from tests.unit.conftest import make_container
from tests.unit.drift_helpers import locked, run, snapshot, workload
from ztmon.checks.drift_filesystem import MAX_EXECUTABLES
from ztmon.model.baseline import ChangeKind, ContainerBaseline, ContainerFsChanges, FilesystemBaseline, FsChange
from ztmon.model.findings import Finding, Severity

ID = "drift-filesystem"
A, C, D = ChangeKind.ADDED, ChangeKind.CHANGED, ChangeKind.DELETED
WEB = make_container(name="web")
ALLOWED = FilesystemBaseline(allowed_paths=("/tmp", "/var/cache/app"), allowed_executables=("/opt/app/bin/*",))
BASE = workload("web", ContainerBaseline("web", filesystem=ALLOWED))


def findings(*changes: FsChange, base=BASE) -> list[Finding]:
    fc = ContainerFsChanges(container_id=WEB.id, changes=changes)
    return run(ID, snapshot(WEB, view=locked(base), fs_changes=(fc,)))


def test_changes_inside_allowed_paths_are_no_drift() -> None:
    assert findings(FsChange("/tmp/x", A), FsChange("/var/cache/app/y", C), FsChange("/tmp/z", D)) == []


def test_changes_outside_are_one_finding_per_kind() -> None:
    fs = findings(
        FsChange("/etc/passwd", C), FsChange("/etc/shadow", C), FsChange("/usr/lib/x", D), FsChange("/tmp/ok", A)
    )
    by_kind = {dict(f.evidence)["kind"]: f for f in fs}
    assert set(by_kind) == {"changed", "deleted"}
    assert all(f.severity is Severity.MEDIUM for f in fs)
    assert dict(by_kind["changed"].evidence)["count"] == "2"
    assert "/etc/passwd, /etc/shadow" in by_kind["changed"].message


def test_a_collapsed_directory_counts_its_entries() -> None:
    [f] = findings(FsChange("/srv/data", A, count=5000))
    assert "5000 path(s) added" in f.message
    assert "/srv/data/…" in f.message


def test_new_executable_is_high_even_in_an_allowed_path() -> None:
    [f] = findings(FsChange("/tmp/xmrig", A, executable="ELF magic", probed=True))
    assert f.severity is Severity.HIGH
    assert f.message == "container web: new executable /tmp/xmrig (ELF magic)"
    assert dict(f.evidence)["path"] == "/tmp/xmrig"


def test_changed_executable_is_high() -> None:
    [f] = findings(FsChange("/usr/bin/ls", C, executable="mode 0755", probed=True))
    assert f.severity is Severity.HIGH
    assert "changed executable /usr/bin/ls" in f.message


def test_allowed_executables() -> None:
    assert findings(FsChange("/opt/app/bin/tool", A, executable="mode 0755", probed=True)) == []


def test_executables_are_bounded_per_container() -> None:
    fs = findings(
        *(FsChange(f"/x/e{i:02d}", A, executable="mode 0755", probed=True) for i in range(MAX_EXECUTABLES + 5))
    )
    assert len(fs) == MAX_EXECUTABLES + 1
    assert "5 more new or changed executables" in fs[-1].message


def test_container_not_in_the_baseline_allows_nothing() -> None:
    base = workload("web", ContainerBaseline("other"))
    [f] = findings(FsChange("/tmp/x", A), base=base)
    assert dict(f.evidence)["kind"] == "added"


def test_writable_layer_not_recorded_is_not_judged() -> None:
    assert findings(FsChange("/etc/passwd", C), base=workload("web", ContainerBaseline("web"))) == []


def test_finding_ids_are_stable_per_path_and_kind() -> None:
    one = findings(FsChange("/tmp/e", A, executable="ELF magic"), FsChange("/etc/a", C))
    two = findings(FsChange("/tmp/e", A, executable="ELF magic"), FsChange("/etc/a", C), FsChange("/etc/b", C))
    assert {f.id for f in one} == {f.id for f in two}
