"""drift-image: new digest under a reviewed reference (high), a reference not in the baseline (medium)."""

from __future__ import annotations

from tests.unit.conftest import make_container
from tests.unit.drift_helpers import DIGEST1, DIGEST2, locked, run, snapshot, workload
from ztmon.model.baseline import BaselineView, ContainerBaseline, ImageBaseline, WorkloadKey
from ztmon.model.findings import Severity

ID = "drift-image"
WEB = make_container(name="web", image="registry.example.com/web:1.4", image_digest=DIGEST1)
BASE = workload("web", ContainerBaseline("web", images=(ImageBaseline("registry.example.com/web:1.4", (DIGEST1,)),)))


def test_same_image_same_digest_is_no_drift() -> None:
    assert run(ID, snapshot(WEB, view=locked(BASE))) == []


def test_rebuilt_under_the_same_tag_is_high() -> None:
    rebuilt = make_container(name="web", image="registry.example.com/web:1.4", image_digest=DIGEST2)
    [f] = run(ID, snapshot(rebuilt, view=locked(BASE)))
    assert f.severity is Severity.HIGH
    assert "rebuilt or re-pushed" in f.message
    assert dict(f.evidence)["expected_digests"] == DIGEST1
    assert dict(f.evidence)["workload"] == "web"


def test_another_reference_is_medium() -> None:
    other = make_container(name="web", image="registry.example.com/web:1.5", image_digest=DIGEST2)
    [f] = run(ID, snapshot(other, view=locked(BASE)))
    assert f.severity is Severity.MEDIUM
    assert "not in the baseline" in f.message


def test_workload_without_baseline_in_strict_mode() -> None:
    [f] = run(ID, snapshot(make_container(name="stranger"), view=locked(BASE)))
    assert f.severity is Severity.MEDIUM
    assert "workload stranger has no baseline" in f.message


def test_a_learning_workload_is_not_judged() -> None:
    stranger = make_container(name="stranger")
    assert run(ID, snapshot(stranger, view=locked(BASE, learning=(WorkloadKey("", "stranger"),)))) == []
    assert run(ID, snapshot(stranger, view=BaselineView())) == []  # daemon default: unseen = learning


def test_images_not_recorded_are_not_judged() -> None:
    assert run(ID, snapshot(WEB, view=locked(workload("web", ContainerBaseline("web"))))) == []


def test_no_baseline_no_findings() -> None:
    assert run(ID, snapshot(WEB, view=None)) == []


def test_finding_id_is_stable_across_rebuilds() -> None:
    a = make_container(name="web", image="registry.example.com/web:1.4", image_digest=DIGEST2)
    b = make_container(name="web", image="registry.example.com/web:1.4", image_digest="sha256:" + "3" * 64)
    assert run(ID, snapshot(a, view=locked(BASE)))[0].id == run(ID, snapshot(b, view=locked(BASE)))[0].id
