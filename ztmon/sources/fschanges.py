"""Writable-layer changes of each running container (`GET /containers/{id}/changes`, i.e. `docker diff`),
and whether an added or changed file is an executable.

Bounded work per scan, because dockerd walks a container's upper directory for every `changes` call:
* at most `max_containers` containers per scan, least recently scanned first (the rest follow in the next
  scans, round robin), at most `concurrency` calls at a time;
* at most `max_changes` entries kept per container: larger sets collapse by directory
  (`model.baseline.bound_changes`), raw counts per kind are kept for the metrics;
* executables: at most `max_probes` stat requests per scan (`HEAD /containers/{id}/archive?path=`, what
  `docker cp` asks first; ~2 ms each): the mode gives the exec bit (and setuid). A regular file without an
  exec bit but big enough to be an ELF binary is read for its magic: at most `max_reads` per scan
  (`GET .../archive`: dockerd builds a tar in a helper process, ~60 ms each), at most `max_probe_bytes` read
  (a tar header and 4 bytes), then the connection is closed. Never-probed files go first; the remaining
  stat budget re-checks the oldest results, and a file whose mode, size or mtime changed is looked at again
  (a file made executable later is caught on a later scan).

Works wherever the Docker API does (remote dockerd, podman's compat API): no host paths, no hostPID.
"""

from __future__ import annotations

import asyncio
import contextlib
import tarfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from ztmon.model.baseline import ChangeKind, ContainerFsChanges, FsChange, bound_changes, significant
from ztmon.model.inventory import SourcePart
from ztmon.sources.base import Notify, Source

log = structlog.get_logger("ztmon.sources.fschanges")

KINDS = {0: ChangeKind.CHANGED, 1: ChangeKind.ADDED, 2: ChangeKind.DELETED}
# Go os.FileMode bits as dockerd reports them in X-Docker-Container-Path-Stat.
_MODE_TYPE = (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)  # dir, link, dev...
_MODE_SETUID = 1 << 23
_MODE_SETGID = 1 << 22
ELF_MAGIC = b"\x7fELF"
_BLOCK = 512


def _utcnow() -> datetime:
    return datetime.now(UTC)


def parse_changes(raw: Any) -> list[tuple[str, ChangeKind]]:
    """The `changes` reply ([{Path, Kind}] or null) as (path, kind); entries we cannot read are skipped."""
    out: list[tuple[str, ChangeKind]] = []
    for item in raw or ():
        if not isinstance(item, Mapping):
            continue
        path, code = item.get("Path"), item.get("Kind")
        kind = KINDS.get(code) if isinstance(code, int) else None
        if isinstance(path, str) and path.startswith("/") and kind is not None:
            out.append((path, kind))
    return out


def exec_reason_from_mode(mode: int) -> str | None:
    """ "mode 0755" (+ setuid/setgid) for an executable regular file, "" for a non-executable regular file,
    None for anything that is not a regular file (directory, symlink, device, ...)."""
    if mode & _MODE_TYPE:
        return None
    perm = mode & 0o777
    if not perm & 0o111:
        return ""
    extra = "".join(s for bit, s in ((_MODE_SETUID, " setuid"), (_MODE_SETGID, " setgid")) if mode & bit)
    return f"mode {perm:04o}{extra}"


