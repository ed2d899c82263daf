"""drift-filesystem: a locked container's writable layer changed outside its allowed paths.

Input: Docker's `changes` of each container (the fschanges source), bounded per container; directories
Docker lists only because something below them changed are already left out. Per container and kind
(added, changed, deleted) one medium finding summarises the paths outside `allowed_paths`; every new or
changed executable (exec mode bit or ELF magic) not matched by `allowed_executables` is a high finding of
its own (at most MAX_EXECUTABLES per container, then one more for the rest), wherever it was written.
"""

from __future__ import annotations

from collections.abc import Iterator

from ztmon.checks.common import finding
from ztmon.checks.registry import check
from ztmon.model import drift
from ztmon.model.baseline import ChangeKind, FilesystemBaseline, FsChange, path_pattern
from ztmon.model.findings import Finding, Severity
from ztmon.model.inventory import Snapshot

ID = "drift-filesystem"
MAX_EXECUTABLES = 10  # per container: findings stay readable; the rest are counted in one
SAMPLE_PATHS = 5  # paths named in a summary finding's message


@check(ID, severity=Severity.HIGH, title="Writable layer changed outside the allowed paths; new executables")
def run(snapshot: Snapshot) -> Iterator[Finding]:
    if not snapshot.fs_changes:
        return
    by_id = {fc.container_id: fc for fc in snapshot.fs_changes}
    for j in drift.judged(snapshot):
        fc = by_id.get(j.container.id)
        if fc is None or not fc.changes:
            continue
        c = j.container
        if j.baseline is None:
            fs = FilesystemBaseline()  # not in the baseline: nothing is allowed
        elif j.baseline.filesystem is None:
            continue  # writable layer not recorded for this container
        else:
            fs = j.baseline.filesystem
        allowed = fs.allowed_paths
        paths, execs = path_pattern(allowed), path_pattern(fs.allowed_executables)
        executables: list[FsChange] = []
        outside: dict[ChangeKind, list[FsChange]] = {}
        for ch in fc.changes:
            if ch.executable:
                if execs is None or execs.match(ch.path) is None:
                    executables.append(ch)
            elif paths is None or paths.match(ch.path) is None:
                outside.setdefault(ch.kind, []).append(ch)
        base = j.evidence()
        for ch in executables[:MAX_EXECUTABLES]:
            yield finding(
                ID,
                Severity.HIGH,
                c,
                snapshot,
                f"container {c.name}: {'new' if ch.kind is ChangeKind.ADDED else 'changed'} executable "
                f"{ch.path} ({ch.executable})",
                evidence={**base, "path": ch.path, "kind": ch.kind.value, "executable": ch.executable},
                discriminator=f"exec:{ch.path}",
            )
        if len(executables) > MAX_EXECUTABLES:
            rest = executables[MAX_EXECUTABLES:]
            yield finding(
                ID,
                Severity.HIGH,
                c,
                snapshot,
                f"container {c.name}: {len(rest)} more new or changed executables, e.g. {rest[0].path}",
                evidence={**base, "count": str(len(rest))},
                discriminator="exec:*",
            )
        for kind in ChangeKind:
            items = outside.get(kind)
            if not items:
                continue
            total = sum(ch.count for ch in items)
            sample = ", ".join(ch.path + ("/…" if ch.count > 1 else "") for ch in items[:SAMPLE_PATHS])
            more = f" (+{total - min(len(items), SAMPLE_PATHS)} more)" if total > SAMPLE_PATHS else ""
            yield finding(
                ID,
                Severity.MEDIUM,
                c,
                snapshot,
                f"container {c.name}: {total} path(s) {kind.value} outside the allowed paths: {sample}{more}",
                evidence={
                    **base,
                    "kind": kind.value,
                    "count": str(total),
                    "paths": ",".join(ch.path for ch in items[:SAMPLE_PATHS]),
                    "allowed_paths": ",".join(allowed),
                    "unprobed": str(fc.unprobed),
                },
                discriminator=kind.value,
            )
