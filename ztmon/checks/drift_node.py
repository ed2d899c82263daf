"""drift-node: the node's OS image, kernel or container-runtime version differs from the node baseline.

The device-integrity pillar: a node that was reviewed with one kernel and now boots another has not been
reviewed. Baseline values may be globs ("6.1.0-*") to accept patch releases. A value the node does not
report (the runtime is down) is not judged.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.registry import check
from ztmon.model.baseline import NODE_FIELDS, Mode, value_matches
from ztmon.model.findings import Finding, Resource, Severity
from ztmon.model.inventory import Snapshot

ID = "drift-node"


@check(ID, severity=Severity.MEDIUM, title="Node OS image, kernel or runtime differs from the baseline")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    view = snapshot.baseline
    if view is None or view.node_mode is not Mode.LOCKED:
        return
    node = snapshot.node
    expected = view.baseline.node(node.name)
    if expected is None:
        return
    resource = Resource(kind="Node", name=node.name, node=node.name)
    for name in NODE_FIELDS:
        want, have = getattr(expected, name), getattr(node, name)
        if not want or not have or value_matches(want, have):
            continue
        yield Finding.make(
            check=ID,
            severity=Severity.MEDIUM,
            resource=resource,
            message=f"node {node.name}: {name} is {have!r}, the baseline has {want!r}",
            evidence={"setting": name, "expected": want, "observed": have},
            discriminator=name,
        )
