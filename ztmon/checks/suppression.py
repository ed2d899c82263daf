"""Apply suppressions: container labels / pod annotations and configuration rules. Pure.

Label form: `ztmon.io/ignore: "<check-id>[,<check-id>] reason=<text>"`. A reason is required: an
unexplained suppression is not applied and is reported as a problem, so that silence is always justified.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from ztmon.checks.common import resource_of
from ztmon.model.findings import Finding
from ztmon.model.inventory import Container, Snapshot
from ztmon.model.suppression import IGNORE_KEY, SuppressionRule


@dataclass(frozen=True, slots=True)
class LabelSuppression:
    checks: tuple[str, ...]
    reason: str


def parse_ignore(value: str) -> LabelSuppression:
    """Parse the label value; raises ValueError naming what is wrong."""
    ids_part, sep, reason = value.partition("reason=")
    if not sep or not reason.strip():
        raise ValueError("missing 'reason=<text>'")
    ids = tuple(i.strip() for i in ids_part.replace(" ", ",").split(",") if i.strip())
    if not ids:
        raise ValueError("no check id before 'reason='")
    return LabelSuppression(ids, reason.strip())


@dataclass(frozen=True, slots=True)
class Outcome:
    open: tuple[Finding, ...]
    suppressed: tuple[Finding, ...]
    problems: tuple[str, ...]  # one line each, naming the object and what is wrong


def _rule_matches(rule: SuppressionRule, f: Finding, c: Container | None) -> bool:
    r = f.resource
    if rule.check not in {"*", f.check}:
        return False
    if not fnmatch.fnmatchcase(r.namespace, rule.namespace):
        return False
    if not (fnmatch.fnmatchcase(r.name, rule.name) or fnmatch.fnmatchcase(r.container, rule.name)):
        return False
    if not fnmatch.fnmatchcase(r.image, rule.image):
        return False
    if rule.labels:
        if c is None:
            return False
        return all(c.label(k) == v for k, v in rule.labels)
    return True


def apply(
    findings: Iterable[Finding],
    snapshot: Snapshot,
    rules: tuple[SuppressionRule, ...],
    known_checks: frozenset[str],
) -> Outcome:
    today = snapshot.taken_at.date()
    problems: list[str] = []
    active: list[SuppressionRule] = []
    for rule in rules:
        if rule.check != "*" and rule.check not in known_checks:
            problems.append(f"{rule.origin}: suppression names unknown check id {rule.check!r}")
        if rule.expires is not None and rule.expires < today:
            problems.append(f"{rule.origin}: suppression of {rule.check} expired on {rule.expires}")
        else:
            active.append(rule)

    by_id = {c.id: c for c in snapshot.containers if c.id}
    # Containers without a runtime id (manifests, pods not started yet) are found by resource identity.
    by_identity = {resource_of(c, snapshot).identity(): c for c in snapshot.containers}
    label_cache: dict[int, LabelSuppression | None] = {}

    def label_rule(c: Container) -> LabelSuppression | None:
        key = id(c)
        if key not in label_cache:
            raw = c.label(IGNORE_KEY)
            if raw is None:  # a Kubernetes label value cannot hold spaces: pods use the annotation
                raw = next((v for k, v in c.annotations if k == IGNORE_KEY), None)
            parsed: LabelSuppression | None = None
            if raw is not None:
                where = f"{c.namespace + '/' if c.namespace else ''}{c.pod or c.name}"
                try:
                    parsed = parse_ignore(raw)
                except ValueError as e:
                    problems.append(f"{where}: label {IGNORE_KEY}: {e}; not applied")
                else:
                    problems.extend(
                        f"{where}: label {IGNORE_KEY}: unknown check id {i!r}"
                        for i in parsed.checks
                        if i not in known_checks
                    )
            label_cache[key] = parsed
        return label_cache[key]

    for container in snapshot.containers:  # report malformed labels even where nothing is found
        label_rule(container)

    open_: list[Finding] = []
    suppressed: list[Finding] = []
    for f in findings:
        c = by_id.get(f.resource.container_id) if f.resource.container_id else None
        if c is None:
            c = by_identity.get(f.resource.identity())
        why = ""
        if c is not None and (ls := label_rule(c)) is not None and f.check in ls.checks:
            why = f"label {IGNORE_KEY}: {ls.reason}"
        else:
            for rule in active:
                if _rule_matches(rule, f, c):
                    why = f"rule {rule.origin or rule.check}: {rule.reason}"
                    break
        if why:
            suppressed.append(dataclasses.replace(f, suppressed_by=why))
        else:
            open_.append(f)
    return Outcome(tuple(open_), tuple(suppressed), tuple(problems))