def _read_exact(read: Callable[[int], bytes], n: int) -> bytes:
    chunks: list[bytes] = []
    while n > 0:
        chunk = read(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def first_file_bytes(read: Callable[[int], bytes], *, limit: int, want: int = 4) -> bytes:
    """The first `want` bytes of the first regular file of a tar stream, reading at most `limit` bytes.

    Skips PAX and GNU long-name headers (a long path puts one before the file's own header).
    """
    used = 0
    while used + _BLOCK <= limit:
        block = _read_exact(read, _BLOCK)
        used += _BLOCK
        if len(block) < _BLOCK:
            return b""
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            return b""
        if info.type in {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}:
            skip = -(-info.size // _BLOCK) * _BLOCK
            if used + skip > limit:
                return b""
            _read_exact(read, skip)
            used += skip
            continue
        if not info.isreg():
            return b""
        return _read_exact(read, min(want, info.size, max(limit - used, 0)))
    return b""


MIN_ELF_SIZE = 52  # an ELF header (32-bit) is 52 bytes: smaller files are not read for the magic


@dataclass
class _Probe:
    kind: ChangeKind
    reason: str  # why it is an executable; "" = it is not (as far as checked)
    at: int  # scan number of the last stat
    stat: tuple[int, int, str] = (0, 0, "")  # mode, size, mtime: a change means look again
    magic_checked: bool = True  # False: a regular file whose first bytes were not read yet


@dataclass
class _State:
    """One container's last `changes`, already bounded: at most max_changes entries are kept."""

    entries: list[FsChange]  # significant changes; count > 1 = a collapsed directory
    counts: dict[ChangeKind, int]  # raw counts, as Docker reported them
    collapsed: bool
    scanned_at: datetime
    scan_no: int


class FsChangesSource(Source):
    name = "fschanges"

    def __init__(
        self,
        *,
        host: str = "",
        timeout: float = 10.0,
        interval: float = 60.0,
        concurrency: int = 4,
        max_containers: int = 200,
        max_changes: int = 500,
        max_probes: int = 256,
        max_reads: int = 16,
        max_probe_bytes: int = 8192,
        clock: Callable[[], datetime] = _utcnow,
        client: Any = None,
    ) -> None:
        super().__init__()
        self._host = host
        self._timeout = timeout
        self._interval = interval
        self._concurrency = concurrency
        self._max_containers = max_containers
        self._max_changes = max_changes
        self._max_probes = max_probes
        self._max_reads = max_reads
        self._max_probe_bytes = max_probe_bytes
        self._clock = clock
        self._client = client
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}
        self._probes: dict[str, dict[str, _Probe]] = {}
        self._scan_no = 0
        self._part = SourcePart()
        self.last_scan_containers = 0  # for the bench and tests: work done by the last scan
        self.last_scan_probes = 0
        self.last_scan_reads = 0

    # -- client -----------------------------------------------------------------------------------
    def _connect(self) -> Any:
        with self._lock:
            if self._client is None:
                import docker  # noqa: PLC0415 - imported when the source is used

                if self._host:
                    self._client = docker.DockerClient(base_url=self._host, timeout=self._timeout)
                else:
                    self._client = docker.from_env(timeout=self._timeout)
            return self._client

    def _drop_client(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def _list(self) -> list[str]:
        listed = self._connect().api.containers(quiet=True)  # running containers only
        return [str(item["Id"]) for item in listed if isinstance(item, Mapping) and item.get("Id")]

    def _diff(self, cid: str) -> list[tuple[str, ChangeKind]] | BaseException | None:
        """The container's changes; None when it is gone; the error when dockerd refused this one container
        (its last result is kept: one container never fails the scan; an unreachable dockerd does)."""
        import docker.errors  # noqa: PLC0415

        try:
            return parse_changes(self._connect().api.diff(cid))
        except docker.errors.NotFound:
            return None  # gone between list and diff
        except docker.errors.APIError as e:
            refused: BaseException = e
            return refused

    def _bounded(self, cid: str, raw: list[tuple[str, ChangeKind]], now: datetime) -> _State:
        counts = dict.fromkeys(ChangeKind, 0)
        for _, kind in raw:
            counts[kind] += 1
        known = self._probes.get(cid, {})
        keep: list[FsChange] = []  # known executables are never collapsed away
        rest: list[FsChange] = []
        for path, kind in significant(raw):
            seen = known.get(path)
            (keep if seen is not None and seen.kind is kind and seen.reason else rest).append(FsChange(path, kind))
        bounded, collapsed = bound_changes(rest, max(self._max_changes - len(keep), 1))
        paths = {e.path for e in bounded} | {e.path for e in keep}
        if known:  # results for paths no longer changed (or collapsed away) are dropped: bounded memory
            self._probes[cid] = {p: v for p, v in known.items() if p in paths}
        return _State(sorted(keep + bounded, key=lambda e: e.path), counts, collapsed, now, self._scan_no)

    def _archive_url(self, cid: str) -> tuple[Any, str]:
        api = self._connect().api
        return api, api._url("/containers/{0}/archive", cid)  # noqa: SLF001 - the SDK has no stat call

    def _stat(self, cid: str, path: str) -> dict[str, Any] | None:
        """The path's stat as dockerd reports it (HEAD: no tar is built); None when it is gone."""
        import docker.utils  # noqa: PLC0415

        api, url = self._archive_url(cid)
        res = api.head(url, params={"path": path}, timeout=self._timeout)
        try:
            if res.status_code == 404:
                return None
            res.raise_for_status()
            header = res.headers.get("x-docker-container-path-stat")
            stat = docker.utils.decode_json_header(header) if header else {}
            return stat if isinstance(stat, dict) else {}
        finally:
            res.close()

    def _is_elf(self, cid: str, path: str) -> bool:
        """Read the first tar header and 4 bytes of the file (at most max_probe_bytes), then hang up."""
        api, url = self._archive_url(cid)
        res = api.get(
            url, params={"path": path}, stream=True, timeout=self._timeout, headers={"Accept-Encoding": "identity"}
        )
        try:
            if res.status_code == 404:
                return False
            res.raise_for_status()
            return first_file_bytes(res.raw.read, limit=self._max_probe_bytes) == ELF_MAGIC
        finally:
            res.close()  # a partly read body closes the connection: dockerd stops sending the tar

    # -- scanning ---------------------------------------------------------------------------------
    def part(self) -> SourcePart:
        return self._part

    async def refresh(self) -> None:
        try:
            await self.scan()
        except Exception:
            self._drop_client()
            raise

    async def scan(self) -> bool:
        """One bounded scan. True when the published part changed."""
        self._scan_no += 1
        ids = await asyncio.to_thread(self._list)
        alive = set(ids)
        for gone in [cid for cid in self._states if cid not in alive]:
            del self._states[gone]
        for gone in [cid for cid in self._probes if cid not in alive]:
            del self._probes[gone]
        order = sorted(
            ids, key=lambda cid: (cid in self._states, self._states[cid].scan_no if cid in self._states else 0)
        )
        batch = order[: self._max_containers]
        sem = asyncio.Semaphore(self._concurrency)

        async def diff(cid: str) -> tuple[str, list[tuple[str, ChangeKind]] | BaseException | None]:
            async with sem:
                return cid, await asyncio.to_thread(self._diff, cid)

        now = self._clock()
        for cid, raw in await asyncio.gather(*(diff(c) for c in batch)):
            if isinstance(raw, BaseException):
                log.debug("fs_changes_refused", container_id=cid[:12], error=str(raw))
            elif raw is None:
                self._states.pop(cid, None)
                self._probes.pop(cid, None)
            else:
                self._states[cid] = self._bounded(cid, raw, now)
        self.last_scan_containers = len(batch)
        await self._probe_some(sem)
        old = self._part
        self._part = SourcePart(fs_changes=tuple(self._result(cid) for cid in sorted(self._states)))
        self.mark_up()
        return old.fs_changes != self._part.fs_changes

    def _candidates(self) -> list[tuple[str, str, ChangeKind]]:
        """Paths to stat this scan: never probed first, then the oldest results; at most max_probes."""
        fresh: list[tuple[str, str, ChangeKind]] = []
        stale: list[tuple[int, str, str, ChangeKind]] = []
        for cid, st in self._states.items():
            cache = self._probes.get(cid, {})
            for e in st.entries:
                if e.kind is ChangeKind.DELETED or e.count > 1:
                    continue
                seen = cache.get(e.path)
                if seen is None or seen.kind is not e.kind:
                    fresh.append((cid, e.path, e.kind))
                elif seen.at < self._scan_no:
                    stale.append((seen.at, cid, e.path, e.kind))
        stale.sort()
        chosen = fresh[: self._max_probes]
        chosen += [(cid, path, kind) for _, cid, path, kind in stale[: self._max_probes - len(chosen)]]
        return chosen

    def _judge_stat(self, cid: str, path: str, kind: ChangeKind, stat: dict[str, Any] | None) -> _Probe:
        if stat is None:  # gone since `changes` listed it
            return _Probe(kind, "", self._scan_no)
        mode, size = int(stat.get("mode", 0)), int(stat.get("size", 0))
        key = (mode, size, str(stat.get("mtime", "")))
        reason = exec_reason_from_mode(mode)
        if reason is None or reason:  # not a regular file, or executable by its mode
            return _Probe(kind, reason or "", self._scan_no, key)
        old = self._probes.get(cid, {}).get(path)
        if old is not None and old.kind is kind and old.stat == key and old.magic_checked:
            return _Probe(kind, old.reason, self._scan_no, key)  # unchanged: what its content said still holds
        return _Probe(kind, "", self._scan_no, key, magic_checked=size < MIN_ELF_SIZE)

    async def _probe_some(self, sem: asyncio.Semaphore) -> None:
        chosen = self._candidates()
        self.last_scan_probes = len(chosen)

        async def stat(cid: str, path: str, kind: ChangeKind) -> None:
            async with sem:
                try:
                    found = await asyncio.to_thread(self._stat, cid, path)
                except Exception as e:  # one unreadable file never fails the scan
                    log.debug("fs_stat_failed", container_id=cid[:12], path=path, error=f"{type(e).__name__}: {e}")
                    return
            self._probes.setdefault(cid, {})[path] = self._judge_stat(cid, path, kind, found)

        await asyncio.gather(*(stat(*c) for c in chosen))
        unread = [
            (p.at, cid, path, p)
            for cid, cache in self._probes.items()
            for path, p in cache.items()
            if not p.magic_checked
        ]
        unread.sort(key=lambda u: (-u[0], u[1], u[2]))  # just stat'ed first
        reads = unread[: self._max_reads]
        self.last_scan_reads = len(reads)

        async def read(cid: str, path: str, probe: _Probe) -> None:
            async with sem:
                try:
                    elf = await asyncio.to_thread(self._is_elf, cid, path)
                except Exception as e:
                    log.debug("fs_read_failed", container_id=cid[:12], path=path, error=f"{type(e).__name__}: {e}")
                    return
            probe.reason, probe.magic_checked = ("ELF magic" if elf else ""), True

        await asyncio.gather(*(read(cid, path, p) for _, cid, path, p in reads))

    def _result(self, cid: str) -> ContainerFsChanges:
        st = self._states[cid]
        cache = self._probes.get(cid, {})
        entries: list[FsChange] = []
        unprobed = 0
        for e in st.entries:
            seen = cache.get(e.path) if e.count == 1 else None
            if seen is not None and seen.kind is e.kind and (seen.magic_checked or seen.reason):
                entries.append(FsChange(e.path, e.kind, executable=seen.reason, probed=True))
                continue
            if e.kind is not ChangeKind.DELETED and e.count == 1:
                unprobed += 1
            entries.append(e)
        return ContainerFsChanges(
            container_id=cid,
            changes=tuple(entries),
            added=st.counts[ChangeKind.ADDED],
            changed=st.counts[ChangeKind.CHANGED],
            deleted=st.counts[ChangeKind.DELETED],
            collapsed=st.collapsed,
            unprobed=unprobed,
            scanned_at=st.scanned_at,
        )

    async def watch(self, notify: Notify) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                changed = await self.scan()
            except Exception as e:
                self._drop_client()
                msg = f"{type(e).__name__}: {e}"
                if self.mark_down(msg):
                    log.warning("fschanges_unavailable", error=msg)
                    notify()
                continue
            if changed:
                notify()

    async def close(self) -> None:
        await asyncio.to_thread(self._drop_client)
