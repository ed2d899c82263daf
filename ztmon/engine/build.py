"""Settings -> sources, sinks and an Engine; and the daemon's main coroutine."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

import structlog

from ztmon.checks.registry import CheckSpec, all_checks
from ztmon.engine.running import Clock, Engine, utcnow
from ztmon.model.policy import Policy
from ztmon.model.suppression import SuppressionRule
from ztmon.settings import Loaded, Settings
from ztmon.sinks.base import Sink
from ztmon.sources.base import Source

log = structlog.get_logger("ztmon.engine")

SOURCE_NAMES = ("host", "docker")


class UsageError(ValueError):
    """A command-line or configuration choice that cannot work (exit status 2)."""


def enabled_checks(settings: Settings) -> list[CheckSpec]:
    registry = all_checks()
    cfg = settings.checks
    unknown = sorted({*(cfg.enabled or ()), *cfg.disabled, *cfg.severity} - set(registry))
    if unknown:
        raise UsageError(f"checks: unknown check id(s): {', '.join(unknown)} (known: {', '.join(registry)})")
    return [
        spec
        for cid, spec in registry.items()
        if (cid in cfg.enabled if cfg.enabled is not None else spec.enabled_by_default) and cid not in cfg.disabled
    ]


def policy_of(settings: Settings) -> Policy:
    p = settings.checks.policy
    return Policy(
        dangerous_capabilities=p.dangerous_capabilities,
        sensitive_host_paths=p.sensitive_host_paths,
        secret_name_words=p.secret_name_words,
        secret_name_safe_suffixes=p.secret_name_safe_suffixes,
        trusted_mutable_registries=p.trusted_mutable_registries,
    )


def rules_of(loaded: Loaded) -> tuple[SuppressionRule, ...]:
    rules = []
    for i, s in enumerate(loaded.settings.suppressions):
        line = loaded.lines.get(("suppressions", str(i)))
        origin = f"{loaded.path}:{line}" if loaded.path and line else f"suppressions[{i}]"
        rules.append(
            SuppressionRule(
                check=s.check,
                reason=s.reason,
                expires=s.expires,
                namespace=s.selector.namespace,
                name=s.selector.name,
                image=s.selector.image,
                labels=tuple(sorted(s.selector.labels.items())),
                origin=origin,
            )
        )
    return tuple(rules)


def make_sources(settings: Settings, only: Sequence[str] | None = None) -> list[Source]:
    if only:
        unknown = sorted(set(only) - set(SOURCE_NAMES))
        if unknown:
            raise UsageError(f"--source: unknown source(s) {', '.join(unknown)} (known: {', '.join(SOURCE_NAMES)})")
    want = set(only) if only else set(SOURCE_NAMES)
    out: list[Source] = []
    cfg = settings.sources
    if "host" in want and cfg.host.enabled:
        from ztmon.sources.host import HostSource  # noqa: PLC0415 - import what the mode uses

        out.append(
            HostSource(node_name=settings.resolved_node_name(), root=cfg.host.root, proc_root=cfg.host.proc_root)
        )
    if "docker" in want and cfg.docker.enabled:
        from ztmon.sources.docker import DockerSource  # noqa: PLC0415

        out.append(
            DockerSource(
                host=cfg.docker.host,
                timeout=cfg.docker.timeout_seconds,
                include_stopped=cfg.docker.include_stopped,
                concurrency=cfg.docker.inspect_concurrency,
            )
        )
    return out


def make_engine(
    loaded: Loaded,
    *,
    sinks: Sequence[Sink],
    only_sources: Sequence[str] | None = None,
    clock: Clock = utcnow,
) -> Engine:
    settings = loaded.settings
    checks = enabled_checks(settings)
    return Engine(
        node_name=settings.resolved_node_name(),
        sources=make_sources(settings, only_sources),
        sinks=sinks,
        checks=checks,
        known_checks=frozenset(all_checks()),
        policy=policy_of(settings),
        rules=rules_of(loaded),
        severity_overrides=dict(settings.checks.severity),
        source_timeout=max(settings.sources.docker.timeout_seconds * 3, 5.0),
        debounce=settings.engine.debounce_seconds,
        clock=clock,
    )


async def run_daemon(loaded: Loaded, *, stop: asyncio.Event | None = None) -> None:
    """`ztmon run`: serve until SIGTERM/SIGINT (or `stop` is set)."""
    from ztmon.engine import http  # noqa: PLC0415
    from ztmon.sinks.log import LogSink  # noqa: PLC0415
    from ztmon.sinks.prometheus import PrometheusSink  # noqa: PLC0415

    settings = loaded.settings
    structlog.contextvars.bind_contextvars(node=settings.resolved_node_name())
    prom = PrometheusSink()
    engine = make_engine(loaded, sinks=[prom, LogSink()])
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = None
    if settings.server.enabled:
        runner = await http.serve(http.make_app(engine, prom, settings.server), settings.server)
        log.info(
            "listening",
            address=settings.server.address,
            port=http.bound_port(runner),
            tls=settings.server.tls.cert_file is not None,
        )
    try:
        start = asyncio.create_task(
            engine.start(
                resync_interval=settings.engine.resync_interval_seconds,
                jitter=settings.engine.resync_jitter_seconds,
            ),
            name="engine-start",
        )
        await asyncio.wait({start, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if start.done() and start.exception() is not None:
            raise start.exception()  # type: ignore[misc]
        await stop.wait()
        start.cancel()
    finally:
        log.info("stopping")
        await engine.stop(settings.engine.shutdown_timeout_seconds)
        if runner is not None:
            await runner.cleanup()
        log.info("stopped")
