"""Settings -> sources, sinks and an Engine; and the daemon's main coroutine."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from ztmon.checks.registry import CheckSpec, all_checks
from ztmon.engine import kubemode
from ztmon.engine.running import Clock, Engine, utcnow
from ztmon.model.policy import NetworkPolicy, Policy, PortAllowRule
from ztmon.model.suppression import SuppressionRule
from ztmon.settings import Loaded, Settings
from ztmon.sinks.base import Sink
from ztmon.sources.base import Source

if TYPE_CHECKING:
    from ztmon.sinks.mqtt import MqttSink

log = structlog.get_logger("ztmon.engine")

SOURCE_NAMES = ("host", "docker", "procfs", "capture", "fschanges", "kube")


class UsageError(ValueError):
    """A command-line or configuration choice that cannot work (exit status 2)."""


def enabled_checks(settings: Settings) -> list[CheckSpec]:
    registry = all_checks()
    cfg = settings.checks
    named = {*(cfg.enabled or ()), *cfg.disabled, *cfg.severity, *(s.check for s in settings.suppressions)}
    unknown = sorted(named - set(registry) - {"*"})
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
        network=NetworkPolicy(
            allowed_ports=tuple(
                PortAllowRule(
                    ports=r.ports,
                    namespace=r.namespace,
                    name=r.name,
                    image=r.image,
                    labels=tuple(sorted(r.labels.items())),
                    node=r.node,
                )
                for r in p.network.allowed_ports
            ),
            allow_declared_ports=p.network.allow_declared_ports,
            open_port_include_loopback=p.network.open_port_include_loopback,
            cert_warning_days=p.network.cert_warning_days,
            cert_critical_days=p.network.cert_critical_days,
        ),
        kube=kubemode.kube_policy(settings),
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


def make_sources(settings: Settings, only: Sequence[str] | None = None, *, clock: Clock = utcnow) -> list[Source]:
    if only:
        unknown = sorted(set(only) - set(SOURCE_NAMES))
        if unknown:
            raise UsageError(f"--source: unknown source(s) {', '.join(unknown)} (known: {', '.join(SOURCE_NAMES)})")
    want = set(only) if only else set(SOURCE_NAMES)
    if settings.mode == "cluster":  # the cluster scanner reads the API server only
        want &= {"kube"}
    out: list[Source] = []
    cfg = settings.sources
    if "kube" in want and settings.mode in {"node", "cluster"}:
        out.append(kubemode.make_kube_source(settings))
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
    explicit = set(only or ())  # opt-in sources run when named on the command line
    if "procfs" in want and (cfg.procfs.enabled or "procfs" in explicit):
        from ztmon.sources.procfs import ProcfsSource  # noqa: PLC0415

        pc = cfg.procfs
        out.append(
            ProcfsSource(
                proc_root=pc.proc_root,
                listing=pc.listing,
                map_processes=pc.map_processes,
                postures=pc.postures,
                probe=pc.probe.enabled,
                probe_timeout=pc.probe.timeout_seconds,
                probe_banner_wait=pc.probe.banner_wait_seconds,
                probe_concurrency=pc.probe.concurrency,
                probe_rate=pc.probe.rate_per_second,
                probe_cache_ttl=pc.probe.cache_ttl_seconds,
            )
        )
    if "capture" in want and (settings.capture.enabled or "capture" in explicit):
        from ztmon.sources.capture import CaptureSource  # noqa: PLC0415

        cc = settings.capture
        out.append(
            CaptureSource(
                netns=str(cc.netns) if cc.netns is not None else "",
                interface=cc.interface,
                signatures=cc.signatures,
                max_packets_per_second=cc.max_packets_per_second,
                snaplen=cc.snaplen,
            )
        )
    from ztmon.engine import baselines  # noqa: PLC0415 - baselines: docs/baseline.md

    try:  # fschanges, then the baseline source last: it observes the others' parts
        out += baselines.make_sources(settings, want=want, explicit=explicit, others=tuple(out), clock=clock)
    except baselines.BaselineError as e:
        raise UsageError("invalid baseline:\n  " + "\n  ".join(e.errors)) from None
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
        sources=make_sources(settings, only_sources, clock=clock),
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


def make_mqtt_sink(settings: Settings) -> MqttSink:
    """Settings -> the MQTT sink's options (sinks do not read settings)."""
    from ztmon.sinks import mqtt  # noqa: PLC0415 - aiomqtt is imported only when MQTT is on

    c = settings.mqtt
    return mqtt.MqttSink(
        mqtt.MqttOptions(
            host=c.host,
            port=c.port,
            node=settings.resolved_node_name(),
            cluster=c.cluster,
            client_id=c.client_id,
            protocol=c.protocol,
            username=c.username,
            password=c.password,
            password_file=c.password_file,
            tls=mqtt.TLSOptions(
                enabled=c.tls.enabled, ca_file=c.tls.ca_file, cert_file=c.tls.cert_file, key_file=c.tls.key_file
            ),
            topic_prefix=c.topic_prefix,
            keepalive_seconds=c.keepalive_seconds,
            outbox_path=c.outbox_path,
            outbox_max_events=c.outbox_max_events,
            memory_max_events=c.memory_max_events,
            outbox_retry_seconds=c.outbox_retry_seconds,
            max_payload_bytes=c.max_payload_bytes,
            max_inflight=c.max_inflight,
            publish_timeout_seconds=c.publish_timeout_seconds,
            reconnect_min_seconds=c.reconnect_min_seconds,
            reconnect_max_seconds=c.reconnect_max_seconds,
            audit_log=c.audit_log,
        )
    )


async def run_daemon(loaded: Loaded, *, stop: asyncio.Event | None = None) -> None:
    """`ztmon run`: serve until SIGTERM/SIGINT (or `stop` is set)."""
    from ztmon.engine import http  # noqa: PLC0415
    from ztmon.sinks.log import LogSink  # noqa: PLC0415
    from ztmon.sinks.prometheus import PrometheusSink  # noqa: PLC0415

    settings = loaded.settings
    structlog.contextvars.bind_contextvars(node=settings.resolved_node_name())
    prom = PrometheusSink()
    sinks: list[Sink] = [LogSink()]
    if settings.mqtt.enabled:
        mqtt_sink = make_mqtt_sink(settings)
        prom.add_live_collector(mqtt_sink.collector)  # connection state moves between reports
        sinks.append(mqtt_sink)
    sinks.append(prom)  # last: its ztmon_sink_up then shows this cycle's outcome of the other sinks
    engine = make_engine(loaded, sinks=sinks)
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
