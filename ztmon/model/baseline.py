"""Baselines: what was reviewed, per workload and per node, and the pure helpers that compare against it.

A leaf module (it imports no other ztmon model) so that the Snapshot and the Report can carry its types.
Joining a live Container to its baseline lives in `ztmon.model.drift`.

Schema version 1 (docs/baseline.md). A field that is `None` (or an empty string for the node) was not
recorded and is not compared: a hand-written baseline states only what it cares about, a learned one
states everything.
"""

from __future__ import annotations

import enum
import fnmatch
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

SCHEMA_VERSION = 1
GLOB_CHARS = frozenset("*?[")


class Mode(enum.StrEnum):
    """A workload (or the node) first learns its baseline, then it is locked and drift is reported."""

    LEARNING = "learning"
    LOCKED = "locked"


class ChangeKind(enum.StrEnum):
    """Docker's `changes` kinds (0 modified, 1 added, 2 deleted), named as in the metrics."""

    CHANGED = "changed"
    ADDED = "added"
    DELETED = "deleted"


class WorkloadKey(NamedTuple):
    """(namespace, workload): Kubernetes namespace + owner, compose project + service, or "" + container name."""

    namespace: str
    workload: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.workload}" if self.namespace else self.workload


class WorkloadRef(NamedTuple):
    """A container's place in the baseline: its workload and its role in it (pod container or service)."""

    namespace: str
    workload: str
    container: str

    @property
    def key(self) -> WorkloadKey:
        return WorkloadKey(self.namespace, self.workload)


# -- the document's value types ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageBaseline:
    reference: str  # as the container names it: "nginx:1.27", "registry/app@sha256:...", or a glob
    digests: tuple[str, ...] = ()  # image ids (sha256:...) accepted under it; () = any digest


@dataclass(frozen=True, slots=True)
class ListenerBaseline:
    port: int
    protocol: str = "tcp"
    tls: bool | None = None  # None = not recorded (probe unknown or hand-written without it)
    scope: str | None = None  # all | loopback | specific (network.Scope); None = not recorded


@dataclass(frozen=True, slots=True)
class SecurityBaseline:
    """The settings the posture checks read. Sets are sorted tuples; None = not recorded."""

    privileged: bool | None = None
    read_only_rootfs: bool | None = None
    user: str | None = None
    run_as_non_root: bool | None = None
    no_new_privileges: bool | None = None
    cap_add: tuple[str, ...] | None = None
    cap_drop: tuple[str, ...] | None = None
    host_network: bool | None = None
    host_pid: bool | None = None
    host_ipc: bool | None = None
    host_mounts: tuple[str, ...] | None = None  # "SOURCE:DESTINATION:ro|rw" of bind / hostPath mounts
    published_ports: tuple[str, ...] | None = None  # "HOST_IP:HOST_PORT->PORT/PROTO"


SECURITY_FIELDS: tuple[str, ...] = tuple(SecurityBaseline.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class FilesystemBaseline:
    allowed_paths: tuple[str, ...] = ()  # writable-layer changes allowed at or below these (globs allowed)
    allowed_executables: tuple[str, ...] = ()  # new or changed executables allowed (same rules)


@dataclass(frozen=True, slots=True)
class ContainerBaseline:
    name: str  # the container's role: pod container name, compose service, or container name
    images: tuple[ImageBaseline, ...] | None = None  # None = images not recorded
    security: SecurityBaseline = SecurityBaseline()
    filesystem: FilesystemBaseline | None = None  # None = writable layer not recorded


@dataclass(frozen=True, slots=True)
class WorkloadBaseline:
    namespace: str
    workload: str
    containers: tuple[ContainerBaseline, ...] = ()
    listeners: tuple[ListenerBaseline, ...] | None = None  # None = listeners not recorded
    _by_name: dict[str, ContainerBaseline] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.containers})

    @property
    def key(self) -> WorkloadKey:
        return WorkloadKey(self.namespace, self.workload)

    def container(self, name: str) -> ContainerBaseline | None:
        return self._by_name.get(name)


