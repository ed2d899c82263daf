"""drift-image: a locked workload runs an image its baseline does not name, or a known tag with a new digest.

A new digest under a reviewed reference means the tag was rebuilt or re-pushed: high. A reference the
baseline does not name at all (a deployment nobody recorded, a new container in the workload) is medium.
Digests are image ids (`sha256:` of the image config), the same on every node that pulled the image.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding
from ztmon.checks.registry import check
from ztmon.model import drift
from ztmon.model.baseline import image_allowed
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "drift-image"


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12] or "(unknown)"


@check(ID, severity=Severity.HIGH, title="Image differs from the baseline (new digest under a tag, or not in it)")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    for j in drift.judged(snapshot):
        c = j.container
        if j.baseline is not None and j.baseline.images is None:
            continue  # images not recorded for this container
        images = j.baseline.images if j.baseline is not None and j.baseline.images is not None else ()
        allowed, named = image_allowed(c.image, c.image_digest, images)
        if allowed:
            continue
        evidence = {**j.evidence(), "image": c.image, "digest": c.image_digest}
        if named is not None:
            yield finding(
                ID,
                Severity.HIGH,
                c,
                snapshot,
                f"container {c.name} runs {c.image} as {_short(c.image_digest)}, but the baseline has "
                f"{', '.join(_short(d) for d in named.digests)} under that reference: rebuilt or re-pushed",
                evidence={**evidence, "expected_digests": ",".join(named.digests)},
                discriminator=f"digest:{c.image}",
            )
        else:
            yield finding(
                ID,
                Severity.MEDIUM,
                c,
                snapshot,
                f"container {c.name} runs {c.image}, not in the baseline ({j.where()})",
                evidence={**evidence, "expected_images": ",".join(i.reference for i in images)},
                discriminator=f"image:{c.image}",
            )
