"""The fschanges source against a fake Docker API: bounded containers, concurrency, probes and entries."""

from __future__ import annotations

import base64
import io
import json
import tarfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import docker.errors
import pytest

from ztmon.model.baseline import ChangeKind
from ztmon.sources import fschanges
from ztmon.sources.fschanges import FsChangesSource, exec_reason_from_mode, first_file_bytes, parse_changes

ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 100
GO_DIR = 1 << 31
GO_SYMLINK = 1 << 27
GO_SETUID = 1 << 23


def tar_of(name: str, data: bytes, *, fmt: int = tarfile.GNU_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, []),
        (
            [{"Path": "/a", "Kind": 1}, {"Path": "/b", "Kind": 0}, {"Path": "/c", "Kind": 2}],
            [("/a", ChangeKind.ADDED), ("/b", ChangeKind.CHANGED), ("/c", ChangeKind.DELETED)],
        ),
        ([{"Path": "rel", "Kind": 1}, {"Path": "/x", "Kind": 9}, "junk", {"Kind": 1}], []),
    ],
)
def test_parse_changes(raw: Any, expected: list) -> None:
    assert parse_changes(raw) == expected


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        (0o755, "mode 0755"),
        (0o100, "mode 0100"),
        (0o644, ""),
        (GO_DIR | 0o755, None),
        (GO_SYMLINK | 0o777, None),
        (GO_SETUID | 0o4755 & 0o777, "mode 0755 setuid"),
    ],
)
def test_exec_reason_from_mode(mode: int, reason: str | None) -> None:
    assert exec_reason_from_mode(mode) == reason


def test_first_file_bytes_reads_the_magic() -> None:
    stream = io.BytesIO(tar_of("bb", ELF))
    assert first_file_bytes(stream.read, limit=8192) == b"\x7fELF"
    assert stream.tell() <= 1024  # header + a few bytes, not the file


def test_first_file_bytes_skips_a_pax_header_for_long_names() -> None:
    long = "d/" * 80 + "tool"
    assert first_file_bytes(io.BytesIO(tar_of(long, ELF, fmt=tarfile.PAX_FORMAT)).read, limit=8192) == b"\x7fELF"
    assert first_file_bytes(io.BytesIO(tar_of(long, ELF, fmt=tarfile.GNU_FORMAT)).read, limit=8192) == b"\x7fELF"


def test_first_file_bytes_stops_at_its_limit() -> None:
    long = "d/" * 80 + "tool"
    assert first_file_bytes(io.BytesIO(tar_of(long, ELF, fmt=tarfile.PAX_FORMAT)).read, limit=512) == b""
    assert first_file_bytes(io.BytesIO(b"\0" * 1024).read, limit=8192) == b""  # end-of-archive block


# -- the source, over a fake API --------------------------------------------------------------------


@dataclass
class FakeFile:
    mode: int
    data: bytes = b""


class FakeResponse:
    def __init__(self, status: int, stat: dict | None, body: bytes) -> None:
        self.status_code = status
        self.headers = (
            {"x-docker-container-path-stat": base64.b64encode(json.dumps(stat).encode()).decode()} if stat else {}
        )
        self.raw = io.BytesIO(body)
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def raise_for_status(self) -> None:
        assert self.status_code == 200


@dataclass
class FakeAPI:
    changes: dict[str, list[dict]] = field(default_factory=dict)
    files: dict[tuple[str, str], FakeFile] = field(default_factory=dict)
    delay: float = 0.0
    refuse: set[str] = field(default_factory=set)
    diffs: list[str] = field(default_factory=list)
    stats: list[tuple[str, str]] = field(default_factory=list)
    archives: list[tuple[str, str]] = field(default_factory=list)
    responses: list[FakeResponse] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def containers(self, quiet: bool) -> list[dict]:
        assert quiet
        return [{"Id": cid} for cid in self.changes]

    def diff(self, cid: str) -> list[dict] | None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.diffs.append(cid)
        try:
            time.sleep(self.delay)
            if cid not in self.changes:
                raise docker.errors.NotFound("gone")
            if cid in self.refuse:
                raise docker.errors.APIError("500 Server Error: layer busy")
            return self.changes[cid]
        finally:
            with self.lock:
                self.in_flight -= 1

    def _url(self, fmt: str, cid: str) -> str:
        return fmt.format(cid)

    def _response(self, url: str, path: str) -> FakeResponse:
        f = self.files.get((url.split("/")[2], path))
        if f is None:
            res = FakeResponse(404, None, b"")
        else:
            res = FakeResponse(200, {"mode": f.mode, "size": len(f.data), "mtime": str(id(f))}, tar_of("x", f.data))
        self.responses.append(res)
        return res

    def head(self, url: str, *, params: dict, timeout: float) -> FakeResponse:
        self.stats.append((url.split("/")[2], params["path"]))
        return self._response(url, params["path"])

    def get(self, url: str, *, params: dict, stream: bool, timeout: float, headers: dict) -> FakeResponse:
        assert stream
        self.archives.append((url.split("/")[2], params["path"]))
        return self._response(url, params["path"])


@dataclass
class FakeClient:
    api: FakeAPI

    def close(self) -> None:
        pass


def added(*paths: str) -> list[dict]:
    return [{"Path": p, "Kind": 1} for p in paths]


