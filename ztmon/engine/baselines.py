"""Baselines at runtime: the YAML document (load, validate, save), the learning/locked state machine, and the
`baseline` source that hands the checks an immutable BaselineView.

* The document is validated like the configuration: every problem is one `file:line: field: message` line,
  unknown fields and duplicate keys or workloads included. Schema: docs/baseline.md.
* The Learner is a plain state machine driven by observations (Snapshots, whose `taken_at` is its clock):
  a workload the document does not name starts `learning` when first seen, grows its baseline for the
  learning window, then is `locked` until a new document names it. Nothing here reads a clock.
* BaselineSource polls the document (stat, then sha256): a valid new document replaces the old one in one
  assignment; an invalid one is refused, the old one stays, and a log line and
  `ztmon_baseline_reload_failures_total` / `ztmon_baseline_last_reload_successful` say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import structlog
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from ztmon import __version__
from ztmon.engine import pipeline
from ztmon.model import drift
from ztmon.model.baseline import (
    SCHEMA_VERSION,
    Baseline,
    BaselineView,
    ChangeKind,
    ContainerBaseline,
    DocumentInfo,
    FilesystemBaseline,
    ImageBaseline,
    ListenerBaseline,
    Metadata,
    Mode,
    NodeBaseline,
    SecurityBaseline,
    WorkloadBaseline,
    WorkloadKey,
    merged,
)
from ztmon.model.inventory import Snapshot, SourcePart
from ztmon.model.network import Listener, Scope, Tls
from ztmon.model.policy import Policy
from ztmon.settings import Settings
from ztmon.sources.base import Notify, Source

log = structlog.get_logger("ztmon.engine.baselines")

Clock = Callable[[], datetime]
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster, same marks
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

# -- the document -------------------------------------------------------------------------------------


class BaselineError(Exception):
    """Every problem of a baseline document, one `file:line: field: message` line each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _digest(v: str) -> str:
    algo, sep, hexpart = v.partition(":")
    if algo != "sha256" or not sep or len(hexpart) != 64 or any(ch not in "0123456789abcdef" for ch in hexpart):
        raise ValueError(f"not an image digest (sha256:<64 lower-case hex>): {v!r}")
    return v


def _abs_path(v: str) -> str:
    if not v.startswith("/"):
        raise ValueError(f"not an absolute path: {v!r}")
    return v


def _capability(v: str) -> str:
    return v.strip().upper().removeprefix("CAP_")


def _mount(v: str) -> str:
    parts = v.rsplit(":", 2)
    if len(parts) != 3 or parts[2] not in {"ro", "rw"} or not parts[0] or not parts[1].startswith("/"):
        raise ValueError(f"expected SOURCE:DESTINATION:ro|rw, got {v!r}")
    return v


def _published(v: str) -> str:
    head, arrow, tail = v.partition("->")
    port, slash, proto = tail.partition("/")
    if not arrow or ":" not in head or not port.isdigit() or not slash or proto not in {"tcp", "udp", "sctp"}:
        raise ValueError(f"expected HOST_IP:HOST_PORT->PORT/PROTO, got {v!r}")
    return v


