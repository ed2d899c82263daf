"""MQTT sink: finding events (opened, resolved, changed) through a durable outbox, a retained summary, and
a birth / last-will status topic. Topics and payloads: docs/events.md.

Scanning never waits on the broker: `publish()` diffs the report against the open findings it tracked,
stores the events and the new state in the outbox (in a writer thread, one transaction) and returns. A
background task (started by the first `publish()`) connects with exponential backoff and jitter, sends
the outbox oldest first with QoS 1 and deletes each event once the broker acked it. Delivery is
at-least-once: an ack lost with the connection means the event is sent again, with the same event id,
and consumers de-duplicate by that id.

aiomqtt facts this relies on (docs/events.md, "Client lifecycle"): a *new* client object per connection
attempt, because a reused one re-sends what paho queued while disconnected (a duplicate our outbox would
send too); publishes are raced against a disconnect watchdog, because `publish()` does not notice that
the broker dropped the connection (e.g. for an oversized packet) and would wait for its timeout.

Metrics: `MqttCollector` renders this sink's counters; the engine registers it with the Prometheus sink
as a live collector (rendered at every scrape, no I/O in `collect()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import aiomqtt
import orjson
import paho.mqtt.client as paho
import structlog
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import SecretStr

from ztmon.model.findings import Report
from ztmon.sinks import events, outbox
from ztmon.sinks.base import Sink

log = structlog.get_logger("ztmon.sinks.mqtt")
T = TypeVar("T")

QOS = 1  # at-least-once: the outbox keeps an event until its PUBACK; QoS 2 would not stop our own resends
BATCH = 1000  # events taken from the outbox per round; paho keeps max_inflight of them on the wire
STABLE_CONNECTION_SECONDS = 10.0  # a connection that lived this long resets the backoff (see _run)
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ERROR_REASONS = ("auth", "tls", "network", "timeout", "refused", "lost", "other")
_AUTH_CODES = frozenset({4, 5, 0x86, 0x87})  # 3.1.1: bad user/password, not authorised; 5: same, as reason codes


@dataclass(frozen=True, slots=True)
class TLSOptions:
    enabled: bool = False
    ca_file: Path | None = None  # None: the system's trust store
    cert_file: Path | None = None  # client certificate (mTLS), with key_file
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class MqttOptions:
    """Everything the sink needs; built from settings by the engine (sinks do not read settings)."""

    host: str
    node: str
    port: int = 1883
    cluster: str = "default"
    client_id: str = ""  # "" = ztmon-<node>
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    username: str = ""
    password: SecretStr | None = None
    password_file: Path | None = None  # read at every connection attempt: a rotated secret is picked up
    tls: TLSOptions = TLSOptions()
    topic_prefix: str = "ztmon"
    keepalive_seconds: int = 30
    outbox_path: Path | None = None  # None: memory only (degraded)
    outbox_max_events: int = 100_000
    memory_max_events: int = 10_000
    outbox_retry_seconds: float = 30.0
    max_payload_bytes: int = 65_536
    max_inflight: int = 100
    publish_timeout_seconds: float = 10.0
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    rejected_after_attempts: int = 3
    close_timeout_seconds: float = 0.8
    audit_log: str = ""  # "" off, "-" stdout, else a file path (appended)

    @property
    def identifier(self) -> str:
        return self.client_id or f"ztmon-{self.node}"


class Backoff:
    """Exponential backoff with "equal jitter": a delay in [d/2, d], d = min(cap, base * 2**attempt).

    The floor of d/2 keeps a fleet that lost its broker from reconnecting all at ~0 s; the random half
    spreads the fleet's attempts over time.
    """

    def __init__(self, *, base: float, cap: float, rand: Callable[[], float] = random.random) -> None:
        self.base = base
        self.cap = cap
        self.rand = rand
        self.attempt = 0

    def next(self) -> float:
        d = min(self.cap, self.base * float(2 ** min(self.attempt, 32)))
        self.attempt += 1
        return d / 2 + self.rand() * d / 2

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class Stats:
    """Counters read by MqttCollector on the event loop; written only on the event loop."""

    connected: bool = False
    published: dict[str, int] = field(default_factory=lambda: dict.fromkeys(map(str, events.EventType), 0))
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_REASONS, 0))
    buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    duration_count: int = 0
    duration_sum: float = 0.0
    last_error: str = ""

    def observe(self, seconds: float) -> None:
        self.duration_count += 1
        self.duration_sum += seconds
        for i, le in enumerate(DURATION_BUCKETS):
            if seconds <= le:
                self.buckets[i] += 1


class MqttCollector(Collector):
    """The sink's metrics (docs/metrics.md rows in docs/pending/mqtt-metrics.md). No I/O in collect()."""

    def __init__(self, sink: MqttSink) -> None:
        self.sink = sink

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        s, box = self.sink.stats, self.sink.outbox
        g = GaugeMetricFamily("ztmon_mqtt_connected", "1 while connected to the MQTT broker")
        g.add_metric([], 1 if s.connected else 0)
        yield g
        c = CounterMetricFamily(
            "ztmon_mqtt_events_published", "Finding events acknowledged by the broker", labels=["type"]
        )
        for kind, n in sorted(s.published.items()):
            c.add_metric([kind], n)
        yield c
        g = GaugeMetricFamily("ztmon_mqtt_outbox_events", "Events stored and not yet acknowledged by the broker")
        g.add_metric([], box.size)
        yield g
        c = CounterMetricFamily(
            "ztmon_mqtt_outbox_dropped", "Events dropped without delivery, by reason", labels=["reason"]
        )
        for reason, n in sorted(box.dropped.items()):
            c.add_metric([reason], n)
        yield c
        g = GaugeMetricFamily(
            "ztmon_mqtt_outbox_degraded", "1 while the outbox's disk fails and events are kept in memory only"
        )
        g.add_metric([], 1 if box.degraded else 0)
        yield g
        c = CounterMetricFamily(
            "ztmon_mqtt_connection_errors", "Failed connection attempts and lost connections", labels=["reason"]
        )
        for reason, n in sorted(s.errors.items()):
            c.add_metric([reason], n)
        yield c
        h = HistogramMetricFamily(
            "ztmon_mqtt_publish_duration_seconds", "Time from sending an event to the broker's PUBACK"
        )
        h.add_metric(
            [],
            [
                *((str(le), float(n)) for le, n in zip(DURATION_BUCKETS, s.buckets, strict=True)),
                ("+Inf", float(s.duration_count)),
            ],
            s.duration_sum,
        )
        yield h


