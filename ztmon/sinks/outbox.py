"""The durable outbox: events are stored before they are published and removed once the broker acks them.

SQLite (stdlib) in WAL mode: one file, atomic transactions (a report's events and the new open-finding
state are committed together, so a crash never leaves one without the other), and `synchronous=FULL`,
so a committed event survives a power cut, not only a SIGKILL. Why not a queue library: persist-queue
and friends give a queue but not the transaction with the state table, and add a dependency.

Bounded: at most `max_events` rows; beyond, the *oldest* events are dropped and counted (`full`). The
newest events describe the current posture; an old `opened` whose finding is long resolved is worth
least. A consumer that missed events re-reads the retained summary (docs/events.md).

When the disk fails (full, read-only, I/O error, locked by another process), new events go to a bounded
memory queue (`degraded` is set, drops counted as `memory_full`); every `retry_seconds` a write tries to
move them back to disk in order. Scanning never waits on this: the sink calls these methods in its own
writer thread.

Not thread-safe: one thread (the sink's writer) calls every method. Counters are plain ints that the
metrics collector reads from another thread (a torn read is impossible for a Python int).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger("ztmon.sinks.outbox")

SCHEMA = 1
_CHUNK = 500  # rows per DELETE ... IN (...): well under SQLite's 32,766 host-parameter limit

DROP_FULL = "full"  # the disk outbox reached max_events: oldest dropped
DROP_MEMORY_FULL = "memory_full"  # the memory fallback reached its bound: oldest dropped
DROP_OVERSIZED = "oversized"  # even without evidence, the payload exceeds the size limit
DROP_REJECTED = "rejected"  # the broker dropped the connection on this event, again and again
DROP_REASONS = (DROP_FULL, DROP_MEMORY_FULL, DROP_OVERSIZED, DROP_REJECTED)


@dataclass(frozen=True, slots=True)
class Row:
    event_id: str
    topic: str
    type: str  # opened | resolved | changed (a metric label)
    payload: bytes
    created: float  # unix time the event entered the outbox


class Outbox:
    def __init__(
        self,
        path: Path | None,
        *,
        max_events: int = 100_000,
        memory_max_events: int = 10_000,
        retry_seconds: float = 30.0,
        max_page_count: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`path` None: memory only (degraded from the start). `max_page_count` caps the file (tests)."""
        self.path = path
        self.max_events = max_events
        self.memory_max_events = memory_max_events
        self.retry_seconds = retry_seconds
        self.max_page_count = max_page_count
        self.clock = clock
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.degraded = False
        self.error = ""  # why degraded, for logs and people
        self._db: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._disk_count = 0
        self._memory: dict[str, Row] = {}  # insertion-ordered: oldest first
        self._acked_unsynced: set[str] = set()  # acked, but the DELETE failed: hidden, retried
        self._state: dict[str, bytes] = {}  # open findings (id -> Tracked JSON), mirrored to disk
        self._state_dirty = False  # the disk copy of the state lags the mirror
        self._retry_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return max(self._disk_count - len(self._acked_unsynced), 0) + len(self._memory)

    @property
    def memory_size(self) -> int:
        return len(self._memory)

    def open(self) -> dict[str, bytes]:
        """Open (or create) the database; return the persisted open-finding state. Never raises."""
        if self.path is None:
            self._degrade("no outbox path configured: events are kept in memory only")
            return {}
        try:
            self._connect()
            assert self._db is not None  # noqa: S101 - set by _connect
            self._state = dict(self._db.execute("SELECT id, record FROM state").fetchall())
            self._disk_count = int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        except (sqlite3.Error, OSError) as e:
            self._close_db()
            self._degrade(f"cannot open outbox {self.path}: {_describe(e)}")
            return {}
        if self._disk_count:
            log.info("outbox_pending", path=str(self.path), events=self._disk_count)
        return dict(self._state)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error, OSError):
            self._flush_acks()
        self._close_db()

    def _connect(self) -> None:
        assert self.path is not None  # noqa: S101
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            db = self._sqlite()
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as e:
            if "not a database" not in str(e) and "malformed" not in str(e):
                raise
            aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
            log.error("outbox_corrupt", path=str(self.path), moved_to=str(aside), error=_describe(e))  # noqa: TRY400 - one line, no traceback
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{self.path}{suffix}")
                if src.exists():
                    src.rename(Path(f"{aside}{suffix}"))
            db = self._sqlite()
            version = 0
        if version > SCHEMA:
            db.close()
            raise sqlite3.DatabaseError(f"outbox schema {version} is newer than this ztmon's ({SCHEMA})")
        self._db = db

    def _sqlite(self) -> sqlite3.Connection:
        assert self.path is not None  # noqa: S101
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=5.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            if self.max_page_count is not None:
                db.execute(f"PRAGMA max_page_count={int(self.max_page_count)}")
            db.executescript(
                """
                CREATE TABLE IF NOT EXISTS events (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    event_id TEXT NOT NULL UNIQUE,
                    topic TEXT NOT NULL,
                    type TEXT NOT NULL,
                    payload BLOB NOT NULL,
                    created REAL NOT NULL
                );
                CREATE TABLE IF NOT EXISTS state (id TEXT PRIMARY KEY, record BLOB NOT NULL);
                PRAGMA user_version = 1;
                """
            )
        except BaseException:
            db.close()
            raise
        return db

    def _lock(self) -> None:
        """One process per outbox: two publishers of the same rows would interleave and duplicate."""
        if self._lock_fd is not None:
            return
        assert self.path is not None  # noqa: S101
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OSError(f"locked by another process ({self.path}.lock)") from None
        self._lock_fd = fd

    def _close_db(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def _degrade(self, error: str) -> None:
        if not self.degraded or error != self.error:
            log.error(
                "outbox_degraded",
                path=str(self.path) if self.path else None,
                error=error,
                memory_max_events=self.memory_max_events,
                hint="events are kept in a bounded memory queue until the disk is writable again",
            )
        self.degraded = True
        self.error = error
        self._state_dirty = True
        self._retry_at = self.clock() + self.retry_seconds

    # -- writing -----------------------------------------------------------------------------------
    def commit(self, rows: Sequence[Row], upserts: Mapping[str, bytes], deletes: Iterable[str]) -> None:
        """Store a report's events and state change, atomically. Never raises: degrades to memory."""
        deletes = tuple(deletes)
        self._state.update(upserts)
        for fid in deletes:
            self._state.pop(fid, None)
        if self.degraded and self.clock() >= self._retry_at:
            self._recover()
        if not self.degraded:
            try:
                self._write(rows, upserts, deletes)
            except (sqlite3.Error, OSError) as e:
                self._degrade(f"outbox write failed: {_describe(e)}")
            else:
                return
        for row in rows:
            self._remember(row)

    def _write(self, rows: Sequence[Row], upserts: Mapping[str, bytes], deletes: Sequence[str]) -> None:
        db = self._db
        if db is None:
            raise sqlite3.OperationalError("outbox is not open")
        if not rows and not upserts and not deletes and not self._state_dirty:
            return
        rows = list(rows)
        if len(rows) > self.max_events:  # a single report larger than the bound: keep its newest
            self.dropped[DROP_FULL] += len(rows) - self.max_events
            rows = rows[-self.max_events :]
        overflow = self._disk_count + len(rows) - self.max_events
        db.execute("BEGIN IMMEDIATE")
        try:
            trimmed = 0
            if overflow > 0:
                trimmed = db.execute(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)", (overflow,)
                ).rowcount
            inserted = db.executemany(
                "INSERT OR IGNORE INTO events (event_id, topic, type, payload, created) VALUES (?, ?, ?, ?, ?)",
                [(r.event_id, r.topic, r.type, r.payload, r.created) for r in rows],
            ).rowcount
            if self._state_dirty:
                db.execute("DELETE FROM state")
                db.executemany("INSERT INTO state (id, record) VALUES (?, ?)", list(self._state.items()))
            else:
                db.executemany("INSERT OR REPLACE INTO state (id, record) VALUES (?, ?)", list(upserts.items()))
                db.executemany("DELETE FROM state WHERE id = ?", [(fid,) for fid in deletes])
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        if trimmed:
            self.dropped[DROP_FULL] += trimmed
            log.warning("outbox_full", dropped=trimmed, max_events=self.max_events, policy="drop-oldest")
        self._disk_count += max(inserted, 0) - trimmed
        self._state_dirty = False

    def _remember(self, row: Row) -> None:
        self._memory[row.event_id] = row
        while len(self._memory) > self.memory_max_events:
            del self._memory[next(iter(self._memory))]
            self.dropped[DROP_MEMORY_FULL] += 1

    def _recover(self) -> None:
        """Move the memory queue (oldest first) and the full state back to disk; stay degraded on failure."""
        try:
            if self._db is None:
                self._connect()
                assert self._db is not None  # noqa: S101
                self._disk_count = int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])
            self._state_dirty = True
            self._write(list(self._memory.values()), {}, ())
        except (sqlite3.Error, OSError) as e:
            self._retry_at = self.clock() + self.retry_seconds
            self.error = f"outbox still unavailable: {_describe(e)}"
            return
        log.warning("outbox_recovered", path=str(self.path), moved_from_memory=len(self._memory))
        self._memory.clear()
        self.degraded = False
        self.error = ""

    # -- reading and acknowledging -----------------------------------------------------------------
    def take(self, limit: int) -> list[Row]:
        """The oldest `limit` events not yet acknowledged: disk first (older), then memory."""
        out: list[Row] = []
        if self._db is not None and self._disk_count > len(self._acked_unsynced):
            try:
                cur = self._db.execute(
                    "SELECT event_id, topic, type, payload, created FROM events ORDER BY seq LIMIT ?",
                    (limit + len(self._acked_unsynced),),
                )
                out = [Row(*r) for r in cur.fetchall() if r[0] not in self._acked_unsynced][:limit]
            except sqlite3.Error as e:
                self._degrade(f"outbox read failed: {_describe(e)}")
        if len(out) < limit:
            for row in self._memory.values():
                out.append(row)
                if len(out) >= limit:
                    break
        return out

    def ack(self, event_ids: Iterable[str]) -> None:
        """Remove delivered events. A failed DELETE only hides them (they may be re-sent after a restart)."""
        for eid in event_ids:
            if self._memory.pop(eid, None) is None and self._db is not None:
                self._acked_unsynced.add(eid)
        try:
            self._flush_acks()
        except (sqlite3.Error, OSError) as e:
            self._degrade(f"outbox delete failed: {_describe(e)}")

    def drop(self, event_id: str, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self.ack([event_id])

    def _flush_acks(self) -> None:
        if not self._acked_unsynced or self._db is None:
            return
        ids = list(self._acked_unsynced)
        deleted = 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                deleted += self._db.execute(f"DELETE FROM events WHERE event_id IN ({marks})", chunk).rowcount  # noqa: S608 - only placeholders
            self._db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        self._disk_count -= deleted
        self._acked_unsynced.clear()

    # -- inspection (tests, `ztmon` tooling) -------------------------------------------------------
    def state(self) -> dict[str, bytes]:
        return dict(self._state)


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