Digest = Annotated[str, AfterValidator(_digest)]
AbsPath = Annotated[str, AfterValidator(_abs_path)]
Capability = Annotated[str, AfterValidator(_capability)]
HostMount = Annotated[str, AfterValidator(_mount)]
PublishedPort = Annotated[str, AfterValidator(_published)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImageDoc(_Strict):
    reference: str = Field(min_length=1)
    digests: tuple[Digest, ...] = ()


class ListenerDoc(_Strict):
    port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp", "sctp"] = "tcp"
    tls: bool | None = None
    scope: Literal["all", "loopback", "specific"] | None = None


class SecurityDoc(_Strict):
    privileged: bool | None = None
    read_only_rootfs: bool | None = None
    user: str | None = None
    run_as_non_root: bool | None = None
    no_new_privileges: bool | None = None
    cap_add: tuple[Capability, ...] | None = None
    cap_drop: tuple[Capability, ...] | None = None
    host_network: bool | None = None
    host_pid: bool | None = None
    host_ipc: bool | None = None
    host_mounts: tuple[HostMount, ...] | None = None
    published_ports: tuple[PublishedPort, ...] | None = None


class FilesystemDoc(_Strict):
    allowed_paths: tuple[AbsPath, ...] = ()
    allowed_executables: tuple[AbsPath, ...] = ()


class ContainerDoc(_Strict):
    name: str = Field(min_length=1)
    images: tuple[ImageDoc, ...] | None = None
    security: SecurityDoc = SecurityDoc()
    filesystem: FilesystemDoc | None = None


class WorkloadDoc(_Strict):
    namespace: str = ""
    workload: str = Field(min_length=1)
    listeners: tuple[ListenerDoc, ...] | None = None
    containers: tuple[ContainerDoc, ...] = ()


class NodeDoc(_Strict):
    name: str = Field("*", min_length=1)
    os_image: str = ""
    kernel: str = ""
    runtime_version: str = ""


class MetadataDoc(_Strict):
    description: str = ""
    generated_by: str = ""
    generated_at: datetime | None = None
    node: str = ""
    learned_seconds: float | None = Field(None, ge=0)


def _version(v: int) -> int:
    if v != SCHEMA_VERSION:
        raise ValueError(f"unsupported baseline version {v} (this ztmon reads version {SCHEMA_VERSION})")
    return v


class DocumentModel(_Strict):
    version: Annotated[int, AfterValidator(_version)]
    metadata: MetadataDoc = MetadataDoc()
    nodes: tuple[NodeDoc, ...] = ()
    workloads: tuple[WorkloadDoc, ...] = ()


Lines = dict[tuple[str, ...], int]


def _walk(node: yaml.Node, prefix: tuple[str, ...], lines: Lines, errors: list[str], where: str) -> None:
    """Line of every key path, and duplicate mapping keys (PyYAML would silently keep the last one)."""
    lines.setdefault(prefix, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for k, v in node.value:
            key = str(k.value)
            line = k.start_mark.line + 1
            if key in seen:
                errors.append(f"{where}:{line}: {'.'.join((*prefix, key))}: duplicate key (first at line {seen[key]})")
                continue
            seen[key] = line
            lines[(*prefix, key)] = line
            _walk(v, (*prefix, key), lines, errors, where)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*prefix, str(i)), lines, errors, where)


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required field missing"
    return str(err["msg"]).removeprefix("Value error, ")


def _duplicates(doc: DocumentModel, lines: Lines, where: str) -> list[str]:
    errors: list[str] = []
    first: dict[tuple[str, str], int] = {}
    for i, w in enumerate(doc.workloads):
        line = lines.get(("workloads", str(i)), 1)
        key = (w.namespace, w.workload)
        if key in first:
            errors.append(
                f"{where}:{line}: workloads.{i}: duplicate workload {WorkloadKey(*key)} (first at line {first[key]})"
            )
        else:
            first[key] = line
        names: dict[str, int] = {}
        for j, c in enumerate(w.containers):
            cline = lines.get(("workloads", str(i), "containers", str(j)), line)
            if c.name in names:
                errors.append(
                    f"{where}:{cline}: workloads.{i}.containers.{j}.name: duplicate container {c.name!r} "
                    f"(first at line {names[c.name]})"
                )
            else:
                names[c.name] = cline
    return errors


