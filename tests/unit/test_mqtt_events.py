"""The event model: diff of reports by finding id, payloads, ids, topics, summary."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from ztmon.model.findings import Finding, Report, Resource, Severity, SourceStatus
from ztmon.sinks import events

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)


def finding(name: str, *, severity: Severity = Severity.HIGH, check: str = "privileged", **evidence: str) -> Finding:
    return Finding.make(
        check=check,
        severity=severity,
        resource=Resource(kind="Container", name=name, container=name, image="example/app:1"),
        message=f"{name} is privileged",
        evidence=evidence or {"setting": "Privileged"},
    )


def report(*findings: Finding, n: int = 1, suppressed: tuple[Finding, ...] = (), up: bool = True) -> Report:
    return Report(
        scan_id=f"scan-{n}",
        taken_at=T0 + timedelta(minutes=n),
        node="node-1",
        checks_enabled=("privileged", "run-as-root"),
        findings=findings,
        suppressed=suppressed,
        sources=(SourceStatus("docker", up=up, last_success=T0 if up else None, duration_seconds=0.0),),
    )


def ids() -> events.EventIds:
    return events.EventIds()


def run(previous: dict[str, events.Tracked], r: Report) -> events.Diff:
    counter = itertools.count(1)
    return events.diff(previous, r, cluster="c1", now=NOW, new_id=lambda: f"e{next(counter)}")


def kinds(d: events.Diff) -> list[tuple[str, str]]:
    return [(e.type.value, e.finding["resource"]["name"]) for e in d.events]


def test_first_report_opens_every_finding():
    d = run({}, report(finding("a"), finding("b")))
    assert kinds(d) == [("opened", "a"), ("opened", "b")]
    assert set(d.state) == set(d.upserts)


def test_same_report_again_emits_nothing():
    first = run({}, report(finding("a")))
    again = run(first.state, report(finding("a"), n=2))
    assert again.events == ()
    assert again.upserts == {}
    assert again.deletes == ()


def test_missing_finding_is_resolved_not_observed():
    first = run({}, report(finding("a"), finding("b")))
    d = run(first.state, report(finding("a"), n=2))
    assert kinds(d) == [("resolved", "b")]
    assert d.events[0].resolution == "not_observed"
    assert d.deletes == (finding("b").id,)
    assert set(d.state) == {finding("a").id}


def test_suppressed_finding_is_resolved_as_suppressed():
    first = run({}, report(finding("a")))
    sup = finding("a")
    sup = Finding(**{**{k: getattr(sup, k) for k in sup.__slots__}, "suppressed_by": "legacy, TICKET-1"})
    d = run(first.state, report(n=2, suppressed=(sup,)))
    assert kinds(d) == [("resolved", "a")]
    payload = d.events[0].payload()
    assert payload["resolution"] == "suppressed"
    assert payload["suppressed_by"] == "legacy, TICKET-1"


@pytest.mark.parametrize(
    ("after", "changes"),
    [
        (finding("a", severity=Severity.CRITICAL), ["severity"]),
        (finding("a", setting="Privileged", extra="CAP_SYS_ADMIN"), ["evidence"]),
        (finding("a", severity=Severity.LOW, setting="other"), ["severity", "evidence"]),
    ],
)
def test_severity_or_evidence_change_is_changed(after: Finding, changes: list[str]):
    first = run({}, report(finding("a")))
    d = run(first.state, report(after, n=2))
    assert kinds(d) == [("changed", "a")]
    payload = d.events[0].payload()
    assert payload["changes"] == changes
    assert payload["previous"] == {"severity": "high", "evidence": {"setting": "Privileged"}}
    assert payload["opened_at"] == "2026-01-01T00:01:00Z"  # kept from the opening


def test_message_only_change_updates_state_without_event():
    first = run({}, report(finding("a")))
    reworded = Finding(**{**{k: getattr(finding("a"), k) for k in Finding.__slots__}, "message": "reworded"})
    d = run(first.state, report(reworded, n=2))
    assert d.events == ()
    assert d.upserts[reworded.id].finding["message"] == "reworded"


def test_reopened_after_resolution_is_opened_again():
    s1 = run({}, report(finding("a"))).state
    s2 = run(s1, report(n=2)).state
    d = run(s2, report(finding("a"), n=3))
    assert kinds(d) == [("opened", "a")]
    assert d.events[0].opened_at == "2026-01-01T00:03:00Z"


def test_source_never_up_holds_resolutions():
    """After a restart with the runtime unreachable, missing findings are unknown, not resolved."""
    first = run({}, report(finding("a")))
    d = run(first.state, report(n=2, up=False))
    assert d.events == ()
    assert set(d.state) == {finding("a").id}


def test_order_is_resolved_then_changed_then_opened():
    first = run({}, report(finding("a"), finding("b")))
    d = run(first.state, report(finding("a", severity=Severity.LOW), finding("c"), n=2))
    assert kinds(d) == [("resolved", "b"), ("changed", "a"), ("opened", "c")]


def test_payload_schema():
    d = run({}, report(finding("a")))
    p = orjson.loads(d.events[0].to_json())
    assert p == {
        "schema_version": 1,
        "event_id": "e1",
        "type": "opened",
        "cluster": "c1",
        "node": "node-1",
        "scan_id": "scan-1",
        "occurred_at": "2026-01-01T00:01:00Z",
        "emitted_at": "2026-01-01T00:05:00Z",
        "opened_at": "2026-01-01T00:01:00Z",
        "finding": {
            "id": finding("a").id,
            "check": "privileged",
            "severity": "high",
            "message": "a is privileged",
            "resource": {
                "kind": "Container",
                "namespace": "",
                "pod": "",
                "name": "a",
                "container": "a",
                "container_id": "",
                "image": "example/app:1",
            },
            "evidence": {"setting": "Privileged"},
        },
    }


def test_secret_values_never_appear():
    """A secret-in-env finding carries variable names and detector names, not values (model contract)."""
    secret = "AKIAIOSFODNN7EXAMPLE"  # the value that must not leak
    f = Finding.make(
        check="secret-in-env",
        severity=Severity.HIGH,
        resource=Resource(kind="Container", name="a"),
        message="environment variable AWS_KEY looks like a secret",
        evidence={"variables": "AWS_KEY", "env.AWS_KEY": "AWS Access Key"},
    )
    d = run({}, report(f))
    assert secret.encode() not in d.events[0].to_json()


def test_tracked_roundtrip():
    t = run({}, report(finding("a"))).state[finding("a").id]
    assert events.Tracked.from_json(t.to_json()) == t


def test_event_ids_are_uuid7_and_sorted_in_creation_order():
    clock = itertools.chain([1000] * 5000, itertools.count(1001))
    make = events.EventIds(clock_ms=lambda: next(clock))
    made = [make() for _ in range(6000)]
    assert len(set(made)) == 6000
    assert made == sorted(made)
    assert all(uuid.UUID(m).version == 7 for m in made[:10])


def test_event_ids_survive_a_clock_step_back():
    times = iter([2000, 1000, 1000])
    make = events.EventIds(clock_ms=lambda: next(times))
    made = [make() for _ in range(3)]
    assert made == sorted(made)


def test_shrink_drops_evidence_and_cuts_message():
    big = finding("a", blob="x" * 10_000)
    big = Finding(**{**{k: getattr(big, k) for k in Finding.__slots__}, "message": "m" * 5000})
    ev = run({}, report(big)).events[0]
    small = events.shrink(ev)
    p = small.payload()
    assert p["truncated"] is True
    assert p["finding"]["evidence"] == {}
    assert len(p["finding"]["message"]) <= 513
    assert p["event_id"] == ev.event_id
    assert len(small.to_json()) < 2000


def test_summary_counts_by_check_and_severity():
    r = report(finding("a"), finding("b", severity=Severity.LOW), finding("c", check="run-as-root"))
    s = events.summary(r, cluster="c1")
    assert s["open"] == 3
    assert s["last_scan_at"] == "2026-01-01T00:01:00Z"
    assert s["by_severity"] == {"info": 0, "low": 1, "medium": 0, "high": 2, "critical": 0}
    assert s["by_check"]["privileged"] == {"info": 0, "low": 1, "medium": 0, "high": 1, "critical": 0}
    assert s["by_check"]["run-as-root"]["high"] == 1


def test_summary_lists_enabled_checks_without_findings():
    s = events.summary(report(), cluster="c1")
    assert set(s["by_check"]) == {"privileged", "run-as-root"}
    assert s["open"] == 0


@pytest.mark.parametrize(
    ("prefix", "cluster", "node", "base"),
    [
        ("ztmon", "prod", "node-1", "ztmon/prod/node-1"),
        ("/site/a/", "prod", "n", "site/a/prod/n"),
        ("ztmon", "a/b", "n+#", "ztmon/a_b/n__"),
        ("ztmon", "", "n", "ztmon/_/n"),
    ],
)
def test_topics(prefix: str, cluster: str, node: str, base: str):
    t = events.Topics(prefix=prefix, cluster=cluster, node=node)
    assert t.base == base
    assert t.finding("run-as-root") == f"{base}/findings/run-as-root"
    assert t.summary == f"{base}/summary"
    assert t.status == f"{base}/status"
