"""mutable-image: an image not pinned by digest can change under the same name without review.

`:latest` or no tag at all is medium (it moves on every push); any other tag is low (tags can be
re-pushed). A reference with `@sha256:` or a bare image id is pinned. Registries listed in
`policy.trusted_mutable_registries` (registries that enforce immutable tags) skip the low finding.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding
from ztmon.checks.registry import check
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "mutable-image"


def split_reference(ref: str) -> tuple[str, str, str, str]:
    """(registry, repository, tag, digest) of an image reference; registry "" means Docker Hub."""
    name, _, digest = ref.partition("@")
    registry = ""
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, name = first, rest
    repo, _, tag = name.rpartition(":") if ":" in name else (name, "", "")
    return registry, repo, tag, digest


@check(ID, severity=Severity.MEDIUM, title="Image not pinned by digest, or :latest")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    trusted = set(snapshot.policy.trusted_mutable_registries)
    for c in snapshot.containers:
        ref = c.image.strip()
        if ref.startswith("sha256:"):
            continue  # started from an image id: immutable
        registry, _repo, tag, digest = split_reference(ref)
        if digest:
            continue
        if tag in {"", "latest"}:
            yield finding(
                ID,
                Severity.MEDIUM,
                c,
                snapshot,
                f"container {c.name} runs {ref}: tag {'latest' if tag else '(none, i.e. latest)'} moves on every push",
                evidence={"image": ref, "tag": tag or "(none)"},
            )
        elif registry not in trusted:
            yield finding(
                ID,
                Severity.LOW,
                c,
                snapshot,
                f"container {c.name} runs {ref}, not pinned by digest",
                evidence={"image": ref, "tag": tag},
            )