@dataclass(frozen=True, slots=True)
class NodeBaseline:
    name: str = "*"  # node name glob: one document can hold a fleet's nodes
    os_image: str = ""  # "" = not recorded; the values may be globs ("6.1.0-*")
    kernel: str = ""
    runtime_version: str = ""


NODE_FIELDS: tuple[str, ...] = ("os_image", "kernel", "runtime_version")


@dataclass(frozen=True, slots=True)
class Metadata:
    description: str = ""
    generated_by: str = ""
    generated_at: datetime | None = None
    node: str = ""  # where it was learned
    learned_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Baseline:
    version: int = SCHEMA_VERSION
    workloads: tuple[WorkloadBaseline, ...] = ()
    nodes: tuple[NodeBaseline, ...] = ()
    metadata: Metadata = Metadata()
    _index: dict[WorkloadKey, WorkloadBaseline] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {w.key: w for w in self.workloads})

    def workload(self, key: WorkloadKey) -> WorkloadBaseline | None:
        return self._index.get(key)

    def node(self, name: str) -> NodeBaseline | None:
        """The first node entry whose name glob matches."""
        return next((n for n in self.nodes if fnmatch.fnmatchcase(name, n.name)), None)


def merged(first: Baseline, second: Baseline) -> Baseline:
    """`first` with the workloads and nodes of `second` that it does not already name (first wins)."""
    if not second.workloads and not second.nodes:
        return first
    if not first.workloads and not first.nodes:
        return Baseline(workloads=second.workloads, nodes=second.nodes, metadata=first.metadata)
    keys = {w.key for w in first.workloads}
    names = {n.name for n in first.nodes}
    return Baseline(
        workloads=first.workloads + tuple(w for w in second.workloads if w.key not in keys),
        nodes=first.nodes + tuple(n for n in second.nodes if n.name not in names),
        metadata=first.metadata,
    )


# -- what the engine hands the checks -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    source: str  # file path (a mounted ConfigMap is a file too), or "learned" for the in-memory part
    sha256: str  # of the document's bytes, as Falco exports its rules files'


@dataclass(frozen=True, slots=True)
class BaselineView:
    """The effective baseline for one cycle: documents + workloads locked after learning, and the modes.

    A workload in `learning` is not judged. A workload the learner has not seen yet takes `unknown`:
    `learning` in the daemon (new workloads start learning), `locked` for `ztmon baseline diff` (anything
    not in the document is drift).
    """

    baseline: Baseline = Baseline()
    learning: frozenset[WorkloadKey] = frozenset()
    unknown: Mode = Mode.LEARNING
    node_mode: Mode = Mode.LOCKED  # learning while the node's own values are being learned
    documents: tuple[DocumentInfo, ...] = ()
    reload_ok: bool = True  # False while the last reload attempt of a document was refused
    reload_failures_total: int = 0

    def mode(self, key: WorkloadKey) -> Mode:
        if key in self.learning:
            return Mode.LEARNING
        if self.baseline.workload(key) is not None:
            return Mode.LOCKED
        return self.unknown


# -- writable layers ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FsChange:
    path: str  # a collapsed entry (count > 1) stands for `count` changes at or below `path`
    kind: ChangeKind
    executable: str = ""  # why it is an executable: "mode 0755" or "ELF magic"; "" = not, or not probed
    probed: bool = False
    count: int = 1