def source(api: FakeAPI, **kw: Any) -> FsChangesSource:
    return FsChangesSource(client=FakeClient(api), **kw)


async def test_at_most_max_containers_per_scan_least_recently_scanned_first() -> None:
    api = FakeAPI(changes={c: [] for c in ("a", "b", "c")})
    src = source(api, max_containers=2)
    await src.scan()
    assert sorted(api.diffs) == ["a", "b"]
    api.diffs.clear()
    await src.scan()
    assert api.diffs[0] == "c"  # never scanned goes first
    assert len(api.diffs) == 2
    assert {fc.container_id for fc in src.part().fs_changes} == {"a", "b", "c"}


async def test_concurrency_is_bounded() -> None:
    api = FakeAPI(changes={f"c{i}": [] for i in range(12)}, delay=0.02)
    await source(api, concurrency=3).scan()
    assert len(api.diffs) == 12
    assert api.max_in_flight <= 3


async def test_executables_by_mode_and_by_elf_magic() -> None:
    api = FakeAPI(
        changes={"a": added("/tmp", "/tmp/script", "/tmp/elf", "/tmp/text", "/tmp/dir")},
        files={
            ("a", "/tmp/script"): FakeFile(0o755, b"#!/bin/sh\n"),
            ("a", "/tmp/elf"): FakeFile(0o644, ELF),
            ("a", "/tmp/text"): FakeFile(0o644, b"hello"),
            ("a", "/tmp/dir"): FakeFile(GO_DIR | 0o755),
        },
    )
    src = source(api)
    await src.scan()
    [fc] = src.part().fs_changes
    assert {c.path: c.executable for c in fc.changes} == {
        "/tmp/dir": "",
        "/tmp/elf": "ELF magic",
        "/tmp/script": "mode 0755",
        "/tmp/text": "",
    }  # "/tmp" itself is only there because of its children
    assert fc.added == 5
    assert fc.unprobed == 0
    assert all(r.closed for r in api.responses)  # every archive response closed, read or not


async def test_stat_budget_and_rechecks() -> None:
    paths = [f"/x/f{i}" for i in range(5)]
    api = FakeAPI(changes={"a": added(*paths)}, files={("a", p): FakeFile(0o644, b"text") for p in paths})
    src = source(api, max_probes=2)
    await src.scan()
    assert len(api.stats) == 2
    assert api.archives == []  # 4-byte files are never read for a magic
    assert src.part().fs_changes[0].unprobed == 3
    await src.scan()
    await src.scan()
    assert src.part().fs_changes[0].unprobed == 0
    api.files[("a", "/x/f0")] = FakeFile(0o755, b"text")  # chmod +x after the first probe
    for _ in range(3):
        await src.scan()  # the remaining budget re-checks the oldest results
    assert next(c for c in src.part().fs_changes[0].changes if c.path == "/x/f0").executable == "mode 0755"


async def test_magic_reads_are_budgeted_and_not_repeated() -> None:
    paths = [f"/x/f{i}" for i in range(5)]
    api = FakeAPI(changes={"a": added(*paths)}, files={("a", p): FakeFile(0o644, ELF) for p in paths})
    src = source(api, max_reads=2)
    await src.scan()
    assert (len(api.stats), len(api.archives)) == (5, 2)
    fc = src.part().fs_changes[0]
    assert fc.unprobed == 3  # stat'ed, but the content of three is still unknown
    assert sum(1 for c in fc.changes if c.executable == "ELF magic") == 2
    await src.scan()
    await src.scan()
    assert len(api.archives) == 5  # each file read once: an unchanged stat keeps what its content said
    assert all(c.executable == "ELF magic" for c in src.part().fs_changes[0].changes)


async def test_large_change_sets_collapse_but_executables_stay() -> None:
    cache = [f"/var/cache/app/f{i:04d}" for i in range(300)]
    api = FakeAPI(changes={"a": added("/etc/evil", *cache)}, files={("a", "/etc/evil"): FakeFile(0o755, b"#!")})
    src = source(api, max_changes=10, max_probes=1)
    await src.scan()  # the first stat finds /etc/evil before anything is collapsed away
    await src.scan()
    [fc] = src.part().fs_changes
    assert len(fc.changes) <= 10
    assert fc.collapsed
    assert fc.added == 301
    assert any(c.path == "/etc/evil" and c.executable for c in fc.changes)
    assert sum(c.count for c in fc.changes) == 301


async def test_gone_containers_are_dropped() -> None:
    api = FakeAPI(changes={"a": added("/x"), "b": added("/y")})
    src = source(api)
    await src.scan()
    del api.changes["b"]
    assert await src.scan()  # the part changed
    assert [fc.container_id for fc in src.part().fs_changes] == ["a"]
    assert not await src.scan()  # nothing changed


def test_module_constants() -> None:
    assert fschanges.ELF_MAGIC == b"\x7fELF"


async def test_one_refused_container_keeps_its_last_result_and_the_scan_goes_on() -> None:
    api = FakeAPI(changes={"a": added("/x"), "b": added("/y")})
    src = source(api)
    await src.scan()
    api.refuse.add("a")
    api.changes["b"] = added("/y", "/z")
    await src.scan()
    assert {fc.container_id: len(fc.changes) for fc in src.part().fs_changes} == {"a": 1, "b": 2}
    assert src.up
