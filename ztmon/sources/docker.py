"""Docker (or podman) containers: full list + inspect at every resync, events for changes in between.

Blocking docker SDK calls run in `asyncio.to_thread`; the events stream runs on a thread of its own
and hands events to the loop. A change reaches the Snapshot within one inspect (milliseconds) of the
event. When the stream ends (dockerd restarted) the source marks itself down, resubscribes with
`since=` after a backoff, and relists.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from ztmon.model.inventory import Container, Mount, Node, PublishedPort, SourcePart
from ztmon.sources import secretscan
from ztmon.sources.base import Notify, Source

log = structlog.get_logger("ztmon.sources.docker")

# Events that can change what we report about a container.
WATCHED_ACTIONS = frozenset(
    {"create", "start", "restart", "die", "stop", "kill", "destroy", "update", "rename", "pause", "unpause"}
)
_MAX_BACKOFF = 30.0


class InspectError(ValueError):
    """An inspect reply we cannot read; the message names the field."""


def _dict(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    v = data.get(key)
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise InspectError(f"{where}.{key}: expected an object, got {type(v).__name__}")
    return v


def _list(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    v = data.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise InspectError(f"{where}.{key}: expected a list, got {type(v).__name__}")
    return v


def _str(data: Mapping[str, Any], key: str, where: str) -> str:
    v = data.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise InspectError(f"{where}.{key}: expected a string, got {type(v).__name__}")
    return v


def _time(text: str) -> datetime | None:
    if not text or text.startswith("0001-01-01"):
        return None
    try:  # Docker gives nanoseconds; fromisoformat takes at most microseconds
        head, _, frac = text.rstrip("Z").partition(".")
        return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")
    except ValueError:
        return None


def _ports(raw: Mapping[str, Any]) -> Iterator[PublishedPort]:
    for spec, bindings in raw.items():
        port_s, _, proto = str(spec).partition("/")
        if not port_s.isdigit():
            raise InspectError(f"NetworkSettings.Ports: bad port {spec!r}")
        if bindings is not None and not isinstance(bindings, list):
            raise InspectError(f"NetworkSettings.Ports[{spec!r}]: expected a list of bindings")
        for b in bindings or ():
            if not isinstance(b, Mapping):
                raise InspectError(f"NetworkSettings.Ports[{spec!r}]: expected binding objects")
            host_port = str(b.get("HostPort") or "0")
            yield PublishedPort(
                container_port=int(port_s),
                protocol=proto or "tcp",
                host_ip=str(b.get("HostIp") or ""),
                host_port=int(host_port) if host_port.isdigit() else 0,
            )


def parse_inspect(data: Mapping[str, Any], *, runtime: str = "docker") -> Container:
    """Turn `docker inspect` JSON into a Container. Raises InspectError naming the bad field."""
    if not isinstance(data, Mapping):
        raise InspectError(f"inspect: expected an object, got {type(data).__name__}")
    cid = _str(data, "Id", "")
    if not cid:
        raise InspectError("Id: missing")
    config = _dict(data, "Config", "")
    host = _dict(data, "HostConfig", "")
    net = _dict(data, "NetworkSettings", "")
    state = _dict(data, "State", "")
    raw_labels = _dict(config, "Labels", "Config")
    labels = tuple(sorted((str(k), str(v)) for k, v in raw_labels.items()))
    security_opt = [str(o) for o in _list(host, "SecurityOpt", "HostConfig")]
    nnp = any(o in {"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"} for o in security_opt)
    mounts = []
    for i, m in enumerate(_list(data, "Mounts", "")):
        if not isinstance(m, Mapping):
            raise InspectError(f"Mounts[{i}]: expected an object")
        mounts.append(
            Mount(
                source=str(m.get("Source") or m.get("Name") or ""),
                destination=str(m.get("Destination") or ""),
                type=str(m.get("Type") or "volume"),
                read_only=not bool(m.get("RW", True)),
            )
        )
    env = config.get("Env")
    if env is not None and not isinstance(env, list):
        raise InspectError("Config.Env: expected a list")
    k8s_ns = raw_labels.get("io.kubernetes.pod.namespace", "")
    k8s_pod = raw_labels.get("io.kubernetes.pod.name", "")
    name = _str(data, "Name", "").lstrip("/")
    return Container(
        runtime=runtime,
        id=cid,
        name=str(raw_labels.get("io.kubernetes.container.name") or name),
        image=_str(config, "Image", "Config") or _str(data, "Image", ""),
        image_digest=_str(data, "Image", ""),
        labels=labels,
        namespace=str(k8s_ns),
        pod=str(k8s_pod),
        read_only_rootfs=bool(host.get("ReadonlyRootfs")),
        privileged=bool(host.get("Privileged")),
        user=_str(config, "User", "Config"),
        cap_add=tuple(str(c).upper().removeprefix("CAP_") for c in _list(host, "CapAdd", "HostConfig")),
        cap_drop=tuple(str(c).upper().removeprefix("CAP_") for c in _list(host, "CapDrop", "HostConfig")),
        no_new_privileges=nnp,
        host_network=_str(host, "NetworkMode", "HostConfig") == "host",
        host_pid=_str(host, "PidMode", "HostConfig") == "host",
        host_ipc=_str(host, "IpcMode", "HostConfig") == "host",
        mounts=tuple(mounts),
        ports=tuple(_ports(_dict(net, "Ports", "NetworkSettings"))),
        exposed_ports=tuple(sorted(str(p) for p in _dict(config, "ExposedPorts", "Config"))),
        env=secretscan.parse_env_list(env),
        started_at=_time(_str(state, "StartedAt", "State")),
    )


def is_running(data: Mapping[str, Any]) -> bool:
    state = data.get("State")
    return isinstance(state, Mapping) and bool(state.get("Running"))


class DockerSource(Source):
    name = "docker"

    def __init__(
        self,
        *,
        host: str = "",
        timeout: float = 10.0,
        include_stopped: bool = False,
        concurrency: int = 8,
        runtime: str = "docker",
    ) -> None:
        super().__init__()
        self._host = host
        self._timeout = timeout
        self._include_stopped = include_stopped
        self._concurrency = concurrency
        self._runtime = runtime
        self._client: Any = None
        self._containers: dict[str, Container] = {}
        self._part = SourcePart(node=Node(name=""))
        self._version = ""
        self._last_event_time: int | None = None
        self._refreshed_at: float | None = None
        self._backoff = 0.5
        self._dirty: dict[str, Container | None] | None = None  # events seen during a refresh
        self._bad: set[str] = set()  # objects already logged as unreadable (log once)
        self._stream: Any = None
        self._lock = threading.Lock()  # one client, even when threads race to create it

    # -- client -----------------------------------------------------------------------------------
    def _connect(self) -> Any:
        with self._lock:
            return self._connect_locked()

    def _connect_locked(self) -> Any:
        if self._client is None:
            import docker  # noqa: PLC0415 - imported when the docker source is used

            if self._host:
                client = docker.DockerClient(base_url=self._host, timeout=self._timeout)
            else:
                client = docker.from_env(timeout=self._timeout)  # honours DOCKER_HOST, DOCKER_TLS_*
            try:
                self._version = str(client.version().get("Version", ""))
            except Exception:
                client.close()
                raise
            self._client = client
        return self._client

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    # -- state ------------------------------------------------------------------------------------
    def part(self) -> SourcePart:
        return self._part

    def _publish(self) -> None:
        version = f"{self._runtime}://{self._version}" if self._version else ""
        self._part = SourcePart(
            containers=tuple(self._containers[k] for k in sorted(self._containers)),
            node=Node(name="", runtime_version=version),
        )

    def _inspect(self, cid: str) -> Container | None:
        """Inspect one container; None when it is gone or not running. Raises on API failures."""
        import docker.errors  # noqa: PLC0415

        client = self._connect()
        try:
            data = client.api.inspect_container(cid)
        except docker.errors.NotFound:
            return None  # vanished between list/event and inspect
        if not self._include_stopped and not is_running(data):
            return None
        try:
            container = parse_inspect(data, runtime=self._runtime)
        except InspectError as e:
            self.count_odd("inspect_unreadable")
            if cid not in self._bad:
                self._bad.add(cid)
                log.warning("container_unreadable", container_id=cid[:12], error=str(e))
            return self._containers.get(cid)  # keep the last good view of it
        self._bad.discard(cid)
        return container

    async def refresh(self) -> None:
        self._refreshed_at = datetime.now(UTC).timestamp()
        self._dirty = {}
        try:
            client = await asyncio.to_thread(self._connect)
            listed = await asyncio.to_thread(client.api.containers, all=self._include_stopped, quiet=True)
            ids = [str(item["Id"]) for item in listed if isinstance(item, Mapping) and item.get("Id")]
            sem = asyncio.Semaphore(self._concurrency)

            async def one(cid: str) -> tuple[str, Container | None]:
                async with sem:
                    return cid, await asyncio.to_thread(self._inspect, cid)

            results = await asyncio.gather(*(one(i) for i in ids))
        except Exception:
            self._drop_client()
            raise
        finally:
            dirty, self._dirty = self._dirty, None
        fresh = {cid: c for cid, c in results if c is not None}
        for cid, c in (dirty or {}).items():  # an event newer than our list wins
            if c is None:
                fresh.pop(cid, None)
            else:
                fresh[cid] = c
        self._containers = fresh
        self._publish()
        self.mark_up()

    # -- events -----------------------------------------------------------------------------------
    def _pump(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], since: int) -> None:
        """Thread body: read the blocking events stream and hand each event to the loop."""
        try:
            client = self._connect()
            stream = client.events(since=since, decode=True, filters={"type": "container"})
            self._stream = stream
            loop.call_soon_threadsafe(queue.put_nowait, {"__subscribed__": True})
            for event in stream:
                loop.call_soon_threadsafe(queue.put_nowait, event)
            loop.call_soon_threadsafe(queue.put_nowait, ConnectionError("events stream ended"))
        except Exception as e:
            with contextlib.suppress(RuntimeError):  # loop closed during shutdown
                loop.call_soon_threadsafe(queue.put_nowait, e)

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    async def _apply(self, ids: set[str]) -> None:
        results = await asyncio.gather(*(asyncio.to_thread(self._inspect, cid) for cid in ids))
        for cid, c in zip(ids, results, strict=True):
            if self._dirty is not None:
                self._dirty[cid] = c
            if c is None:
                self._containers.pop(cid, None)
            else:
                self._containers[cid] = c
        self._publish()

    async def _follow(self, queue: asyncio.Queue[Any], notify: Notify, *, resync: bool) -> None:
        """Consume one subscription until it breaks (raises) or the task is cancelled."""
        while True:
            item = await queue.get()
            if isinstance(item, BaseException):
                raise item
            if "__subscribed__" in item:
                self.mark_up()
                self._backoff = 0.5
                if resync:  # reconnected: anything may have changed while we were away
                    await self.refresh()
                    log.info("docker_events_resubscribed")
                    notify()
                continue
            ids = self._ids_of(item)
            failure: BaseException | None = None
            while not queue.empty():  # coalesce a burst into one cycle
                nxt = queue.get_nowait()
                if isinstance(nxt, BaseException):
                    failure = nxt
                    break
                ids |= self._ids_of(nxt)
            if ids:
                await self._apply(ids)
                notify()
            if failure is not None:
                raise failure

    async def watch(self, notify: Notify) -> None:
        loop = asyncio.get_running_loop()
        self._backoff = 0.5
        resync = not self.up
        while True:
            queue: asyncio.Queue[Any] = asyncio.Queue()
            # Replay from just before the last refresh or event: nothing between them is lost.
            since = self._last_event_time or int(self._refreshed_at or datetime.now(UTC).timestamp()) - 1
            thread = threading.Thread(
                target=self._pump, args=(loop, queue, since), name="ztmon-docker-events", daemon=True
            )
            thread.start()
            try:
                await self._follow(queue, notify, resync=resync)
            except asyncio.CancelledError:
                self._close_stream()
                raise
            except Exception as e:
                self._close_stream()
                self._drop_client()
                resync = True
                if self.mark_down(f"{type(e).__name__}: {e}"):
                    log.warning("docker_unavailable", error=str(e), retry_in_seconds=self._backoff)
                    notify()
                await asyncio.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, _MAX_BACKOFF)

    def _ids_of(self, event: Mapping[str, Any]) -> set[str]:
        action = str(event.get("Action") or event.get("status") or "").split(":", 1)[0]
        t = event.get("time")
        if isinstance(t, int):
            self._last_event_time = t
        cid = event.get("id") or (event.get("Actor") or {}).get("ID")
        if action in WATCHED_ACTIONS and isinstance(cid, str) and cid:
            return {cid}
        return set()

    async def close(self) -> None:
        self._close_stream()
        await asyncio.to_thread(self._drop_client)
