"""drift-node: OS image, kernel or runtime version differs from the node baseline (globs allowed)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.unit.conftest import make_snapshot
from tests.unit.drift_helpers import run
from ztmon.model.baseline import Baseline, BaselineView, Mode, NodeBaseline
from ztmon.model.inventory import Node

ID = "drift-node"
NODE = Node(
    name="node-1",
    os_image="Debian GNU/Linux 12 (bookworm)",
    kernel="6.1.0-26-amd64",
    runtime_version="docker://20.10.24",
)


def check(node: Node, *entries: NodeBaseline, mode: Mode = Mode.LOCKED) -> list[str]:
    view = BaselineView(baseline=Baseline(nodes=entries), node_mode=mode)
    snap = dataclasses.replace(make_snapshot(), node=node, baseline=view)
    return [dict(f.evidence)["setting"] for f in run(ID, snap)]


def test_same_node_no_drift() -> None:
    assert check(NODE, NodeBaseline("node-1", NODE.os_image, NODE.kernel, NODE.runtime_version)) == []


@pytest.mark.parametrize("field", ["os_image", "kernel", "runtime_version"])
def test_each_field_differs(field: str) -> None:
    assert check(
        dataclasses.replace(NODE, **{field: "other"}),
        NodeBaseline("*", NODE.os_image, NODE.kernel, NODE.runtime_version),
    ) == [field]


def test_kernel_glob_accepts_patch_releases() -> None:
    assert check(NODE, NodeBaseline(kernel="6.1.0-*")) == []
    assert check(dataclasses.replace(NODE, kernel="6.5.0-1-amd64"), NodeBaseline(kernel="6.1.0-*")) == ["kernel"]


def test_unknown_values_and_unrecorded_fields_are_not_judged() -> None:
    assert check(dataclasses.replace(NODE, runtime_version=""), NodeBaseline(runtime_version="docker://1")) == []
    assert check(NODE, NodeBaseline(kernel="")) == []


def test_other_nodes_and_learning_are_not_judged() -> None:
    assert check(NODE, NodeBaseline(name="edge-*", kernel="5.*")) == []
    assert check(NODE, NodeBaseline(kernel="5.*"), mode=Mode.LEARNING) == []


def test_finding_is_about_the_node() -> None:
    view = BaselineView(baseline=Baseline(nodes=(NodeBaseline(kernel="5.*"),)))
    [f] = run(ID, dataclasses.replace(make_snapshot(), node=NODE, baseline=view))
    assert (f.resource.kind, f.resource.name) == ("Node", "node-1")
    assert "6.1.0-26-amd64" in f.message
