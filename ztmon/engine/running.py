"""The daemon: sources refreshed on a schedule and watched in between, a cycle per change, sinks fed.

Every long-running coroutine is a named, guarded task: a failure is logged and the task restarted after
a pause; shutdown cancels them all within the configured timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import structlog

from ztmon.checks.registry import CheckSpec
from ztmon.engine import pipeline
from ztmon.model.findings import Report, SourceStatus
from ztmon.model.policy import Policy
from ztmon.model.suppression import SuppressionRule
from ztmon.sinks.base import Sink
from ztmon.sources.base import Source

log = structlog.get_logger("ztmon.engine")
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Engine:
    def __init__(
        self,
        *,
        node_name: str,
        sources: Sequence[Source],
        sinks: Sequence[Sink],
        checks: Sequence[CheckSpec],
        known_checks: frozenset[str],
        policy: Policy,
        rules: tuple[SuppressionRule, ...] = (),
        severity_overrides: dict[str, object] | None = None,
        source_timeout: float = 30.0,
        sink_timeout: float = 10.0,
        debounce: float = 0.05,
        clock: Clock = utcnow,
    ) -> None:
        self.node_name = node_name
        self.sources = list(sources)
        self.sinks = list(sinks)
        self.runner = pipeline.CheckRunner(checks, dict(severity_overrides or {}))  # type: ignore[arg-type]
        self.known_checks = known_checks
        self.policy = policy
        self.rules = rules
        self.source_timeout = source_timeout
        self.sink_timeout = sink_timeout
        self.debounce = debounce
        self.clock = clock
        self.report: Report | None = None
        self.ready = False
        self._cycles = itertools.count(1)
        self._cycle_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._sink_status: dict[str, SourceStatus] = {}
        self._problems_logged: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._listeners: list[Callable[[Report], None]] = []

    # -- one cycle --------------------------------------------------------------------------------
    async def refresh_source(self, source: Source) -> bool:
        start = time.perf_counter()
        try:
            await asyncio.wait_for(source.refresh(), timeout=self.source_timeout)
        except Exception as e:  # isolated: one source never breaks a cycle
            source.duration_seconds = time.perf_counter() - start
            msg = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            if source.mark_down(msg):
                log.warning("source_down", source=source.name, error=msg)
            return False
        source.duration_seconds = time.perf_counter() - start
        source.mark_up()
        return True

    async def refresh_all(self, names: Sequence[str] | None = None) -> None:
        chosen = [s for s in self.sources if names is None or s.name in names]
        await asyncio.gather(*(self.refresh_source(s) for s in chosen))

    def source_statuses(self) -> list[SourceStatus]:
        return [
            SourceStatus(
                s.name, s.up, s.last_success, s.duration_seconds, s.error, tuple(sorted(s.odd_inputs().items()))
            )
            for s in self.sources
        ]

    async def cycle(self) -> Report:
        async with self._cycle_lock:
            snapshot = pipeline.build_snapshot(
                now=self.clock(),
                node_name=self.node_name,
                parts=[s.part() for s in self.sources],
                policy=self.policy,
            )
            result = pipeline.cycle(
                snapshot=snapshot,
                runner=self.runner,
                rules=self.rules,
                known_checks=self.known_checks,
                sources=self.source_statuses(),
                sinks=list(self._sink_status.values()),
                cycles_total=next(self._cycles),
            )
            for problem in result.problems:
                if problem not in self._problems_logged:
                    self._problems_logged.add(problem)
                    log.warning("suppression_problem", problem=problem)
            report = result.report
            self.report = report
            with structlog.contextvars.bound_contextvars(scan_id=report.scan_id):
                await self._publish(report)
            for listener in self._listeners:
                listener(report)
            return report

    async def _publish(self, report: Report) -> None:
        for sink in self.sinks:
            start = time.perf_counter()
            prev = self._sink_status.get(sink.name)
            # Each sink sees the outcome of the sinks before it in this cycle (and its own from the last).
            seen = dataclasses.replace(report, sinks=tuple(self._sink_status.values()))
            try:
                await asyncio.wait_for(sink.publish(seen), timeout=self.sink_timeout)
            except Exception as e:
                msg = f"{type(e).__name__}: {e}"
                if prev is None or prev.up or prev.error != msg:
                    log.warning("sink_failed", sink=sink.name, error=msg)
                self._sink_status[sink.name] = SourceStatus(
                    sink.name,
                    up=False,
                    last_success=prev.last_success if prev else None,
                    duration_seconds=time.perf_counter() - start,
                    error=msg,
                )
                continue
            self._sink_status[sink.name] = SourceStatus(
                sink.name, up=True, last_success=utcnow(), duration_seconds=time.perf_counter() - start
            )

    def on_report(self, listener: Callable[[Report], None]) -> None:
        self._listeners.append(listener)

    async def scan_once(self, names: Sequence[str] | None = None) -> Report:
        await self.refresh_all(names)
        report = await self.cycle()
        self.ready = True
        return report

    # -- daemon -----------------------------------------------------------------------------------
    def notify(self) -> None:
        """Called by sources when their part changed; cycles are debounced."""
        self._wake.set()

    async def _cycler(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.debounce)
            self._wake.clear()
            await self.cycle()  # the change itself reaches /metrics first ...
            followers = [s for s in self.sources if s.refresh_on_change]
            if followers:  # ... then what depends on it (a new container's sockets, probed)
                await asyncio.gather(*(self.refresh_source(s) for s in followers))
                await self.cycle()

    async def resync(self) -> None:
        await self.refresh_all()
        await self.cycle()

    def _guarded(self, name: str, factory: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        async def guard() -> None:
            delay = 1.0
            while True:
                try:
                    await factory()
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    log.error("task_failed", task=name, error=f"{type(e).__name__}: {e}", exc_info=True)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                else:
                    return  # finished normally (e.g. a source without a change feed)

        task = asyncio.create_task(guard(), name=name)
        self._tasks.append(task)
        return task

    async def start(self, *, resync_interval: float, jitter: float) -> None:
        """Initial scan, then watches, the cycler and the resync schedule."""
        await self.scan_once()
        log.info(
            "ready",
            containers=len(self.report.containers) if self.report else 0,
            findings=len(self.report.findings) if self.report else 0,
        )
        for source in self.sources:
            src = source
            self._guarded(f"watch:{src.name}", lambda src=src: src.watch(self.notify))  # type: ignore[misc]
        self._guarded("cycler", self._cycler)
        from apscheduler.schedulers.asyncio import AsyncIOScheduler  # noqa: PLC0415 - daemon-only import

        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._scheduler.add_job(
            self.resync,
            "interval",
            seconds=resync_interval,
            jitter=jitter,
            id="resync",
            name="resync",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self._scheduler.start()

    async def stop(self, grace: float = 4.0) -> None:
        scheduler = getattr(self, "_scheduler", None)
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace / 2)
        closers = [s.close() for s in self.sources] + [k.close() for k in self.sinks]
        for closing in closers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(closing, timeout=grace / 4)