def classify(error: BaseException, *, connected: bool) -> str:
    """A bounded reason label for a connection failure (ERROR_REASONS)."""
    if connected:
        return "lost"
    if isinstance(error, CredentialsError):
        return "auth"
    if isinstance(error, MqttConnectError):
        rc = error.rc
        code = rc.value if isinstance(rc, ReasonCode) else rc
        return "auth" if code in _AUTH_CODES else "refused"
    text = str(error)
    if isinstance(error, ssl.SSLError) or "SSL" in text or "certificate" in text.lower():
        return "tls"
    if "timed out" in text.lower():
        return "timeout"
    if isinstance(error, (aiomqtt.MqttError, OSError)):
        return "network"
    return "other"  # e.g. paho refusing an option: a bug or a configuration paho does not support


class CredentialsError(ValueError):
    """The password file cannot be read: counted and logged as an authentication failure."""


class _Lost(aiomqtt.MqttError):
    """The connection broke (or stopped acking) while events were in flight."""


class MqttSink(Sink):
    name = "mqtt"

    def __init__(
        self,
        options: MqttOptions,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.options = options
        self.topics = events.Topics(prefix=options.topic_prefix, cluster=options.cluster, node=options.node)
        self.outbox = outbox.Outbox(
            options.outbox_path,
            max_events=options.outbox_max_events,
            memory_max_events=options.memory_max_events,
            retry_seconds=options.outbox_retry_seconds,
        )
        self.stats = Stats()
        self.collector = MqttCollector(self)
        self.clock = clock
        self.new_id = new_id or events.EventIds()
        self.backoff = Backoff(base=options.reconnect_min_seconds, cap=options.reconnect_max_seconds, rand=rand)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ztmon-mqtt-outbox")
        self._state: dict[str, events.Tracked] | None = None
        self._start_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._summary: bytes | None = None
        self._summary_dirty = False
        self._audit: IO[bytes] | None = None
        self._audit_error = ""
        self._head_failures: dict[str, int] = {}
        self._probe = False  # after a connection broke mid-batch, send the head event alone first
        self._session_acks: dict[int, asyncio.Future[None]] = {}  # this connection's PUBACK futures by mid
        self._paho_logger = logging.getLogger("ztmon.mqtt.paho")

    # -- the Sink interface ------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the outbox (reading the persisted state) and start the publisher. Idempotent."""
        async with self._start_lock:
            if self._state is not None:
                return
            raw = await self._io(self._open)
            state: dict[str, events.Tracked] = {}
            for fid, record in raw.items():
                try:
                    state[fid] = events.Tracked.from_json(record)
                except (ValueError, KeyError, TypeError):
                    log.warning("outbox_state_unreadable", finding_id=fid)
            self._state = state
            self._task = asyncio.create_task(self._run(), name="mqtt-publisher")

    async def publish(self, report: Report) -> None:
        await self.start()
        assert self._state is not None  # noqa: S101 - set by start()
        d = events.diff(self._state, report, cluster=self.options.cluster, now=self.clock(), new_id=self.new_id)
        self._state = d.state  # before the write: a cancelled publish() must not re-emit these events
        rows, oversized = self._rows(d.events)
        upserts = {fid: t.to_json() for fid, t in d.upserts.items()}
        summary = orjson.dumps(events.summary(report, cluster=self.options.cluster))
        await self._io(self._commit, rows, upserts, d.deletes, oversized)
        if summary != self._summary:
            self._summary = summary
            self._summary_dirty = True
        self._wake.set()

    async def close(self) -> None:
        """Say `offline`, disconnect cleanly, keep undelivered events in the outbox for the next start."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=self.options.close_timeout_seconds)
            if not done:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
        with contextlib.suppress(Exception):
            await self._io(self._shutdown)
        self._executor.shutdown(wait=False)

    # -- the writer thread -------------------------------------------------------------------------
    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open(self) -> dict[str, bytes]:
        state = self.outbox.open()
        target = self.options.audit_log
        if target == "-":
            self._audit = sys.stdout.buffer
        elif target:
            try:
                path = Path(target)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._audit = path.open("ab")
            except OSError as e:
                self._audit_failed(e)
        return state

    def _commit(
        self, rows: Sequence[outbox.Row], upserts: Mapping[str, bytes], deletes: Sequence[str], oversized: int
    ) -> None:
        if oversized:
            self.outbox.dropped[outbox.DROP_OVERSIZED] += oversized
        self.outbox.commit(rows, upserts, deletes)
        if self._audit is not None and rows:
            try:
                self._audit.write(b"".join(r.payload + b"\n" for r in rows))
                self._audit.flush()
            except OSError as e:
                self._audit_failed(e)

    def _audit_failed(self, e: OSError) -> None:
        msg = f"{type(e).__name__}: {e}"
        if msg != self._audit_error:
            log.error("mqtt_audit_log_failed", path=self.options.audit_log, error=msg)
            self._audit_error = msg

    def _shutdown(self) -> None:
        self.outbox.close()
        if self._audit is not None and self._audit is not sys.stdout.buffer:
            with contextlib.suppress(OSError):
                self._audit.close()
        self._audit = None

    def _rows(self, evs: Sequence[events.Event]) -> tuple[list[outbox.Row], int]:
        rows: list[outbox.Row] = []
        oversized = 0
        now = time.time()
        limit = self.options.max_payload_bytes
        for ev in evs:
            payload = ev.to_json()
            if len(payload) > limit:
                payload = events.shrink(ev).to_json()
                if len(payload) > limit:
                    oversized += 1
                    log.error(
                        "mqtt_event_oversized",
                        event_id=ev.event_id,
                        finding_id=ev.finding_id,
                        size=len(payload),
                        max_payload_bytes=limit,
                    )
                    continue
                log.warning(
                    "mqtt_event_truncated", event_id=ev.event_id, finding_id=ev.finding_id, max_payload_bytes=limit
                )
            rows.append(outbox.Row(ev.event_id, self.topics.finding(ev.check), ev.type.value, payload, now))
        return rows, oversized

    # -- the publisher -----------------------------------------------------------------------------
    def _credentials(self) -> tuple[str | None, ssl.SSLContext | None]:
        """File reads for a connection attempt (writer thread): a rotated password or certificate is used."""
        o = self.options
        password = None
        if o.password_file is not None:
            try:
                password = o.password_file.read_text(encoding="utf-8").strip()
            except OSError as e:
                raise CredentialsError(f"cannot read mqtt.password_file: {e.strerror or e}") from None
        elif o.password is not None:
            password = o.password.get_secret_value()
        return password, self._tls_context()

    def _client(self, password: str | None, tls_context: ssl.SSLContext | None) -> aiomqtt.Client:
        """A new client object per attempt, made on the loop (aiomqtt needs the running loop)."""
        o = self.options
        v5 = o.protocol == "5"
        client = aiomqtt.Client(
            o.host,
            o.port,
            username=o.username or None,
            password=password,
            identifier=o.identifier,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            clean_session=None if v5 else True,  # our outbox re-sends; a broker session would only add copies
            clean_start=True if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,  # 3.1.1 refuses any other value
            will=aiomqtt.Will(self.topics.status, events.STATUS_OFFLINE, qos=QOS, retain=True),
            keepalive=o.keepalive_seconds,
            timeout=o.publish_timeout_seconds,
            max_inflight_messages=o.max_inflight,
            tls_context=tls_context,
            logger=self._paho_logger,
        )
        client.pending_calls_threshold = o.max_inflight + 1  # our batches are bounded: no warning per batch
        return client

    def _tls_context(self) -> ssl.SSLContext | None:
        t = self.options.tls
        if not t.enabled:
            return None
        ctx = ssl.create_default_context(cafile=str(t.ca_file) if t.ca_file else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if t.cert_file is not None:
            ctx.load_cert_chain(str(t.cert_file), str(t.key_file) if t.key_file else None)
        return ctx

    async def _run(self) -> None:
        """Connect, publish, reconnect: forever, until close(). Never raises (the engine has no guard here)."""
        structlog.contextvars.unbind_contextvars("scan_id")  # this task's copy: it outlives the first scan
        streak = ""
        while not self._stop.is_set():
            connected_at: float | None = None
            try:
                password, tls_context = await self._io(self._credentials)
                client = self._client(password, tls_context)
                async with client:
                    connected_at = time.monotonic()
                    self.stats.connected = True
                    log.info(
                        "mqtt_connected", host=self.options.host, port=self.options.port, client_id=client.identifier
                    )
                    streak = ""
                    await self._session(client)
            except (aiomqtt.MqttError, OSError, ssl.SSLError, ValueError) as e:
                reason = classify(e, connected=connected_at is not None)
                self.stats.errors[reason] += 1
                self.stats.last_error = f"{reason}: {e}"
                if self.stats.last_error != streak:  # once per kind of failure, not once per retry
                    self._log_failure(reason, e)
                    streak = self.stats.last_error
            except asyncio.CancelledError:
                self.stats.connected = False
                raise
            except Exception as e:  # a bug must not end delivery for good
                log.error("mqtt_publisher_failed", error=f"{type(e).__name__}: {e}", exc_info=True)
            finally:
                self.stats.connected = False
            if self._stop.is_set():
                return
            if connected_at is not None and time.monotonic() - connected_at >= STABLE_CONNECTION_SECONDS:
                self.backoff.reset()
            delay = self.backoff.next()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)

    def _log_failure(self, reason: str, e: BaseException) -> None:
        o = self.options
        where = {"host": o.host, "port": o.port, "client_id": o.identifier, "error": str(e) or type(e).__name__}
        if reason == "auth":
            log.error(
                "mqtt_auth_failed",
                **where,
                username=o.username or None,
                hint="the broker refused the credentials: check mqtt.username and mqtt.password_file; retrying",
            )
        elif reason == "tls":
            log.error("mqtt_tls_failed", **where, hint="check mqtt.tls (CA, client certificate and key); retrying")
        elif reason == "lost":
            log.warning(
                "mqtt_connection_lost",
                **where,
                hint="reconnecting; if this repeats right after every connect, another client may use our client id",
            )
        else:
            log.warning("mqtt_connect_failed", reason=reason, **where)

    async def _session(self, client: aiomqtt.Client) -> None:
        self._session_acks = self._hook_acks(client)
        watchdog = asyncio.create_task(self._watch(client), name="mqtt-watchdog")
        try:
            await self._race(client.publish(self.topics.status, events.STATUS_ONLINE, qos=QOS, retain=True), watchdog)
            while True:
                self._wake.clear()
                await self._drain(client, watchdog)
                if self._summary_dirty and self._summary is not None:
                    summary = self._summary
                    await self._race(client.publish(self.topics.summary, summary, qos=QOS, retain=True), watchdog)
                    if summary is self._summary:
                        self._summary_dirty = False
                if self._stop.is_set():
                    await self._race(
                        client.publish(self.topics.status, events.STATUS_OFFLINE, qos=QOS, retain=True), watchdog
                    )
                    return
                await self._race(self._wake.wait(), watchdog)
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await watchdog

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        """Raises MqttError when the connection drops (the messages iterator is the public way to see it)."""
        async for _ in client.messages:
            pass

    @staticmethod
    async def _race(aw: Awaitable[T], watchdog: asyncio.Task[None]) -> T:
        task = asyncio.ensure_future(aw)
        try:
            done, _ = await asyncio.wait({task, watchdog}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        watchdog.result()  # raises the disconnect
        raise _Lost("connection watchdog ended")

    async def _drain(self, client: aiomqtt.Client, watchdog: asyncio.Task[None]) -> None:
        while True:
            rows = await self._io(self.outbox.take, 1 if self._probe else BATCH)
            if not rows:
                return
            await self._send(client, rows, watchdog)
            if self._stop.is_set():
                return

    async def _send(self, client: aiomqtt.Client, rows: Sequence[outbox.Row], watchdog: asyncio.Task[None]) -> None:
        """Publish rows in order; ack the prefix the broker acknowledged; raise if the rest failed.

        Through paho's publish on aiomqtt's connection, PUBACKs matched by message id (see _acks):
        aiomqtt's own publish() costs an Event, a wait_for task and an O(pending) scan per message and
        tops out near 1,500 messages/s here; this path reaches the raw paho rate (bench/mqtt.py).
        """
        acks = self._session_acks
        loop = asyncio.get_running_loop()
        pending: list[asyncio.Future[None]] = []
        failure: BaseException | None = None
        for row in rows:  # paho sends in call order and keeps max_inflight on the wire, the rest queued
            info = client._client.publish(row.topic, row.payload, qos=QOS)  # noqa: SLF001 - see docstring
            if info.rc != paho.MQTT_ERR_SUCCESS:
                failure = aiomqtt.MqttCodeError(info.rc, "Could not publish message")
                break
            fut: asyncio.Future[None] = loop.create_future()
            fut.add_done_callback(functools.partial(self._observe, time.perf_counter()))
            if info.is_published():
                fut.set_result(None)
            else:
                acks[info.mid] = fut
            pending.append(fut)
        if pending:
            try:
                await self._race(asyncio.wait(pending, timeout=self.options.publish_timeout_seconds), watchdog)
            except (aiomqtt.MqttError, asyncio.CancelledError) as e:
                failure = e
        acked: list[outbox.Row] = []
        for row, fut in zip(rows, pending, strict=False):
            if not fut.done():
                break
            acked.append(row)
        for fut in pending:
            fut.cancel()  # no-op when done; a late PUBACK for a cancelled one is ignored
        for mid in [m for m, f in acks.items() if f.done()]:
            del acks[mid]
        for r in acked:
            self.stats.published[r.type] = self.stats.published.get(r.type, 0) + 1
        if acked:
            await self._io(self.outbox.ack, [r.event_id for r in acked])
        if len(acked) == len(rows):
            self._probe = False
            self._head_failures.clear()
            return
        if isinstance(failure, asyncio.CancelledError):
            raise failure
        head = rows[len(acked)]
        await self._head_failed(head)
        if failure is not None:
            raise failure
        raise _Lost("the broker did not acknowledge in time")

    async def _head_failed(self, head: outbox.Row) -> None:
        """An event the broker keeps rejecting (it drops the connection on it) must not block the rest."""
        self._probe = True
        n = self._head_failures.get(head.event_id, 0) + 1
        self._head_failures = {head.event_id: n}
        if n >= self.options.rejected_after_attempts:
            log.error(
                "mqtt_event_rejected",
                event_id=head.event_id,
                topic=head.topic,
                size=len(head.payload),
                attempts=n,
                hint="the broker dropped the connection on this event every time (a packet size limit?); dropped",
            )
            await self._io(self.outbox.drop, head.event_id, outbox.DROP_REJECTED)
            self._head_failures.clear()
            self._probe = False

    def _observe(self, start: float, fut: asyncio.Future[None]) -> None:
        if not fut.cancelled():
            self.stats.observe(time.perf_counter() - start)

    @staticmethod
    def _hook_acks(client: aiomqtt.Client) -> dict[int, asyncio.Future[None]]:
        """Futures by message id, resolved from paho's on_publish (run on the loop by aiomqtt's reader)."""
        acks: dict[int, asyncio.Future[None]] = {}
        inner = client._client  # noqa: SLF001
        chained: Any = inner.on_publish

        def on_publish(c: paho.Client, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
            fut = acks.pop(mid, None)
            if fut is None:  # one of aiomqtt's own publishes (status, summary)
                chained(c, userdata, mid, reason_code, properties)
            elif not fut.done():
                fut.set_result(None)

        inner.on_publish = on_publish
        return acks
