"""secret-in-env: literal secrets in environment variables (readable via inspect, /proc, crash dumps).

Two ways to be flagged, one finding per container listing the variables:
- the *name* says secret (a word such as PASSWORD, TOKEN, API_KEY as whole `_`-separated tokens) and the
  value is a literal — not empty, not a reference (valueFrom, ${VAR}), not a path, number or boolean,
  and the name does not end in a suffix that makes it metadata (PASSWORD_FILE, TOKEN_TTL, ...);
- a format-specific detector (AWS key, private key, JWT, GitHub/Slack/Stripe token, URL credentials)
  flagged the value, whatever the name.
The value itself never reaches this module: sources keep only the name, its kind and detector names.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import EnvVar, Snapshot, ValueKind

ID = "secret-in-env"


def _tokens(name: str) -> list[str]:
    return [t for t in name.upper().replace("-", "_").replace(".", "_").split("_") if t]


def name_says_secret(name: str, words: tuple[str, ...], safe_suffixes: tuple[str, ...]) -> bool:
    tokens = _tokens(name)
    if not tokens:
        return False
    for suffix in safe_suffixes:  # "KEY_ID" is two tokens; compare normalised token sequences
        s = _tokens(suffix)
        if s and tokens[-len(s) :] == s:
            return False
    for word in words:
        w = _tokens(word)
        for i in range(len(tokens) - len(w) + 1):
            if tokens[i : i + len(w)] == w:
                return True
    return False


def reason(var: EnvVar, words: tuple[str, ...], safe_suffixes: tuple[str, ...]) -> str | None:
    if var.detectors:
        return "value matches " + "+".join(var.detectors)
    if var.kind is ValueKind.LITERAL and name_says_secret(var.name, words, safe_suffixes):
        return "name suggests a secret and the value is a literal"
    return None


@check(ID, severity=Severity.HIGH, title="Secret given as a literal environment variable")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    pol = snapshot.policy
    for c in snapshot.containers:
        hits = [
            (v.name, r)
            for v in c.env
            if (r := reason(v, pol.secret_name_words, pol.secret_name_safe_suffixes)) is not None
        ]
        if not hits:
            continue
        names = sorted({n for n, _ in hits})
        yield finding(
            ID,
            Severity.HIGH,
            c,
            snapshot,
            f"container {c.name} has literal secrets in environment variables: {', '.join(names)}",
            evidence={"variables": ",".join(names), **{f"env.{n}": r for n, r in hits}},
        )
