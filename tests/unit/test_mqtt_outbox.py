"""The durable outbox: order, acks, bounds, restart, and the memory fallback when the disk fails."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from ztmon.sinks import outbox
from ztmon.sinks.outbox import Outbox, Row


def rows(*ids: str, size: int = 10) -> list[Row]:
    return [Row(i, f"t/{i}", "opened", b"x" * size, 0.0) for i in ids]


def ids(taken: list[Row]) -> list[str]:
    return [r.event_id for r in taken]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.sqlite"


def opened(path: Path | None, **kw: object) -> Outbox:
    box = Outbox(path, **kw)  # type: ignore[arg-type]
    box.open()
    return box


def test_take_returns_oldest_first(path: Path):
    box = opened(path)
    box.commit(rows("a", "b"), {}, ())
    box.commit(rows("c"), {}, ())
    assert ids(box.take(10)) == ["a", "b", "c"]
    assert ids(box.take(2)) == ["a", "b"]
    assert box.size == 3


def test_ack_removes_only_acked(path: Path):
    box = opened(path)
    box.commit(rows("a", "b", "c"), {}, ())
    box.ack(["a", "c"])
    assert ids(box.take(10)) == ["b"]
    assert box.size == 1


def test_survives_reopen_with_state(path: Path):
    box = opened(path)
    box.commit(rows("a", "b"), {"f1": b'{"x":1}', "f2": b'{"x":2}'}, ())
    box.commit([], {}, ["f1"])
    box.ack(["a"])
    box.close()
    again = Outbox(path)
    assert again.open() == {"f2": b'{"x":2}'}
    assert ids(again.take(10)) == ["b"]
    assert again.size == 1


def test_events_and_state_commit_together(path: Path):
    """A report's events and the state change are one transaction: the state never runs ahead."""
    box = opened(path)
    box.commit(rows("a"), {"f1": b"{}"}, ())
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM state").fetchone()[0] == 1
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_bounded_drops_oldest_and_counts(path: Path):
    box = opened(path, max_events=3)
    box.commit(rows("a", "b", "c"), {}, ())
    box.commit(rows("d", "e"), {}, ())
    assert ids(box.take(10)) == ["c", "d", "e"]
    assert box.dropped[outbox.DROP_FULL] == 2
    assert box.size == 3


def test_one_report_larger_than_the_bound_keeps_its_newest(path: Path):
    box = opened(path, max_events=2)
    box.commit(rows("a", "b", "c", "d"), {}, ())
    assert ids(box.take(10)) == ["c", "d"]
    assert box.dropped[outbox.DROP_FULL] == 2


def test_disk_full_degrades_to_memory_and_keeps_order(path: Path):
    box = opened(path, max_page_count=8, retry_seconds=60)  # a few 4 KiB pages: "database or disk is full"
    box.commit(rows("a"), {}, ())
    assert not box.degraded
    big = [Row(f"big{i}", "t", "opened", os.urandom(4000), 0.0) for i in range(20)]
    box.commit(big, {}, ())
    assert box.degraded
    assert "full" in box.error
    box.commit(rows("z"), {}, ())
    assert ids(box.take(100)) == ["a", *(r.event_id for r in big), "z"]
    assert box.size == 22
    assert box.memory_size == 21


def test_memory_fallback_is_bounded_and_counts_drops():
    box = opened(None, memory_max_events=2)
    assert box.degraded
    box.commit(rows("a", "b", "c"), {}, ())
    assert ids(box.take(10)) == ["b", "c"]
    assert box.dropped[outbox.DROP_MEMORY_FULL] == 1


def test_recovers_to_disk_in_order_with_full_state(path: Path):
    clock = Clock()
    box = opened(path, max_page_count=8, retry_seconds=5, clock=clock)
    box.commit(rows("a"), {"f1": b"1"}, ())
    big = [Row(f"big{i}", "t", "opened", os.urandom(4000), 0.0) for i in range(20)]
    box.commit(big, {"f2": b"2"}, ())
    assert box.degraded
    box.ack([r.event_id for r in big[:18]])  # delivered from memory while degraded
    box.max_page_count = None  # space freed
    box._db.execute("PRAGMA max_page_count=1000000")  # type: ignore[union-attr]
    box.commit(rows("c"), {"f3": b"3"}, ["f1"])
    assert box.degraded  # not yet: retry_seconds not elapsed
    clock.now = 10
    box.commit(rows("d"), {}, ())
    assert not box.degraded
    assert box.memory_size == 0
    assert ids(box.take(10)) == ["a", "big18", "big19", "c", "d"]
    box.close()
    again = Outbox(path)
    assert again.open() == {"f2": b"2", "f3": b"3"}
    assert ids(again.take(10)) == ["a", "big18", "big19", "c", "d"]


def test_unwritable_directory_degrades_at_open(tmp_path: Path):
    if os.geteuid() == 0:
        target = Path("/proc/ztmon-no-such-dir/outbox.sqlite")  # not creatable even for root
    else:
        tmp_path.chmod(0o500)
        target = tmp_path / "sub" / "outbox.sqlite"
    box = Outbox(target)
    assert box.open() == {}
    assert box.degraded
    box.commit(rows("a"), {}, ())
    assert ids(box.take(1)) == ["a"]


def test_second_process_on_same_outbox_is_refused(path: Path):
    first = opened(path)
    second = opened(path)
    assert not first.degraded
    assert second.degraded
    assert "locked" in second.error
    first.close()


def test_corrupt_database_is_moved_aside(path: Path):
    path.write_bytes(b"this is not a database" * 100)
    box = opened(path)
    assert not box.degraded
    assert any(p.name.startswith("outbox.sqlite.corrupt-") for p in path.parent.iterdir())
    box.commit(rows("a"), {}, ())
    assert ids(box.take(1)) == ["a"]


def test_drop_counts_reason_and_removes(path: Path):
    box = opened(path)
    box.commit(rows("a", "b"), {}, ())
    box.drop("a", outbox.DROP_REJECTED)
    assert ids(box.take(10)) == ["b"]
    assert box.dropped[outbox.DROP_REJECTED] == 1


def test_duplicate_event_id_is_stored_once(path: Path):
    box = opened(path)
    box.commit(rows("a"), {}, ())
    box.commit(rows("a"), {}, ())
    assert ids(box.take(10)) == ["a"]
    assert box.size == 1
