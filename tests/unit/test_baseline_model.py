"""Pure helpers of ztmon.model.baseline: path rules, implied directories, bounding, images, settings."""

from __future__ import annotations

import pytest

from ztmon.model.baseline import (
    Baseline,
    BaselineView,
    ChangeKind,
    FsChange,
    ImageBaseline,
    Mode,
    NodeBaseline,
    SecurityBaseline,
    WorkloadBaseline,
    WorkloadKey,
    bound_changes,
    image_allowed,
    merged,
    path_allowed,
    security_drift,
    significant,
    value_matches,
)

A, C, D = ChangeKind.ADDED, ChangeKind.CHANGED, ChangeKind.DELETED
DIGEST1 = "sha256:" + "1" * 64
DIGEST2 = "sha256:" + "2" * 64


@pytest.mark.parametrize(
    ("path", "rules", "allowed"),
    [
        ("/tmp/x", ("/tmp",), True),
        ("/tmp", ("/tmp",), True),
        ("/tmp/a/b/c", ("/tmp/",), True),
        ("/tmpfoo", ("/tmp",), False),  # a component boundary, not a string prefix
        ("/etc/passwd", ("/tmp", "/var/log"), False),
        ("/etc/passwd", ("/",), True),
        ("/home/u/.cache/x", ("/home/*/.cache",), True),
        ("/home/u/v/.cache", ("/home/*/.cache",), False),  # * stays within one component
        ("/home/u/v/.cache", ("/home/**/.cache",), True),  # ** crosses
        ("/var/log/app.log", ("/var/log/*.log",), True),
        ("/var/log/app.txt", ("/var/log/*.log",), False),
        ("/a+b/c", ("/a+b",), True),  # regex metacharacters are literal
        ("/x", (), False),
    ],
)
def test_path_allowed(path: str, rules: tuple[str, ...], allowed: bool) -> None:
    assert path_allowed(path, rules) is allowed


def test_significant_drops_directories_listed_for_a_change_below_them() -> None:
    changes = [("/etc", C), ("/etc/passwd", C), ("/var", A), ("/var/cache", A), ("/var/cache/f", A), ("/old", D)]
    assert significant(changes) == [("/etc/passwd", C), ("/var/cache/f", A), ("/old", D)]


def test_significant_keeps_a_directory_changed_on_its_own() -> None:
    assert significant([("/etc", C), ("/etc-old", A)]) == [("/etc", C), ("/etc-old", A)]


def test_bound_changes_keeps_small_sets_as_they_are() -> None:
    changes = [FsChange("/b", A), FsChange("/a", C)]
    assert bound_changes(changes, 10) == ([FsChange("/a", C), FsChange("/b", A)], False)


def test_bound_changes_collapses_the_largest_directory_first() -> None:
    cache = [FsChange(f"/var/cache/app/f{i:04d}", A) for i in range(1000)]
    lone = FsChange("/etc/passwd", C)
    out, collapsed = bound_changes([*cache, lone], 10)
    assert collapsed
    assert out == [lone, FsChange("/var/cache/app", A, count=1000)]


def test_bound_changes_goes_up_a_level_until_it_fits() -> None:
    many = [FsChange(f"/d{i}/f{j}", A) for i in range(30) for j in range(3)]
    out, collapsed = bound_changes(many, 20)
    assert collapsed
    assert len(out) <= 20
    assert sum(c.count for c in out) == 90


def test_bound_changes_mixed_kinds_collapse_as_changed() -> None:
    out, _ = bound_changes([FsChange("/d/a", A), FsChange("/d/b", D), FsChange("/x", A)], 2)
    assert FsChange("/d", C, count=2) in out


@pytest.mark.parametrize(
    ("reference", "digest", "images", "allowed", "named"),
    [
        ("app:1", DIGEST1, (ImageBaseline("app:1", (DIGEST1,)),), True, True),
        ("app:1", DIGEST2, (ImageBaseline("app:1", (DIGEST1,)),), False, True),  # same tag, new digest
        ("app:2", DIGEST1, (ImageBaseline("app:1", (DIGEST1,)),), False, False),  # not in the baseline
        ("app:1", DIGEST2, (ImageBaseline("app:1"),), True, True),  # no digests recorded: any
        ("app:1.4", DIGEST2, (ImageBaseline("app:1.*"),), True, True),  # glob reference
        ("app:1", DIGEST1, (), False, False),
    ],
)
def test_image_allowed(
    reference: str, digest: str, images: tuple[ImageBaseline, ...], allowed: bool, named: bool
) -> None:
    ok, entry = image_allowed(reference, digest, images)
    assert ok is allowed
    assert (entry is not None) is named