def _to_model(doc: DocumentModel) -> Baseline:
    return Baseline(
        version=doc.version,
        metadata=Metadata(**doc.metadata.model_dump()),
        nodes=tuple(NodeBaseline(**n.model_dump()) for n in doc.nodes),
        workloads=tuple(
            WorkloadBaseline(
                namespace=w.namespace,
                workload=w.workload,
                listeners=None
                if w.listeners is None
                else tuple(ListenerBaseline(**li.model_dump()) for li in w.listeners),
                containers=tuple(
                    ContainerBaseline(
                        name=c.name,
                        images=None
                        if c.images is None
                        else tuple(ImageBaseline(i.reference, tuple(i.digests)) for i in c.images),
                        security=SecurityBaseline(**c.security.model_dump()),
                        filesystem=None
                        if c.filesystem is None
                        else FilesystemBaseline(c.filesystem.allowed_paths, c.filesystem.allowed_executables),
                    )
                    for c in w.containers
                ),
            )
            for w in doc.workloads
        ),
    )


def parse_document(text: str, *, where: str) -> Baseline:
    """Parse and validate one document; raise BaselineError listing every problem with its line."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            raw = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise BaselineError([f"{where}{line}: (yaml): {getattr(e, 'problem', None) or e}"]) from None
    if node is None or raw is None:
        raise BaselineError(
            [f"{where}:1: (root): empty document (expected a mapping with `version: {SCHEMA_VERSION}`)"]
        )
    lines: Lines = {}
    errors: list[str] = []
    _walk(node, (), lines, errors, where)
    if not isinstance(raw, dict):
        raise BaselineError([f"{where}:1: (root): expected a mapping, got {type(raw).__name__}"])
    try:
        doc = DocumentModel.model_validate(raw)
    except ValidationError as e:
        found: list[tuple[int, str]] = []
        for err in e.errors(include_url=False, include_input=False):
            loc = tuple(str(x) for x in err["loc"])
            at = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), 1)
            found.append((at, f"{where}:{at}: {'.'.join(loc) or '(root)'}: {_message(err)}"))
        errors += [msg for _, msg in sorted(found, key=lambda f: f[0])]  # in file order
        raise BaselineError(errors) from None
    errors += _duplicates(doc, lines, where)
    if errors:
        raise BaselineError(errors)
    return _to_model(doc)


@dataclass(frozen=True, slots=True)
class Document:
    baseline: Baseline
    info: DocumentInfo


def load_document(path: Path) -> Document:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise BaselineError([f"{path}: cannot read: {e.strerror or e}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BaselineError([f"{path}: not UTF-8 text (byte {e.start})"]) from None
    baseline = parse_document(text, where=str(path))
    return Document(baseline, DocumentInfo(source=str(path), sha256=hashlib.sha256(data).hexdigest()))


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None and v != ""}


def document_dict(b: Baseline) -> dict[str, Any]:
    """The YAML-ready form. A None (not recorded) field is left out; an empty list is a recorded "none"."""
    out: dict[str, Any] = {"version": b.version}
    meta = _drop_none(
        {
            "description": b.metadata.description,
            "generated_by": b.metadata.generated_by,
            "generated_at": b.metadata.generated_at,
            "node": b.metadata.node,
            "learned_seconds": b.metadata.learned_seconds,
        }
    )
    if meta:
        out["metadata"] = meta
    if b.nodes:
        out["nodes"] = [
            {
                "name": n.name,
                **_drop_none({"os_image": n.os_image, "kernel": n.kernel, "runtime_version": n.runtime_version}),
            }
            for n in b.nodes
        ]
    workloads = []
    for w in sorted(b.workloads, key=lambda w: w.key):
        entry: dict[str, Any] = {"namespace": w.namespace, "workload": w.workload}
        if w.listeners is not None:
            entry["listeners"] = [
                {"port": li.port, "protocol": li.protocol, **_drop_none({"tls": li.tls, "scope": li.scope})}
                for li in sorted(w.listeners, key=lambda li: (li.protocol, li.port))
            ]
        containers = []
        for c in sorted(w.containers, key=lambda c: c.name):
            ce: dict[str, Any] = {"name": c.name}
            if c.images is not None:
                ce["images"] = [{"reference": i.reference, "digests": list(i.digests)} for i in c.images]
            sec = {
                k: (list(v) if isinstance(v, tuple) else v)
                for k, v in ((f, getattr(c.security, f)) for f in SecurityBaseline.__dataclass_fields__)
                if v is not None
            }
            if sec:
                ce["security"] = sec
            if c.filesystem is not None:
                ce["filesystem"] = {
                    "allowed_paths": list(c.filesystem.allowed_paths),
                    "allowed_executables": list(c.filesystem.allowed_executables),
                }
            containers.append(ce)
        entry["containers"] = containers
        workloads.append(entry)
    out["workloads"] = workloads
    return out


HEADER = (
    "# ztmon baseline document (schema: docs/baseline.md).\n"
    "# Review it, trim what should not be allowed, and commit it: this is the state drift is measured against.\n"
)


def dumps_document(b: Baseline) -> str:
    body = yaml.dump(document_dict(b), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)
    return HEADER + str(body)


def save_document(path: Path, b: Baseline) -> None:
    """Write atomically: a reader (or a crash) sees the old file or the new one, never half of one."""
    text = dumps_document(b).encode("utf-8")
    directory = path.parent if str(path.parent) else Path()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename durable where the platform allows it
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


# -- learning ------------------------------------------------------------------------------------------

# Directories an application legitimately fills with files of its own choosing: a file added there allows
# the directory. Elsewhere an added file allows its parent only from depth 2 on (/var/cache/app, not /etc).
SCRATCH_DIRS = ("/tmp", "/var/tmp", "/run", "/var/run", "/dev/shm")  # noqa: S108 - paths inside containers
_SCOPE_WIDTH = {Scope.LOOPBACK.value: 0, Scope.SPECIFIC.value: 1, Scope.ALL.value: 2}


def allowance_for(path: str, kind: ChangeKind, count: int = 1) -> str:
    """The allowed-path entry a change learned during the learning window grants."""
    if count > 1 or kind is not ChangeKind.ADDED:
        return path  # a collapsed directory, or a change of an existing file: exactly that
    parent = path.rsplit("/", 1)[0]
    if parent in SCRATCH_DIRS or parent.count("/") >= 2:
        return parent
    return path


def compact(paths: Iterable[str]) -> tuple[str, ...]:
    """Sorted, without entries already covered by an ancestor entry."""
    out: list[str] = []
    for p in sorted(set(paths)):
        if not any(p == q or p.startswith(q.rstrip("/") + "/") for q in out):
            out.append(p)
    return tuple(out)


@dataclass
class _ContainerAcc:
    images: dict[str, set[str]] = field(default_factory=dict)
    security: SecurityBaseline = field(default_factory=SecurityBaseline)
    fs_seen: bool = False
    paths: set[str] = field(default_factory=set)
    executables: set[str] = field(default_factory=set)

    def freeze(self, name: str) -> ContainerBaseline:
        return ContainerBaseline(
            name=name,
            images=tuple(ImageBaseline(ref, tuple(sorted(d))) for ref, d in sorted(self.images.items())),
            security=self.security,
            filesystem=FilesystemBaseline(compact(self.paths), compact(self.executables)) if self.fs_seen else None,
        )


@dataclass
class _WorkloadAcc:
    first_seen: datetime
    containers: dict[str, _ContainerAcc] = field(default_factory=dict)
    listeners_seen: bool = False
    listeners: dict[tuple[str, int], ListenerBaseline] = field(default_factory=dict)

    def add_listener(self, li: Listener) -> None:
        key = (li.protocol, li.port)
        old = self.listeners.get(key)
        tls = {Tls.TLS: True, Tls.PLAINTEXT: False}.get(li.tls)
        scope = li.scope.value
        if old is not None:
            tls = tls if tls is not None else old.tls
            if old.scope is not None and _SCOPE_WIDTH[old.scope] > _SCOPE_WIDTH[scope]:
                scope = old.scope
        self.listeners[key] = ListenerBaseline(port=li.port, protocol=li.protocol, tls=tls, scope=scope)

    def freeze(self, key: WorkloadKey) -> WorkloadBaseline:
        return WorkloadBaseline(
            namespace=key.namespace,
            workload=key.workload,
            containers=tuple(acc.freeze(name) for name, acc in sorted(self.containers.items())),
            listeners=tuple(self.listeners[k] for k in sorted(self.listeners)) if self.listeners_seen else None,
        )


class Learner:
    """Learning -> locked, per workload and for the node. Driven by Snapshots; `taken_at` is its only clock.

    `window` zero locks a workload at its first observation; None never locks (`ztmon baseline learn`).
    `unknown` is the mode of a workload the learner has not observed: learning for the daemon, locked for
    `baseline diff` and `unknown_workloads: drift` (strict).
    """

    def __init__(
        self,
        *,
        window: timedelta | None,
        unknown: Mode = Mode.LEARNING,
        learn_unknown: bool = True,
        forget_after: timedelta = timedelta(days=7),
    ) -> None:
        self.window = window
        self.unknown = unknown
        self.learn_unknown = learn_unknown
        self.forget_after = forget_after
        self.document = Document(Baseline(), DocumentInfo("", ""))
        self.has_document = False
        self.reload_ok = True
        self.reload_failures_total = 0
        self._learning: dict[WorkloadKey, _WorkloadAcc] = {}
        self._learned: dict[WorkloadKey, WorkloadBaseline] = {}
        self._last_seen: dict[WorkloadKey, datetime] = {}
        self._node_first_seen: datetime | None = None
        self._node_values: NodeBaseline | None = None
        self._learned_node: NodeBaseline | None = None
        self._view: BaselineView | None = None

    # -- documents ------------------------------------------------------------------------------------
    def set_document(self, document: Document) -> None:
        """A new reviewed document: it wins for every workload it names (learning stops for those)."""
        self.document = document
        self.has_document = True
        for key in [k for k in self._learning if document.baseline.workload(k) is not None]:
            del self._learning[key]
        self._view = None

    def restore(self, learned: Baseline) -> None:
        """Workloads locked after learning in an earlier run (the learned file)."""
        for w in learned.workloads:
            self._learned.setdefault(w.key, w)
        if learned.nodes and self._learned_node is None:
            self._learned_node = learned.nodes[0]
        self._view = None

    def reload_failed(self) -> None:
        self.reload_ok = False
        self.reload_failures_total += 1
        self._view = None

    def reload_succeeded(self) -> None:
        self.reload_ok = True
        self._view = None

    # -- observing ------------------------------------------------------------------------------------
    def _covered(self, key: WorkloadKey) -> bool:
        return self.document.baseline.workload(key) is not None or key in self._learned

    def observe(self, snapshot: Snapshot) -> bool:
        """Grow learning baselines; lock those whose window has passed. True when modes or baselines changed."""
        now = snapshot.taken_at
        changed = False
        fs_by_id = {fc.container_id: fc for fc in snapshot.fs_changes}
        owner: dict[str, WorkloadKey] = {}
        for c in snapshot.containers:
            ref = drift.workload_of(c)
            key = ref.key
            self._last_seen[key] = now
            if self._covered(key) or not self.learn_unknown:
                continue
            acc = self._learning.get(key)
            if acc is None:
                acc = self._learning[key] = _WorkloadAcc(first_seen=now)
                changed = True
            owner[c.id] = key
            cacc = acc.containers.setdefault(ref.container, _ContainerAcc())
            cacc.images.setdefault(c.image, set())
            if c.image_digest:
                cacc.images[c.image].add(c.image_digest)
            cacc.security = drift.security_of(c)
            fc = fs_by_id.get(c.id)
            if fc is not None:
                cacc.fs_seen = True
                for ch in fc.changes:
                    if ch.executable:
                        cacc.executables.add(ch.path)
                    else:
                        cacc.paths.add(allowance_for(ch.path, ch.kind, ch.count))
        if snapshot.listeners or snapshot.namespaces:  # a listener inventory exists in this snapshot
            for key in set(owner.values()):
                self._learning[key].listeners_seen = True
            for li in snapshot.listeners:
                owning = owner.get(drift.listener_owner(li))
                if owning is not None:
                    self._learning[owning].add_listener(li)
        changed |= self._observe_node(snapshot)
        changed |= self._lock_due(now)
        changed |= self._forget(now)
        if changed:
            self._view = None
        return changed

    def _observe_node(self, snapshot: Snapshot) -> bool:
        node = snapshot.node
        if self.document.baseline.node(node.name) is not None or self._learned_node is not None:
            return False
        if not self.learn_unknown:
            return False
        values = NodeBaseline(
            name=node.name, os_image=node.os_image, kernel=node.kernel, runtime_version=node.runtime_version
        )
        changed = self._node_first_seen is None
        if self._node_first_seen is None:
            self._node_first_seen = snapshot.taken_at
        prev = self._node_values or NodeBaseline(name=node.name)
        # A value a source could not read this time (runtime down) keeps what was learned.
        self._node_values = NodeBaseline(
            name=node.name,
            os_image=values.os_image or prev.os_image,
            kernel=values.kernel or prev.kernel,
            runtime_version=values.runtime_version or prev.runtime_version,
        )
        return changed

    def _lock_due(self, now: datetime) -> bool:
        changed = False
        if self.window is None:
            return False
        for key in [k for k, acc in self._learning.items() if now >= acc.first_seen + self.window]:
            self._learned[key] = self._learning.pop(key).freeze(key)
            changed = True
        if self._node_first_seen is not None and now >= self._node_first_seen + self.window:
            self._learned_node, self._node_values, self._node_first_seen = self._node_values, None, None
            changed = True
        return changed

    def _forget(self, now: datetime) -> bool:
        """Learned workloads not seen for `forget_after` go (bounded memory for pod-name workloads)."""
        gone = [k for k in self._learned if now - self._last_seen.get(k, now) > self.forget_after]
        gone += [
            k for k, acc in self._learning.items() if now - self._last_seen.get(k, acc.first_seen) > self.forget_after
        ]
        for k in gone:
            self._learned.pop(k, None)
            self._learning.pop(k, None)
            self._last_seen.pop(k, None)
        return bool(gone)

    def next_deadline(self) -> datetime | None:
        """When the next learning workload (or the node) locks."""
        if self.window is None:
            return None
        times = [acc.first_seen + self.window for acc in self._learning.values()]
        if self._node_first_seen is not None:
            times.append(self._node_first_seen + self.window)
        return min(times, default=None)

    # -- what the checks see --------------------------------------------------------------------------
    def learned(self) -> Baseline:
        """Workloads (and the node) locked after learning: what the learned file keeps."""
        return Baseline(
            workloads=tuple(self._learned[k] for k in sorted(self._learned)),
            nodes=(self._learned_node,) if self._learned_node is not None else (),
        )

    def everything(self, metadata: Metadata | None = None) -> Baseline:
        """Document + learned + still learning, as one document (`ztmon baseline learn` writes this)."""
        learning = Baseline(
            workloads=tuple(acc.freeze(k) for k, acc in sorted(self._learning.items())),
            nodes=(self._node_values,) if self._node_values is not None else (),
        )
        full = merged(merged(self.document.baseline, self.learned()), learning)
        return Baseline(workloads=full.workloads, nodes=full.nodes, metadata=metadata or full.metadata)

    def node_mode(self, name: str) -> Mode:
        if self.document.baseline.node(name) is not None or self._learned_node is not None:
            return Mode.LOCKED
        return Mode.LEARNING if self._node_first_seen is not None else self.unknown

    def view(self, node_name: str) -> BaselineView:
        if self._view is None:
            documents = (self.document.info,) if self.has_document else ()
            self._view = BaselineView(
                baseline=merged(self.document.baseline, self.learned()),
                learning=frozenset(self._learning),
                unknown=self.unknown,
                node_mode=self.node_mode(node_name),
                documents=documents,
                reload_ok=self.reload_ok,
                reload_failures_total=self.reload_failures_total,
            )
        return self._view


# -- the source ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _FileKey:
    device: int
    inode: int
    size: int
    mtime_ns: int


def _file_key(path: Path) -> _FileKey | None:
    try:
        st = path.stat()  # follows symlinks: a ConfigMap's ..data swap gives a new inode
    except OSError:
        return None
    return _FileKey(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class BaselineSource(Source):
    """Hands the checks the current BaselineView; reloads the document and feeds the learner.

    `parts` returns the other sources' last good parts: the learner observes the same inventory the checks
    see. The document was loaded (and validated) before the source was built: a bad one stops start-up.
    """

    name = "baseline"

    def __init__(
        self,
        *,
        learner: Learner,
        node_name: str,
        parts: Callable[[], Sequence[SourcePart]],
        clock: Clock,
        path: Path | None = None,
        learned_path: Path | None = None,
        reload_interval: float = 5.0,
        observe_interval: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__()
        self.learner = learner
        self._node_name = node_name
        self._parts = parts
        self._clock = clock
        self._path = path
        self._learned_path = learned_path
        self._reload_interval = reload_interval
        self._observe_interval = observe_interval
        self._sleep = sleep
        self._file = _file_key(path) if path is not None else None
        self._saved_learned = learner.learned()  # what the learned file holds already (restored from it)
        self._part = SourcePart(baseline=learner.view(node_name))

    def part(self) -> SourcePart:
        return self._part

    def _publish(self) -> None:
        self._part = SourcePart(baseline=self.learner.view(self._node_name))

    async def reload(self) -> bool:
        """Reload the document if its file changed. True when the view changed (new document or refusal)."""
        if self._path is None:
            return False
        key = _file_key(self._path)
        if key == self._file:
            return False
        self._file = key
        try:
            doc = await asyncio.to_thread(load_document, self._path)
        except BaselineError as e:
            self.learner.reload_failed()
            log.warning(
                "baseline_reload_refused",
                path=str(self._path),
                errors=e.errors[:20],
                kept_sha256=self.learner.document.info.sha256,
            )
            return True
        if doc.info.sha256 == self.learner.document.info.sha256:
            changed = not self.learner.reload_ok
            self.learner.reload_succeeded()
            return changed
        self.learner.set_document(doc)
        self.learner.reload_succeeded()
        log.info(
            "baseline_reloaded", path=str(self._path), sha256=doc.info.sha256, workloads=len(doc.baseline.workloads)
        )
        return True

    def observe(self) -> bool:
        snap = pipeline.build_snapshot(
            now=self._clock(), node_name=self._node_name, parts=self._parts(), policy=Policy()
        )
        return self.learner.observe(snap)

    async def _save_learned(self) -> None:
        if self._learned_path is None:
            return
        learned = self.learner.learned()
        if learned == self._saved_learned:
            return
        try:
            await asyncio.to_thread(save_document, self._learned_path, learned)
        except OSError as e:
            log.warning("baseline_learned_save_failed", path=str(self._learned_path), error=str(e))
            return
        self._saved_learned = learned

    async def step(self, *, observe: bool = True) -> bool:
        changed = await self.reload()
        if observe:
            changed |= self.observe()
        if changed:
            self._publish()
            await self._save_learned()
        return changed

    async def refresh(self) -> None:
        await self.step()
        self._publish()

    async def watch(self, notify: Notify) -> None:
        """Poll the document every reload interval; observe every observe interval and at each lock deadline."""
        next_observe = self._clock() + timedelta(seconds=self._observe_interval)
        while True:
            now = self._clock()
            wake = [next_observe]
            deadline = self.learner.next_deadline()
            if deadline is not None:
                wake.append(deadline + timedelta(milliseconds=10))
            if self._path is not None:
                wake.append(now + timedelta(seconds=self._reload_interval))
            await self._sleep(max((min(wake) - now).total_seconds(), 0.0))
            now = self._clock()
            observe = now >= next_observe or (deadline is not None and now >= deadline)
            if observe:
                next_observe = now + timedelta(seconds=self._observe_interval)
            if await self.step(observe=observe):
                notify()


def load_learned(path: Path) -> Baseline:
    """The learned file, if any. A damaged one is a cache lost, not a policy: warn and start from nothing."""
    if not path.exists():
        return Baseline()
    try:
        return load_document(path).baseline
    except BaselineError as e:
        errors = e.errors
    log.error("baseline_learned_file_unreadable", path=str(path), errors=errors[:20])
    return Baseline()


# -- `ztmon baseline learn` ------------------------------------------------------------------------------


async def learn(
    *,
    refresh: Callable[[], Awaitable[None]],
    parts: Callable[[], Sequence[SourcePart]],
    node_name: str,
    duration: float,
    interval: float,
    clock: Clock,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Baseline:
    """Observe for `duration` seconds (at least once) and return everything seen as one document."""
    learner = Learner(window=None, unknown=Mode.LEARNING)
    start = clock()
    while True:
        await refresh()
        now = clock()
        learner.observe(pipeline.build_snapshot(now=now, node_name=node_name, parts=parts(), policy=Policy()))
        remaining = duration - (now - start).total_seconds()
        if remaining <= 0:
            break
        await sleep(min(interval, remaining))
    return learner.everything(
        Metadata(
            generated_by=f"ztmon {__version__} baseline learn",
            generated_at=start,
            node=node_name,
            learned_seconds=round((clock() - start).total_seconds(), 3),
        )
    )


# -- wiring ------------------------------------------------------------------------------------------------


def baseline_on(settings: Settings) -> bool:
    b = settings.baseline
    return b.enabled if b.enabled is not None else b.file is not None


def make_sources(
    settings: Settings, *, want: set[str], explicit: set[str], others: Sequence[Source], clock: Clock
) -> list[Source]:
    """The fschanges source (when asked for, or with the baseline) and the baseline source (last: it observes
    the others' parts). Raises BaselineError when the document or its settings are unusable."""
    out: list[Source] = []
    fs = settings.sources.fschanges
    fs_on = fs.enabled if fs.enabled is not None else baseline_on(settings)
    if "fschanges" in want and (fs_on or "fschanges" in explicit):
        from ztmon.sources.fschanges import FsChangesSource  # noqa: PLC0415

        out.append(
            FsChangesSource(
                host=settings.sources.docker.host,
                timeout=fs.timeout_seconds,
                interval=fs.interval_seconds,
                concurrency=fs.concurrency,
                max_containers=fs.max_containers_per_scan,
                max_changes=fs.max_changes_per_container,
                max_probes=fs.max_probes_per_scan,
                max_reads=fs.max_reads_per_scan,
                max_probe_bytes=fs.max_probe_bytes,
            )
        )
    if not baseline_on(settings):
        return out
    b = settings.baseline
    strict = b.unknown_workloads == "drift"
    learner = Learner(
        window=timedelta(seconds=b.learning_window_seconds),
        unknown=Mode.LOCKED if strict else Mode.LEARNING,
        learn_unknown=not strict,
        forget_after=timedelta(seconds=b.forget_after_seconds),
    )
    if b.file is not None:
        learner.set_document(load_document(b.file))
    if b.learned_file is not None and not strict:
        learner.restore(load_learned(b.learned_file))
    observed = [*others, *out]
    out.append(
        BaselineSource(
            learner=learner,
            node_name=settings.resolved_node_name(),
            parts=lambda: [s.part() for s in observed],
            clock=clock,
            path=b.file,
            learned_path=b.learned_file if not strict else None,
            reload_interval=b.reload_interval_seconds,
            observe_interval=b.observe_interval_seconds,
        )
    )
    return out