@dataclass(frozen=True, slots=True)
class ContainerFsChanges:
    """One container's writable-layer changes, bounded: at most N entries, larger sets collapsed by directory."""

    container_id: str
    changes: tuple[FsChange, ...] = ()  # significant ones: no directory listed only for a change below it
    added: int = 0  # raw counts as Docker reported them (before filtering and bounding)
    changed: int = 0
    deleted: int = 0
    collapsed: bool = False  # some entries stand for many (count > 1)
    unprobed: int = 0  # added/changed files not yet checked for being executable (probe budget)
    scanned_at: datetime | None = field(default=None, compare=False)  # a rescan finding the same is no change

    def count(self, kind: ChangeKind) -> int:
        return {ChangeKind.ADDED: self.added, ChangeKind.CHANGED: self.changed, ChangeKind.DELETED: self.deleted}[kind]


def ancestors(path: str) -> Iterable[str]:
    """'/a/b/c' -> '/a/b', '/a' (not '/')."""
    head = path.rstrip("/")
    while True:
        head, sep, _ = head.rpartition("/")
        if not sep or not head:
            return
        yield head


def significant(paths: Iterable[tuple[str, ChangeKind]]) -> list[tuple[str, ChangeKind]]:
    """Drop directories Docker lists only because something below them changed (`C /etc` for `/etc/x`)."""
    items = list(paths)
    parents: set[str] = set()
    for p, _ in items:
        parents.update(ancestors(p))
    return [(p, k) for p, k in items if k is ChangeKind.DELETED or p not in parents]


def bound_changes(changes: list[FsChange], limit: int) -> tuple[list[FsChange], bool]:
    """At most `limit` entries: the largest directories collapse into one entry each, deepest level first.

    A container that writes 100,000 files into a cache directory costs one entry, while a single file
    elsewhere keeps its own. Returns (entries sorted by path, collapsed?).
    """
    if len(changes) <= limit:
        return sorted(changes, key=lambda c: c.path), False
    current = list(changes)
    depth = max(c.path.count("/") for c in current)
    while len(current) > limit and depth > 1:
        groups: dict[str, list[FsChange]] = {}
        keep: list[FsChange] = []
        for c in current:
            if c.path.count("/") >= depth:
                groups.setdefault(c.path.rsplit("/", 1)[0] or "/", []).append(c)
            else:
                keep.append(c)
        ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        total = len(keep) + len(groups) + sum(len(v) - 1 for _, v in ordered)
        collapsed: list[FsChange] = []
        for directory, members in ordered:
            if total > limit and len(members) > 1:
                kinds = {m.kind for m in members}
                kind = kinds.pop() if len(kinds) == 1 else ChangeKind.CHANGED
                collapsed.append(FsChange(directory, kind, count=sum(m.count for m in members)))
                total -= len(members) - 1
            else:
                collapsed.extend(members)
        current = keep + collapsed
        depth -= 1
    if len(current) > limit:  # still too many distinct top-level entries: one entry for the rest
        current.sort(key=lambda c: c.path)
        rest = current[limit - 1 :]
        current = [*current[: limit - 1], FsChange("/", ChangeKind.CHANGED, count=sum(c.count for c in rest))]
    return sorted(current, key=lambda c: c.path), True


# -- pure comparisons ---------------------------------------------------------------------------------


def _translate(rule: str) -> str:
    """Glob -> regex: `**` crosses '/', `*` and `?` stay within one path component."""
    out: list[str] = []
    i = 0
    while i < len(rule):
        ch = rule[i]
        if rule.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _path_matcher(rules: tuple[str, ...]) -> re.Pattern[str] | None:
    if not rules:
        return None
    alternatives = "|".join(_translate(r.rstrip("/")) for r in rules)
    return re.compile(rf"^(?:{alternatives})(?:/.*)?$", re.DOTALL)


def path_pattern(rules: tuple[str, ...]) -> re.Pattern[str] | None:
    """One compiled pattern for a set of rules (cached; None: nothing allowed). An entry allows itself and
    everything below it; `*`/`?` match within a path component, `**` across components."""
    return _path_matcher(rules)


def path_allowed(path: str, rules: tuple[str, ...]) -> bool:
    pattern = _path_matcher(rules)
    return pattern is not None and pattern.match(path) is not None


