"""Offline manifests: YAML/JSON files and directories -> the Snapshot part the checks read.

Reads what CI pipelines hold: multi-document YAML (Helm-rendered output, `kubectl get -o yaml` Lists),
JSON (one object or a List), directories recursively (*.yaml, *.yml, *.json). A file is split into its
documents before parsing, so a document that fails is reported with its file, document index and line,
and the following documents are still read. Unknown kinds are counted and skipped.

Every kind is "observed": the set of files given is the whole world, so `no-network-policy` and RBAC
are judged over exactly those files. Certificates in TLS Secrets are read (the manifest holds them); the
private key is never decoded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from ztmon.model.inventory import Node, SourcePart
from ztmon.sources import kubeobjects

SUFFIXES = (".yaml", ".yml", ".json")
ALL_KINDS = frozenset(
    {
        "Workload",
        "Pod",
        "ServiceAccount",
        "Secret",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "NetworkPolicy",
        "Ingress",
        "PeerAuthentication",
        "DestinationRule",
        "Namespace",
        "Service",
    }
)
_DOC_START = re.compile(r"^---(?:[ \t].*)?$")
_DOC_END = re.compile(r"^\.\.\.[ \t]*$")
_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    document: int  # 1-based index of the document in its file; 0 for the file itself
    line: int  # 1-based; 0 when unknown
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: document {self.document}: {self.message}" if self.document else f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class FilesResult:
    part: SourcePart
    problems: tuple[Problem, ...]
    files: int
    documents: int  # documents read (not empty, parsed)
    objects: int  # objects found, of any kind
    unknown_kinds: tuple[tuple[str, int], ...]  # (kind, count) skipped because no check reads them


def expand(paths: Sequence[Path]) -> tuple[list[Path], list[Problem]]:
    """Files to read, sorted within each directory; a named file is read whatever its suffix."""
    files: list[Path] = []
    problems: list[Problem] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES))
        elif p.is_file() or str(p) == "-":
            files.append(p)
        else:
            problems.append(Problem(str(p), 0, 0, "no such file or directory"))
    return files, problems


def split_documents(text: str) -> Iterator[tuple[int, str]]:
    """(first line, text) of each YAML document; `---` and `...` lines separate them."""
    start = 1
    buf: list[str] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if _DOC_START.match(line) or _DOC_END.match(line):
            if buf:
                yield start, "\n".join(buf)
            buf = []
            start = n + 1
            rest = line[3:].strip() if _DOC_START.match(line) else ""
            if rest and not rest.startswith("#"):  # "--- {inline: doc}" keeps its content
                buf.append(rest)
                start = n
            continue
        buf.append(line)
    if buf:
        yield start, "\n".join(buf)


def _first_content_line(start: int, text: str) -> int:
    for i, line in enumerate(text.splitlines()):
        s = line.strip()
        if s and not s.startswith("#"):
            return start + i
    return start


def _yaml_error(e: yaml.YAMLError, start: int) -> tuple[int, str]:
    mark = getattr(e, "problem_mark", None)
    line = start + mark.line if mark is not None else start
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    context = getattr(e, "context", None)
    return line, f"invalid YAML: {problem}" + (f" ({context})" if context else "")


class _Reader:
    def __init__(self, *, read_certs: bool) -> None:
        self.read_certs = read_certs
        self.items: list[kubeobjects.Model] = []
        self.problems: list[Problem] = []
        self.documents = 0
        self.objects = 0
        self.unknown: dict[str, int] = {}

    def documents_of(self, name: str, text: str) -> Iterator[tuple[int, int, Any]]:
        """(document index, line, value) of each parsable document; problems for the others."""
        if name.lower().endswith(".json"):
            try:
                yield 1, 1, orjson.loads(text)
            except orjson.JSONDecodeError as e:
                line = text.count("\n", 0, e.pos) + 1 if e.pos is not None else 0
                self.problems.append(Problem(name, 1, line, f"invalid JSON: {e.msg}"))
            return
        for index, (start, chunk) in enumerate(split_documents(text), start=1):
            try:
                value = yaml.load(chunk, Loader=_Loader)  # noqa: S506 - a SafeLoader (C or Python)
            except yaml.YAMLError as e:
                line, msg = _yaml_error(e, start)
                self.problems.append(Problem(name, index, line, msg))
                continue
            if value is not None:
                yield index, _first_content_line(start, chunk), value

    def objects_of(self, name: str, index: int, line: int, value: Any) -> Iterator[Mapping[str, Any]]:
        if not isinstance(value, Mapping):
            self.problems.append(
                Problem(name, index, line, f"expected a Kubernetes object, got {type(value).__name__}")
            )
            return
        kind = value.get("kind")
        items = value.get("items")
        if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
            for i, item in enumerate(items):
                if isinstance(item, Mapping):
                    yield item
                else:
                    self.problems.append(Problem(name, index, line, f"items[{i}]: expected an object"))
            return
        yield value

    def read(self, name: str, text: str) -> None:
        for index, line, value in self.documents_of(name, text):
            self.documents += 1
            for obj in self.objects_of(name, index, line, value):
                self.objects += 1
                kind = obj.get("kind")
                if not isinstance(kind, str) or not kind:
                    self.problems.append(Problem(name, index, line, "object without kind"))
                    continue
                try:
                    parsed = kubeobjects.parse(obj, origin=f"{name}:{line}", read_certs=self.read_certs)
                except kubeobjects.ObjectError as e:
                    ref = _ref(obj)
                    self.problems.append(Problem(name, index, line, f"{ref}: {e}"))
                    continue
                if not parsed:
                    self.unknown[kind] = self.unknown.get(kind, 0) + 1
                self.items.extend(parsed)


def _ref(obj: Mapping[str, Any]) -> str:
    md = obj.get("metadata")
    md = md if isinstance(md, Mapping) else {}
    ns, nm = md.get("namespace"), md.get("name")
    return f"{obj.get('kind')} {str(ns) + '/' if ns else ''}{nm or '(unnamed)'}"


def read_texts(texts: Iterable[tuple[str, str]], *, read_certs: bool = True, files: int = 0) -> FilesResult:
    """Parse (name, text) pairs: the core of `load`, usable on in-memory manifests."""
    reader = _Reader(read_certs=read_certs)
    count = 0
    for name, text in texts:
        count += 1
        reader.read(name, text)
    containers, kube = kubeobjects.assemble(reader.items, observed=ALL_KINDS, offline=True)
    return FilesResult(
        part=SourcePart(containers=containers, node=Node(name=""), kube=kube),
        problems=tuple(reader.problems),
        files=files or count,
        documents=reader.documents,
        objects=reader.objects,
        unknown_kinds=tuple(sorted(reader.unknown.items())),
    )


def load(paths: Sequence[Path], *, read_certs: bool = True, stdin: Any = None) -> FilesResult:
    """Read every manifest under `paths` ("-" is standard input). Never raises for bad content."""
    files, problems = expand(paths)

    def texts() -> Iterator[tuple[str, str]]:
        for f in files:
            if str(f) == "-":
                yield "<stdin>", (stdin.read() if stdin is not None else "")
                continue
            try:
                raw = f.read_bytes()
            except OSError as e:
                problems.append(Problem(str(f), 0, 0, f"cannot read: {e.strerror or e}"))
                continue
            try:
                yield str(f), raw.decode("utf-8-sig")
            except UnicodeDecodeError as e:
                problems.append(Problem(str(f), 0, 0, f"not UTF-8 text (byte {e.start})"))

    result = read_texts(texts(), read_certs=read_certs, files=len(files))
    return FilesResult(
        part=result.part,
        problems=tuple(problems) + result.problems,
        files=result.files,
        documents=result.documents,
        objects=result.objects,
        unknown_kinds=result.unknown_kinds,
    )
