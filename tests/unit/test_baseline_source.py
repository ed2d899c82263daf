"""The baseline source: atomic reload (a bad new document is refused, the old one stays, a log line and the
metrics' counters say so), learned state kept across restarts, lock deadlines wake the engine."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from tests.unit.conftest import make_container
from ztmon.engine import baselines
from ztmon.model.baseline import Mode, WorkloadKey
from ztmon.model.inventory import Node, SourcePart
from ztmon.settings import Settings

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DOC_A = "version: 1\nworkloads:\n  - workload: web\n"
DOC_B = "version: 1\nworkloads:\n  - workload: web\n  - workload: db\n"
BAD = "version: 1\nworkloads:\n  - workload: web\n    colour: blue\n"


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    structlog.reset_defaults()  # capture_logs sees every level, whatever an earlier test configured


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def write(path: Path, text: str) -> None:
    """Replace like kubelet and editors do (rename), with a distinct mtime."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def make(tmp_path: Path, *, containers=(), window: float = 600, learned: Path | None = None, clock=None):
    path = tmp_path / "baseline.yaml"
    if not path.exists():
        write(path, DOC_A)
    learner = baselines.Learner(window=timedelta(seconds=window))
    learner.set_document(baselines.load_document(path))
    if learned is not None:
        learner.restore(baselines.load_learned(learned))
    parts = [SourcePart(containers=tuple(containers), node=Node(name="n1"))]
    src = baselines.BaselineSource(
        learner=learner,
        node_name="n1",
        parts=lambda: parts,
        clock=clock or Clock(),
        path=path,
        learned_path=learned,
    )
    return src, path


async def test_valid_new_document_replaces_the_old_one(tmp_path: Path) -> None:
    src, path = make(tmp_path)
    old = src.part().baseline
    assert old is not None
    write(path, DOC_B)
    with structlog.testing.capture_logs() as logs:
        assert await src.step()
    new = src.part().baseline
    assert new is not None
    assert new.documents[0].sha256 != old.documents[0].sha256
    assert new.mode(WorkloadKey("", "db")) is Mode.LOCKED
    assert [e["event"] for e in logs] == ["baseline_reloaded"]


async def test_invalid_new_document_is_refused_and_the_old_one_stays(tmp_path: Path) -> None:
    src, path = make(tmp_path)
    old = src.part().baseline
    assert old is not None
    write(path, BAD)
    with structlog.testing.capture_logs() as logs:
        assert await src.step()
    view = src.part().baseline
    assert view is not None
    assert view.baseline == old.baseline
    assert view.documents == old.documents  # the same sha256 is still what is loaded
    assert (view.reload_ok, view.reload_failures_total) == (False, 1)
    [event] = logs
    assert event["event"] == "baseline_reload_refused"
    assert event["log_level"] == "warning"
    assert event["errors"] == [f"{path}:4: workloads.0.colour: unknown field"]
    assert not await src.step()  # the same bad file is not counted again
    assert src.part().baseline.reload_failures_total == 1  # type: ignore[union-attr]
    write(path, DOC_B)  # fixed: loads, and the failure state clears
    assert await src.step()
    view = src.part().baseline
    assert view is not None
    assert (view.reload_ok, view.reload_failures_total) == (True, 1)
    assert view.mode(WorkloadKey("", "db")) is Mode.LOCKED


async def test_deleted_document_is_refused_too(tmp_path: Path) -> None:
    src, path = make(tmp_path)
    path.unlink()
    assert await src.step()
    view = src.part().baseline
    assert view is not None
    assert not view.reload_ok
    assert view.mode(WorkloadKey("", "web")) is Mode.LOCKED


async def test_touched_but_identical_document_is_no_change(tmp_path: Path) -> None:
    src, path = make(tmp_path)
    write(path, DOC_A)
    assert not await src.reload()


async def test_learned_workloads_survive_a_restart(tmp_path: Path) -> None:
    learned = tmp_path / "learned.yaml"
    clock = Clock()
    src, _ = make(tmp_path, containers=[make_container(name="api")], window=60, learned=learned, clock=clock)
    await src.refresh()
    assert src.part().baseline.mode(WorkloadKey("", "api")) is Mode.LEARNING  # type: ignore[union-attr]
    assert not learned.exists()
    clock.now += timedelta(seconds=60)
    assert await src.step()
    assert learned.exists()
    again, _ = make(tmp_path, containers=[make_container(name="api")], window=60, learned=learned)
    assert again.part().baseline.mode(WorkloadKey("", "api")) is Mode.LOCKED  # type: ignore[union-attr]


async def test_watch_wakes_at_the_lock_deadline_and_notifies() -> None:
    clock = Clock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)

    learner = baselines.Learner(window=timedelta(seconds=30))
    parts = [SourcePart(containers=(make_container(name="api"),), node=Node(name="n1"))]
    src = baselines.BaselineSource(
        learner=learner, node_name="n1", parts=lambda: parts, clock=clock, observe_interval=100, sleep=sleep
    )
    await src.refresh()
    notified = asyncio.Event()
    at: list[datetime] = []

    def notify() -> None:
        at.append(clock.now)
        notified.set()

    task = asyncio.create_task(src.watch(notify))
    await asyncio.wait_for(notified.wait(), timeout=5)
    task.cancel()
    assert slept[0] == pytest.approx(30.01)  # no document to poll: straight to the deadline, not 100 s
    assert at[0] - T0 == pytest.approx(timedelta(seconds=30), abs=timedelta(milliseconds=20))  # at the deadline
    assert src.part().baseline.mode(WorkloadKey("", "api")) is Mode.LOCKED  # type: ignore[union-attr]


def test_bad_document_at_start_up_is_a_usage_error(tmp_path: Path) -> None:
    from ztmon.engine import build  # noqa: PLC0415

    path = tmp_path / "b.yaml"
    path.write_text(BAD, encoding="utf-8")
    settings = Settings(baseline={"file": path}, sources={"docker": {"enabled": False}, "host": {"enabled": False}})
    with pytest.raises(build.UsageError) as e:
        build.make_sources(settings)
    assert str(e.value) == f"invalid baseline:\n  {path}:4: workloads.0.colour: unknown field"


def test_sources_follow_the_settings(tmp_path: Path) -> None:
    from ztmon.engine import build  # noqa: PLC0415

    off = {"docker": {"enabled": False}, "host": {"enabled": False}}
    assert [s.name for s in build.make_sources(Settings(sources=off))] == []
    assert [s.name for s in build.make_sources(Settings(sources=off, baseline={"enabled": True}))] == [
        "fschanges",
        "baseline",
    ]
    no_fs = {**off, "fschanges": {"enabled": False}}
    assert [s.name for s in build.make_sources(Settings(sources=no_fs, baseline={"enabled": True}))] == ["baseline"]
