"""Suppression: the `ztmon.io/ignore` label and configuration rules with selectors and expiry."""

from __future__ import annotations

import re
from datetime import date

import pytest

from ztmon.checks import suppression
from ztmon.checks.registry import all_checks
from ztmon.model.suppression import IGNORE_KEY, SuppressionRule

KNOWN = frozenset(all_checks())
TODAY = date(2025, 6, 1)  # conftest NOW


CONTAINER_CHECKS = ("host-namespaces", "privileged", "readonly-rootfs", "run-as-root")


def _findings(snap):
    """The findings of the checks these tests use: the input suppression sees in a real cycle."""
    return [f for check_id in CONTAINER_CHECKS for f in all_checks()[check_id].fn(snap)]


def _apply(snap, rules=()):
    return suppression.apply(_findings(snap), snap, tuple(rules), KNOWN)


def _checks(findings):
    return sorted({f.check for f in findings})


# -- parse_ignore ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "checks", "reason"),
    [
        ("readonly-rootfs reason=legacy app", ("readonly-rootfs",), "legacy app"),
        ("readonly-rootfs,run-as-root reason=vendor image", ("readonly-rootfs", "run-as-root"), "vendor image"),
        ("readonly-rootfs, run-as-root reason=x", ("readonly-rootfs", "run-as-root"), "x"),
        ("readonly-rootfs run-as-root reason=x", ("readonly-rootfs", "run-as-root"), "x"),
        ("  privileged   reason=  needs /dev/kvm  ", ("privileged",), "needs /dev/kvm"),
        ("privileged reason=a reason=b", ("privileged",), "a reason=b"),  # first "reason=" splits
    ],
)
def test_parse_ignore_good(value, checks, reason):
    assert suppression.parse_ignore(value) == suppression.LabelSuppression(checks, reason)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("readonly-rootfs", "missing 'reason=<text>'"),
        ("readonly-rootfs reason=", "missing 'reason=<text>'"),
        ("readonly-rootfs reason=   ", "missing 'reason=<text>'"),
        ("readonly-rootfs because legacy", "missing 'reason=<text>'"),
        ("", "missing 'reason=<text>'"),
        ("reason=legacy", "no check id before 'reason='"),
        (" , reason=legacy", "no check id before 'reason='"),
    ],
)
def test_parse_ignore_bad(value, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        suppression.parse_ignore(value)


# -- label suppression ----------------------------------------------------------------------------


def test_label_moves_named_check_to_suppressed_with_reason(container, snapshot):
    c = container(read_only_rootfs=False, privileged=True, labels=((IGNORE_KEY, "readonly-rootfs reason=legacy"),))
    out = _apply(snapshot(c))
    assert _checks(out.open) == ["privileged"]
    (s,) = out.suppressed
    assert s.check == "readonly-rootfs"
    assert s.suppressed_by == "label ztmon.io/ignore: legacy"
    assert out.problems == ()


def test_label_suppresses_every_listed_check(container, snapshot):
    c = container(read_only_rootfs=False, user="root", labels=((IGNORE_KEY, "readonly-rootfs,run-as-root reason=x"),))
    out = _apply(snapshot(c))
    assert out.open == ()
    assert _checks(out.suppressed) == ["readonly-rootfs", "run-as-root"]


def test_label_applies_only_to_its_own_container(container, snapshot):
    labelled = container(read_only_rootfs=False, labels=((IGNORE_KEY, "readonly-rootfs reason=x"),))
    other = container(read_only_rootfs=False, name="api", id="a" * 64)
    out = _apply(snapshot(labelled, other))
    assert [f.resource.name for f in out.open] == ["api"]
    assert [f.resource.name for f in out.suppressed] == ["web"]


def test_label_without_reason_is_not_applied_and_reported(container, snapshot):
    c = container(read_only_rootfs=False, labels=((IGNORE_KEY, "readonly-rootfs"),))
    out = _apply(snapshot(c))
    assert _checks(out.open) == ["readonly-rootfs"]
    assert out.suppressed == ()
    assert out.problems == ("web: label ztmon.io/ignore: missing 'reason=<text>'; not applied",)


def test_malformed_label_is_reported_even_without_findings(container, snapshot):
    out = _apply(snapshot(container(labels=((IGNORE_KEY, "reason=x"),))))
    assert out.problems == ("web: label ztmon.io/ignore: no check id before 'reason='; not applied",)


def test_label_unknown_check_id_is_reported_naming_the_container(container, snapshot):
    c = container(read_only_rootfs=False, labels=((IGNORE_KEY, "readonly-rootfs,read-only-fs reason=x"),))
    out = _apply(snapshot(c))
    assert out.problems == ("web: label ztmon.io/ignore: unknown check id 'read-only-fs'",)
    assert _checks(out.suppressed) == ["readonly-rootfs"]  # the known id still applies


def test_label_problem_names_namespace_and_pod(container, snapshot):
    c = container(namespace="shop", pod="cart-1", name="app", labels=((IGNORE_KEY, "nope reason=x"),))
    out = _apply(snapshot(c))
    assert out.problems == ("shop/cart-1: label ztmon.io/ignore: unknown check id 'nope'",)


def test_malformed_label_is_reported_once_per_container(container, snapshot):
    c = container(read_only_rootfs=False, user="root", labels=((IGNORE_KEY, "bogus"),))
    out = _apply(snapshot(c))
    assert len(out.problems) == 1


def test_label_applies_to_container_without_runtime_id(container, snapshot):
    c = container(id="", read_only_rootfs=False, labels=((IGNORE_KEY, "readonly-rootfs reason=x"),))
    out = _apply(snapshot(c))
    assert _checks(out.suppressed) == ["readonly-rootfs"]


def test_pod_annotation_suppresses(container, snapshot):
    c = container(
        namespace="shop",
        pod="cart-1",
        read_only_rootfs=False,
        annotations=((IGNORE_KEY, "readonly-rootfs reason=x"),),
    )
    out = _apply(snapshot(c))
    assert _checks(out.suppressed) == ["readonly-rootfs"]


def test_pod_labels_carried_by_container_suppress(container, snapshot):
    c = container(
        namespace="shop", pod="cart-1", read_only_rootfs=False, labels=((IGNORE_KEY, "readonly-rootfs reason=x"),)
    )
    out = _apply(snapshot(c))
    assert _checks(out.suppressed) == ["readonly-rootfs"]


# -- configuration rules --------------------------------------------------------------------------


def rule(**kw):
    kw.setdefault("check", "readonly-rootfs")
    kw.setdefault("reason", "accepted risk")
    kw.setdefault("origin", "config.yaml:7")
    return SuppressionRule(**kw)


@pytest.mark.parametrize(
    ("selector", "applies"),
    [
        ({}, True),
        ({"check": "*"}, True),
        ({"check": "privileged"}, False),
        ({"namespace": "shop"}, True),
        ({"namespace": "sh*"}, True),
        ({"namespace": "prod"}, False),
        ({"name": "cart-*"}, True),  # pod name
        ({"name": "app"}, True),  # container name
        ({"name": "web"}, False),
        ({"image": "ghcr.io/shop/*"}, True),
        ({"image": "docker.io/*"}, False),
        ({"image": "GHCR.IO/*"}, False),  # globs are case-sensitive
        ({"labels": (("team", "payments"),)}, True),
        ({"labels": (("team", "payments"), ("tier", "web"))}, True),
        ({"labels": (("team", "search"),)}, False),
        ({"labels": (("missing", "x"),)}, False),
        ({"namespace": "shop", "name": "app", "image": "ghcr.io/*", "labels": (("tier", "web"),)}, True),
        ({"namespace": "shop", "name": "other"}, False),  # every selector must match
    ],
)
def test_rule_selectors(container, snapshot, selector, applies):
    c = container(
        read_only_rootfs=False,
        namespace="shop",
        pod="cart-7d9f",
        name="app",
        image="ghcr.io/shop/cart:1.0@sha256:" + "0" * 64,
        labels=(("team", "payments"), ("tier", "web")),
    )
    out = _apply(snapshot(c), [rule(**selector)])
    assert (_checks(out.suppressed) == ["readonly-rootfs"]) is applies
    assert out.problems == ()


def test_rule_suppressed_by_names_origin_and_reason(container, snapshot):
    out = _apply(snapshot(container(read_only_rootfs=False)), [rule()])
    (s,) = out.suppressed
    assert s.suppressed_by == "rule config.yaml:7: accepted risk"


def test_rule_without_origin_is_named_for_its_check(container, snapshot):
    out = _apply(snapshot(container(read_only_rootfs=False)), [rule(origin="")])
    assert out.suppressed[0].suppressed_by == "rule readonly-rootfs: accepted risk"


def test_rule_expiring_today_still_applies(container, snapshot):
    out = _apply(snapshot(container(read_only_rootfs=False)), [rule(expires=TODAY)])
    assert _checks(out.suppressed) == ["readonly-rootfs"]
    assert out.problems == ()


def test_rule_expiring_later_applies(container, snapshot):
    out = _apply(snapshot(container(read_only_rootfs=False)), [rule(expires=date(2030, 1, 1))])
    assert _checks(out.suppressed) == ["readonly-rootfs"]


def test_expired_rule_is_not_applied_and_reported(container, snapshot):
    out = _apply(snapshot(container(read_only_rootfs=False)), [rule(expires=date(2025, 5, 31))])
    assert _checks(out.open) == ["readonly-rootfs"]
    assert out.suppressed == ()
    assert out.problems == ("config.yaml:7: suppression of readonly-rootfs expired on 2025-05-31",)


def test_expired_rule_is_reported_even_without_findings(snapshot):
    out = _apply(snapshot(), [rule(expires=date(2024, 1, 1))])
    assert out.problems == ("config.yaml:7: suppression of readonly-rootfs expired on 2024-01-01",)


def test_label_wins_over_rule(container, snapshot):
    c = container(read_only_rootfs=False, labels=((IGNORE_KEY, "readonly-rootfs reason=from label"),))
    out = _apply(snapshot(c), [rule()])
    assert out.suppressed[0].suppressed_by == "label ztmon.io/ignore: from label"


def test_rule_applies_when_label_names_other_checks(container, snapshot):
    c = container(read_only_rootfs=False, labels=((IGNORE_KEY, "privileged reason=x"),))
    out = _apply(snapshot(c), [rule()])
    assert out.suppressed[0].suppressed_by == "rule config.yaml:7: accepted risk"


def test_rule_applies_when_label_is_malformed(container, snapshot):
    c = container(read_only_rootfs=False, labels=((IGNORE_KEY, "readonly-rootfs"),))
    out = _apply(snapshot(c), [rule()])
    assert _checks(out.suppressed) == ["readonly-rootfs"]
    assert len(out.problems) == 1


def test_first_matching_rule_wins(container, snapshot):
    rules = [rule(check="*", reason="first", origin="a:1"), rule(reason="second", origin="b:2")]
    out = _apply(snapshot(container(read_only_rootfs=False)), rules)
    assert out.suppressed[0].suppressed_by == "rule a:1: first"


def test_suppression_keeps_finding_id(container, snapshot):
    snap = snapshot(container(read_only_rootfs=False))
    before = {f.id for f in _findings(snap)}
    out = _apply(snap, [rule(check="*")])
    assert {f.id for f in out.suppressed} == before
    assert out.open == ()


def test_rule_with_unknown_check_id_is_reported(container, snapshot):
    out = _apply(snapshot(container(read_only_rootfs=False)), [rule(check="read-only-fs")])
    assert any("read-only-fs" in p for p in out.problems)
