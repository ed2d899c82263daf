"""engine.pipeline: snapshot building, isolated checks, severity overrides, one cycle to a Report."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ztmon.checks.registry import CheckSpec, all_checks
from ztmon.engine import pipeline
from ztmon.model.findings import Severity, SourceStatus
from ztmon.model.inventory import Node, SourcePart
from ztmon.model.policy import Policy
from ztmon.model.suppression import IGNORE_KEY, SuppressionRule

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def boom(snapshot):
    raise RuntimeError("exploded")


def flaky_spec(fails):
    """A check that raises while `fails[0]` is true."""

    def fn(snapshot):
        if fails[0]:
            raise KeyError("x")
        return []

    return CheckSpec("flaky", fn, Severity.LOW, "flaky")


BOOM = CheckSpec("boom", boom, Severity.HIGH, "always raises")


def spec(check_id):
    return all_checks()[check_id]


# -- merge_node / build_snapshot ------------------------------------------------------------------


def test_merge_node_configured_name_wins_and_fields_merge():
    parts = [
        SourcePart(node=Node(name="", runtime_version="docker://27.0.3")),
        SourcePart(node=Node(name="other", kernel="6.8.0", os_image="Debian GNU/Linux 12 (bookworm)")),
    ]
    assert pipeline.merge_node("node-1", parts) == Node(
        name="node-1", kernel="6.8.0", os_image="Debian GNU/Linux 12 (bookworm)", runtime_version="docker://27.0.3"
    )


def test_merge_node_first_non_empty_value_wins():
    parts = [
        SourcePart(node=Node(name="", kernel="")),
        SourcePart(node=Node(name="", kernel="6.1")),
        SourcePart(node=Node(name="", kernel="6.8")),
    ]
    assert pipeline.merge_node("n", parts).kernel == "6.1"


def test_merge_node_skips_parts_without_node():
    assert pipeline.merge_node("n", [SourcePart(), SourcePart(node=None)]) == Node(name="n")


def test_build_snapshot_merges_node_and_containers(container):
    a, b = container(), container(name="api", id="a" * 64)
    parts = [
        SourcePart(node=Node(name="host", kernel="6.8.0")),
        SourcePart(containers=(a, b), node=Node(name="", runtime_version="docker://27.0.3")),
    ]
    snap = pipeline.build_snapshot(now=NOW, node_name="node-1", parts=parts, policy=Policy())
    assert snap.taken_at == NOW
    assert snap.node == Node(name="node-1", kernel="6.8.0", runtime_version="docker://27.0.3")
    assert snap.containers == (a, b)


def test_build_snapshot_keeps_first_of_duplicate_containers(container):
    first, again = container(), container(privileged=True)  # same runtime and id
    other_runtime = container(runtime="podman")
    snap = pipeline.build_snapshot(
        now=NOW,
        node_name="n",
        parts=[SourcePart(containers=(first,)), SourcePart(containers=(again, other_runtime))],
        policy=Policy(),
    )
    assert snap.containers == (first, other_runtime)


def test_build_snapshot_keys_id_less_containers_by_name(container):
    a, b = container(id=""), container(id="", name="api")
    snap = pipeline.build_snapshot(now=NOW, node_name="n", parts=[SourcePart(containers=(a, b, a))], policy=Policy())
    assert snap.containers == (a, b)


def test_build_snapshot_carries_policy():
    policy = Policy(trusted_mutable_registries=("r.example",))
    assert pipeline.build_snapshot(now=NOW, node_name="n", parts=[], policy=policy).policy is policy


# -- CheckRunner ----------------------------------------------------------------------------------


def test_raising_check_is_isolated(container, snapshot):
    runner = pipeline.CheckRunner([spec("privileged"), BOOM, spec("readonly-rootfs")])
    findings, statuses = runner.run(snapshot(container(privileged=True, read_only_rootfs=False)))
    assert sorted(f.check for f in findings) == ["privileged", "readonly-rootfs"]
    by_name = {s.name: s for s in statuses}
    assert [s.name for s in statuses] == ["privileged", "boom", "readonly-rootfs"]
    assert by_name["boom"].ok is False
    assert by_name["boom"].error == "RuntimeError: exploded"
    assert by_name["boom"].errors_total == 1
    assert by_name["privileged"].ok is True
    assert by_name["privileged"].error == ""
    assert by_name["privileged"].errors_total == 0


def test_check_failing_midway_through_its_iterator_is_isolated(container, snapshot):
    def half(snap):
        yield from spec("privileged").fn(snap)
        raise ValueError("late")

    runner = pipeline.CheckRunner([CheckSpec("half", half, Severity.LOW, "half"), spec("readonly-rootfs")])
    findings, statuses = runner.run(snapshot(container(privileged=True, read_only_rootfs=False)))
    assert [f.check for f in findings] == ["readonly-rootfs"]  # nothing from the half-run check
    assert statuses[0].ok is False


def test_errors_total_accumulates_across_cycles(snapshot):
    runner = pipeline.CheckRunner([BOOM])
    totals = [runner.run(snapshot())[1][0].errors_total for _ in range(3)]
    assert totals == [1, 2, 3]
    assert runner.errors_total == {"boom": 3}


def test_errors_total_kept_after_recovery(snapshot):
    fails = [True]
    runner = pipeline.CheckRunner([flaky_spec(fails)])
    runner.run(snapshot())
    runner.run(snapshot())
    fails[0] = False
    (status,) = runner.run(snapshot())[1]
    assert status.ok is True
    assert status.errors_total == 2  # a counter: never goes back
    assert status.error == ""


def test_check_durations_are_measured(container, snapshot):
    _, statuses = pipeline.CheckRunner([spec("privileged"), BOOM]).run(snapshot(container()))
    assert all(s.duration_seconds >= 0 for s in statuses)


@pytest.mark.parametrize("override", [Severity.INFO, Severity.CRITICAL])
def test_severity_override_replaces_every_finding_of_the_check(container, snapshot, override):
    runner = pipeline.CheckRunner([spec("capabilities")], severity_overrides={"capabilities": override})
    findings, _ = runner.run(snapshot(container(cap_add=("SYS_ADMIN",), cap_drop=())))
    assert [f.severity for f in findings] == [override, override]  # the high and the low variant


def test_severity_override_leaves_other_checks_and_ids_alone(container, snapshot):
    snap = snapshot(container(privileged=True, read_only_rootfs=False))
    plain, _ = pipeline.CheckRunner([spec("privileged"), spec("readonly-rootfs")]).run(snap)
    runner = pipeline.CheckRunner(
        [spec("privileged"), spec("readonly-rootfs")], severity_overrides={"readonly-rootfs": Severity.HIGH}
    )
    overridden, _ = runner.run(snap)
    assert [(f.check, f.severity) for f in overridden] == [
        ("privileged", Severity.CRITICAL),
        ("readonly-rootfs", Severity.HIGH),
    ]
    assert [f.id for f in overridden] == [f.id for f in plain]


# -- cycle ----------------------------------------------------------------------------------------


def run_cycle(snap, specs, rules=(), **kw):
    return pipeline.cycle(
        snapshot=snap,
        runner=pipeline.CheckRunner(specs),
        rules=tuple(rules),
        known_checks=frozenset(all_checks()),
        sources=kw.pop("sources", ()),
        **kw,
    )


def test_cycle_report_orders_findings_by_severity_then_check(container, snapshot):
    snap = snapshot(container(privileged=True, read_only_rootfs=False, cap_drop=(), host_pid=True))
    specs = [spec(i) for i in ("capabilities", "host-namespaces", "privileged", "readonly-rootfs")]
    report = run_cycle(snap, specs).report
    assert [(f.severity.label, f.check) for f in report.findings] == [
        ("critical", "privileged"),
        ("high", "host-namespaces"),
        ("medium", "readonly-rootfs"),
    ]  # capabilities skips the privileged container


def test_cycle_report_fields(container, snapshot):
    c = container(read_only_rootfs=False)
    sources = (SourceStatus("docker", up=True, last_success=NOW, duration_seconds=0.01),)
    report = run_cycle(snapshot(c), [spec("readonly-rootfs"), BOOM], sources=sources, cycles_total=7).report
    assert report.taken_at == NOW
    assert report.node == "node-1"
    assert report.checks_enabled == ("readonly-rootfs", "boom")
    assert report.sources == sources
    assert report.cycles_total == 7
    assert len(report.scan_id) == 12
    assert [s.ok for s in report.checks] == [True, False]
    (state,) = report.containers
    assert (state.runtime, state.name, state.id, state.image, state.read_only_rootfs) == (
        "docker",
        "web",
        c.id,
        c.image,
        False,
    )


def test_cycle_applies_suppression_and_returns_problems(container, snapshot):
    c = container(read_only_rootfs=False, privileged=True, labels=((IGNORE_KEY, "readonly-rootfs,nope reason=x"),))
    result = run_cycle(snapshot(c), [spec("readonly-rootfs"), spec("privileged")])
    assert [f.check for f in result.report.findings] == ["privileged"]
    assert [f.check for f in result.report.suppressed] == ["readonly-rootfs"]
    assert result.problems == ("web: label ztmon.io/ignore: unknown check id 'nope'",)


def test_cycle_applies_config_rules(container, snapshot):
    rules = [SuppressionRule(check="*", reason="lab", namespace="*")]
    report = run_cycle(snapshot(container(privileged=True)), [spec("privileged")], rules).report
    assert report.findings == ()
    assert report.suppressed[0].suppressed_by == "rule *: lab"


def test_cycle_max_severity(container, snapshot):
    report = run_cycle(snapshot(container(read_only_rootfs=False)), [spec("readonly-rootfs")]).report
    assert report.max_severity() is Severity.MEDIUM
    assert run_cycle(snapshot(container()), [spec("readonly-rootfs")]).report.max_severity() is None