def image_allowed(reference: str, digest: str, images: tuple[ImageBaseline, ...]) -> tuple[bool, ImageBaseline | None]:
    """(allowed?, the entry naming this reference). A known reference with another digest is not allowed."""
    named: ImageBaseline | None = None
    for img in images:
        if img.reference == reference or (
            GLOB_CHARS & set(img.reference) and fnmatch.fnmatchcase(reference, img.reference)
        ):
            named = named or img
            if not img.digests or digest in img.digests:
                return True, img
    return False, named


def value_matches(expected: str, observed: str) -> bool:
    """Node values: exact, or a glob when the expected value has one."""
    if expected == observed:
        return True
    return bool(GLOB_CHARS & set(expected)) and fnmatch.fnmatchcase(observed, expected)


@dataclass(frozen=True, slots=True)
class SettingDrift:
    field: str
    expected: str
    observed: str
    loosened: bool  # the change grants more than the baseline did


# For booleans: the value that grants more.
_RISKY_WHEN = {
    "privileged": True,
    "host_network": True,
    "host_pid": True,
    "host_ipc": True,
    "read_only_rootfs": False,
    "run_as_non_root": False,
    "no_new_privileges": False,
}


def is_root_user(user: str) -> bool:
    """Docker/OCI `user` strings: "", "root", "0", "0:0", "00", "+0" all run as uid 0."""
    name = user.split(":", 1)[0].strip()
    if name in {"", "root"}:
        return True
    try:
        return int(name) == 0
    except ValueError:
        return False


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(value) if value else "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if value != "" else '""'


def _loosened(name: str, expected: bool | str | tuple[str, ...], observed: bool | str | tuple[str, ...]) -> bool:
    if isinstance(expected, bool) or isinstance(observed, bool):
        return observed is _RISKY_WHEN.get(name)
    if isinstance(expected, str) or isinstance(observed, str):  # user
        return is_root_user(str(observed)) and not is_root_user(str(expected))
    if name == "cap_drop":
        return bool(set(expected) - set(observed))  # a capability no longer dropped
    return bool(set(observed) - set(expected))  # cap_add, host_mounts (ro -> rw is new), published_ports


def security_drift(expected: SecurityBaseline, observed: SecurityBaseline) -> list[SettingDrift]:
    """Every recorded setting whose observed value differs. Sets compare as sets (both sides sorted when
    learned, so the common case is one equality test)."""
    if expected == observed:
        return []
    out: list[SettingDrift] = []
    for name in SECURITY_FIELDS:
        exp = getattr(expected, name)
        if exp is None:
            continue
        obs = getattr(observed, name)
        if obs is None:
            continue
        same = set(exp) == set(obs) if isinstance(exp, tuple) else exp == obs
        if not same:
            out.append(SettingDrift(name, _show(exp), _show(obs), _loosened(name, exp, obs)))
    return out


# -- what the Report carries for the metrics ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BaselineSummary:
    """Rows for ztmon_drift, ztmon_container_fs_changes, ztmon_baseline_mode and ztmon_baseline_info."""

    active: bool = False  # a baseline is configured (False: writable-layer data only)
    documents: tuple[DocumentInfo, ...] = ()
    reload_ok: bool = True
    reload_failures_total: int = 0
    modes: tuple[tuple[WorkloadKey, Mode], ...] = ()  # workloads with a running container
    node_mode: Mode = Mode.LOCKED
    drift: tuple[tuple[tuple[str, str, str, str], int], ...] = ()  # (check, namespace, workload, container)
    fs_changes: tuple[tuple[tuple[str, str, str, str], int], ...] = ()  # (namespace, workload, container, kind)


def modes_of(view: BaselineView, keys: Iterable[WorkloadKey]) -> tuple[tuple[WorkloadKey, Mode], ...]:
    return tuple((k, view.mode(k)) for k in sorted(set(keys)))