@pytest.mark.parametrize(
    ("expected", "observed", "ok"),
    [("6.1.0-26-amd64", "6.1.0-26-amd64", True), ("6.1.0-*", "6.1.0-27-amd64", True), ("6.1.0-*", "6.2.0-1", False)],
)
def test_value_matches(expected: str, observed: str, ok: bool) -> None:
    assert value_matches(expected, observed) is ok


@pytest.mark.parametrize(
    ("expected", "observed", "field", "loosened"),
    [
        (SecurityBaseline(privileged=False), SecurityBaseline(privileged=True), "privileged", True),
        (SecurityBaseline(privileged=True), SecurityBaseline(privileged=False), "privileged", False),
        (SecurityBaseline(read_only_rootfs=True), SecurityBaseline(read_only_rootfs=False), "read_only_rootfs", True),
        (SecurityBaseline(user="1000"), SecurityBaseline(user="root"), "user", True),
        (SecurityBaseline(user="root"), SecurityBaseline(user="1000"), "user", False),
        (SecurityBaseline(cap_add=()), SecurityBaseline(cap_add=("NET_ADMIN",)), "cap_add", True),
        (SecurityBaseline(cap_drop=("ALL",)), SecurityBaseline(cap_drop=()), "cap_drop", True),
        (SecurityBaseline(cap_drop=()), SecurityBaseline(cap_drop=("ALL",)), "cap_drop", False),
        (SecurityBaseline(host_mounts=("/d:/d:ro",)), SecurityBaseline(host_mounts=("/d:/d:rw",)), "host_mounts", True),
        (
            SecurityBaseline(published_ports=()),
            SecurityBaseline(published_ports=("*:80->80/tcp",)),
            "published_ports",
            True,
        ),
    ],
)
def test_security_drift_names_the_setting_and_whether_it_grants_more(
    expected: SecurityBaseline, observed: SecurityBaseline, field: str, loosened: bool
) -> None:
    [d] = security_drift(expected, observed)
    assert (d.field, d.loosened) == (field, loosened)


def test_security_drift_ignores_what_was_not_recorded_and_set_order() -> None:
    expected = SecurityBaseline(cap_add=("A", "B"))
    observed = SecurityBaseline(privileged=True, cap_add=("B", "A"))
    assert security_drift(expected, observed) == []


def test_merged_first_wins() -> None:
    doc = Baseline(workloads=(WorkloadBaseline("ns", "a", listeners=()),))
    learned = Baseline(workloads=(WorkloadBaseline("ns", "a"), WorkloadBaseline("ns", "b")))
    out = merged(doc, learned)
    assert [w.key for w in out.workloads] == [WorkloadKey("ns", "a"), WorkloadKey("ns", "b")]
    assert out.workload(WorkloadKey("ns", "a")) == doc.workloads[0]


def test_node_entries_match_by_glob_in_order() -> None:
    b = Baseline(nodes=(NodeBaseline(name="edge-*", kernel="5.*"), NodeBaseline(kernel="6.*")))
    assert b.node("edge-7") == b.nodes[0]
    assert b.node("core-1") == b.nodes[1]


def test_view_modes() -> None:
    locked = WorkloadKey("", "web")
    learning = WorkloadKey("", "new")
    view = BaselineView(baseline=Baseline(workloads=(WorkloadBaseline("", "web"),)), learning=frozenset({learning}))
    assert view.mode(locked) is Mode.LOCKED
    assert view.mode(learning) is Mode.LEARNING
    assert view.mode(WorkloadKey("", "unseen")) is Mode.LEARNING
    assert BaselineView(unknown=Mode.LOCKED).mode(WorkloadKey("", "unseen")) is Mode.LOCKED
