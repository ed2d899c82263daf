"""THE Kubernetes adapter: the only module that imports `kubernetes.aio`.

What the rest of ztmon uses: `Client` (connect, list, watch stream, get/create/replace/patch), `Informer` (list +
watch with bookmarks, resourceVersion resume, 410 relist with synthetic deletes, watchdog, periodic
resync), `LeaseLock` (leader election over a coordination.k8s.io Lease) and the typed errors. Objects
travel as plain JSON dicts; sources turn them into model values (kubeobjects). Swapping the client
library (kubernetes_asyncio) touches `Client` only.

Why raw requests rather than the generated per-kind methods and `watch.Watch`: one code path serves
every kind including CRDs; metadata-only lists need their own Accept header; the watch needs a
watchdog on each line read and must surface 410 to the caller (the library's Watch retries it silently
with the same stale resourceVersion); and parsing 10,000 Secrets into strict pydantic models would cost
time and memory for fields we never read. The kubernetes client still does configuration, auth, TLS and
the HTTP session.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import orjson
import structlog

log = structlog.get_logger("ztmon.sources.kubeapi")

METADATA_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
JSON = "application/json"
_DATA_FIELDS = ("data", "stringData", "spec")  # a metadata-only reply never carries these


# -- typed errors -------------------------------------------------------------------------------------------
class KubeError(Exception):
    """An API failure; `resource` names where it happened ("secrets", "pods on node-1", ...)."""

    status = 0

    def __init__(self, message: str, *, resource: str = "", status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.resource = resource
        self.reason = reason
        if status is not None:
            self.status = status


class UnauthorizedError(KubeError):
    status = 401


class ForbiddenError(KubeError):
    """RBAC said no: the message names the verb and resource, as the API server's does."""

    status = 403


class NotFoundError(KubeError):
    status = 404


class ConflictError(KubeError):
    status = 409


class GoneError(KubeError):
    """410: the resourceVersion is too old (compacted). The caller relists."""

    status = 410


class TooManyRequestsError(KubeError):
    status = 429

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class ServerError(KubeError):
    status = 500


class ProtocolError(KubeError):
    """A reply we refuse: malformed, or a metadata-only request answered with data."""


class WatchStalledError(KubeError):
    """No line (event or bookmark) within the watchdog period: the connection is presumed dead."""


_BY_STATUS: dict[int, type[KubeError]] = {
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    429: TooManyRequestsError,
}


def error_for(status: int, body: Any, *, resource: str, retry_after: str | None = None) -> KubeError:
    """The typed error for an HTTP status and a `Status` body (or anything else the server sent)."""
    message, reason = f"HTTP {status}", ""
    if isinstance(body, Mapping):
        message = str(body.get("message") or message)
        reason = str(body.get("reason") or "")
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else KubeError)
    if cls is TooManyRequestsError:
        after = None
        with contextlib.suppress(TypeError, ValueError):
            after = float(retry_after) if retry_after else None
        return TooManyRequestsError(f"{resource}: {message}", retry_after=after, resource=resource, status=status)
    return cls(f"{resource}: {message}", resource=resource, status=status, reason=reason)


# -- resources ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version_path(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    @property
    def key(self) -> str:
        """How metrics and messages name it: `pods`, `peerauthentications.security.istio.io`."""
        return f"{self.plural}.{self.group}" if self.group and "k8s.io" not in self.group else self.plural

    def path(self, *, namespace: str | None = None, name: str | None = None) -> str:
        p = self.group_version_path
        if namespace and self.namespaced:
            p += f"/namespaces/{namespace}"
        p += f"/{self.plural}"
        if name:
            p += f"/{name}"
        return p


PODS = ResourceType("", "v1", "pods", "Pod")
NODES = ResourceType("", "v1", "nodes", "Node", namespaced=False)
SECRETS = ResourceType("", "v1", "secrets", "Secret")
SERVICE_ACCOUNTS = ResourceType("", "v1", "serviceaccounts", "ServiceAccount")
NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", namespaced=False)
SERVICES = ResourceType("", "v1", "services", "Service")
ROLES = ResourceType("rbac.authorization.k8s.io", "v1", "roles", "Role")
CLUSTER_ROLES = ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False)
ROLE_BINDINGS = ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
CLUSTER_ROLE_BINDINGS = ResourceType(
    "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
)
NETWORK_POLICIES = ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy")
INGRESSES = ResourceType("networking.k8s.io", "v1", "ingresses", "Ingress")
LEASES = ResourceType("coordination.k8s.io", "v1", "leases", "Lease")
PEER_AUTHENTICATIONS = ResourceType("security.istio.io", "v1", "peerauthentications", "PeerAuthentication")
DESTINATION_RULES = ResourceType("networking.istio.io", "v1", "destinationrules", "DestinationRule")


def object_key(obj: Mapping[str, Any]) -> tuple[str, str]:
    md = obj.get("metadata")
    md = md if isinstance(md, Mapping) else {}
    return str(md.get("namespace") or ""), str(md.get("name") or "")


def _resource_version(obj: Any) -> str:
    md = obj.get("metadata") if isinstance(obj, Mapping) else None
    return str(md.get("resourceVersion") or "") if isinstance(md, Mapping) else ""


def check_metadata_only(obj: Any, *, resource: str) -> None:
    """A metadata-only reply that carries data is an error: never parsed, never stored."""
    if isinstance(obj, Mapping) and any(k in obj for k in _DATA_FIELDS):
        raise ProtocolError(
            f"{resource}: the server ignored the metadata-only Accept header and sent object data; "
            "refusing the reply (nothing of it is kept)",
            resource=resource,
        )


# -- client ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConnectOptions:
    kubeconfig: str = ""  # "" = in-cluster when available, else ~/.kube/config
    context: str = ""
    host: str = ""  # override (tests: the fake API server); no auth is added then
    request_timeout: float = 30.0


class Client:
    """A thin async client over `kubernetes.aio`'s ApiClient: raw JSON, typed errors."""

    def __init__(self, api_client: Any, *, request_timeout: float = 30.0) -> None:
        self._api = api_client
        self._timeout = request_timeout

    @classmethod
    async def connect(cls, options: ConnectOptions) -> Client:
        from kubernetes.aio import client as kclient  # noqa: PLC0415 - imported only in Kubernetes modes
        from kubernetes.aio import config as kconfig  # noqa: PLC0415

        configuration = kclient.Configuration()
        if options.host:
            configuration.host = options.host
        elif options.kubeconfig:
            await kconfig.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=options.kubeconfig, context=options.context or None, client_configuration=configuration
            )
        else:
            try:
                kconfig.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            except kconfig.ConfigException:
                await kconfig.load_kube_config(  # type: ignore[no-untyped-call]
                    context=options.context or None, client_configuration=configuration
                )
        configuration.retries = None  # retries and backoff are ours (typed, with jitter, Retry-After)
        api = kclient.ApiClient(configuration)
        api.user_agent = "ztmon"
        return cls(api, request_timeout=options.request_timeout)

    async def close(self) -> None:
        await self._api.close()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        accept: str = JSON,
        body: Any = None,
        content_type: str | None = None,
        client_timeout: Any = None,
    ) -> Any:
        """The raw aiohttp response; raises typed errors for non-2xx replies (the body is read then)."""
        import aiohttp  # noqa: PLC0415

        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        method_, url, header_params, body_, post = await self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        to = client_timeout or aiohttp.ClientTimeout(total=self._timeout)
        try:
            rest = await self._api.call_api(
                method_, url, header_params=header_params, body=body_, post_params=post, _request_timeout=to
            )
        except (aiohttp.ClientError, OSError) as e:
            raise ServerError(f"{path}: {type(e).__name__}: {e}", resource=path) from e
        resp = rest.response
        if resp.status >= 300:
            raw = await resp.read()
            resp.release()
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                data = raw.decode(errors="replace")[:200]
            raise error_for(resp.status, data, resource=path, retry_after=resp.headers.get("Retry-After"))
        return resp

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        resp = await self._send(method, path, **kw)
        try:
            raw = await resp.read()
        finally:
            resp.release()
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise ProtocolError(f"{path}: reply is not JSON: {e}", resource=path) from e

    async def list(
        self,
        rt: ResourceType,
        *,
        namespace: str | None = None,
        field_selector: str = "",
        label_selector: str = "",
        metadata_only: bool = False,
        page_size: int = 500,
    ) -> tuple[list[dict[str, Any]], str]:
        """Every item (paginated, `limit`/`continue`) and the list's resourceVersion."""
        items: list[dict[str, Any]] = []
        cont = ""
        rv = ""
        while True:
            query: list[tuple[str, Any]] = [("limit", page_size)]
            if cont:
                query.append(("continue", cont))
            if field_selector:
                query.append(("fieldSelector", field_selector))
            if label_selector:
                query.append(("labelSelector", label_selector))
            reply = await self.request(
                "GET",
                rt.path(namespace=namespace),
                query=query,
                accept=METADATA_LIST_ACCEPT if metadata_only else JSON,
            )
            if not isinstance(reply, Mapping) or not isinstance(reply.get("items", []), list):
                raise ProtocolError(f"{rt.key}: list reply without items", resource=rt.key)
            page = reply.get("items") or []
            if metadata_only:
                for item in page:
                    check_metadata_only(item, resource=rt.key)
            items.extend(page)
            md: Mapping[str, Any] = reply["metadata"] if isinstance(reply.get("metadata"), Mapping) else {}
            rv = str(md.get("resourceVersion") or rv)
            cont = str(md.get("continue") or "")
            if not cont:
                return items, rv

    async def stream(
        self,
        rt: ResourceType,
        *,
        resource_version: str,
        namespace: str | None = None,
        field_selector: str = "",
        label_selector: str = "",
        metadata_only: bool = False,
        timeout_seconds: int = 300,
        watchdog: float = 70.0,
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events (ADDED/MODIFIED/DELETED/BOOKMARK) until the server closes the stream.

        An ERROR event raises its typed error (410 -> GoneError); no line within `watchdog` seconds raises
        WatchStalledError. The server ends the stream after `timeout_seconds`; the caller resumes from the
        last resourceVersion it saw.
        """
        import aiohttp  # noqa: PLC0415

        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", timeout_seconds),
        ]
        if resource_version:
            query.append(("resourceVersion", resource_version))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        if label_selector:
            query.append(("labelSelector", label_selector))
        resp = await self._send(
            "GET",
            rt.path(namespace=namespace),
            query=query,
            accept=METADATA_ACCEPT if metadata_only else JSON,
            client_timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._timeout),
        )
        try:
            while True:
                try:
                    line = await asyncio.wait_for(resp.content.readline(), timeout=watchdog)
                except TimeoutError:
                    msg = f"{rt.key}: no event or bookmark for {watchdog:.0f}s"
                    raise WatchStalledError(msg, resource=rt.key) from None
                except (aiohttp.ClientError, OSError) as e:
                    raise ServerError(f"{rt.key}: watch broke: {type(e).__name__}: {e}", resource=rt.key) from e
                if not line:
                    return
                if not line.strip():
                    continue
                try:
                    event = orjson.loads(line)
                except orjson.JSONDecodeError as e:
                    raise ProtocolError(f"{rt.key}: watch line is not JSON: {e}", resource=rt.key) from e
                if not isinstance(event, dict) or "type" not in event:
                    raise ProtocolError(f"{rt.key}: watch line is not an event", resource=rt.key)
                if event["type"] == "ERROR":
                    obj = event.get("object")
                    code = int(obj.get("code") or 500) if isinstance(obj, Mapping) else 500
                    raise error_for(code, obj, resource=rt.key)
                if metadata_only and event["type"] != "BOOKMARK":
                    check_metadata_only(event.get("object"), resource=rt.key)
                yield event
        finally:
            resp.release()

    async def served(self, group_version_path: str) -> frozenset[str] | None:
        """Plural names served under `/apis/<group>/<version>`; None when the group is absent (no CRD)."""
        try:
            reply = await self.request("GET", group_version_path)
        except NotFoundError:
            return None
        resources = reply.get("resources") if isinstance(reply, Mapping) else None
        return frozenset(str(r.get("name")) for r in resources or () if isinstance(r, Mapping))

    async def get(self, rt: ResourceType, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        return dict(await self.request("GET", rt.path(namespace=namespace, name=name)))

    async def create(
        self, rt: ResourceType, body: Mapping[str, Any], *, namespace: str | None = None
    ) -> dict[str, Any]:
        return dict(await self.request("POST", rt.path(namespace=namespace), body=dict(body)))

    async def replace(
        self, rt: ResourceType, name: str, body: Mapping[str, Any], *, namespace: str | None = None
    ) -> dict[str, Any]:
        """PUT (RBAC verb `update`); the body's `metadata.resourceVersion` makes it conditional (409 when stale)."""
        return dict(await self.request("PUT", rt.path(namespace=namespace, name=name), body=dict(body)))

    async def patch(
        self, rt: ResourceType, name: str, body: Mapping[str, Any], *, namespace: str | None = None
    ) -> dict[str, Any]:
        """JSON merge patch; a `metadata.resourceVersion` in it is a precondition (409 when stale)."""
        return dict(
            await self.request(
                "PATCH",
                rt.path(namespace=namespace, name=name),
                body=dict(body),
                content_type="application/merge-patch+json",
            )
        )


# -- backoff -----------------------------------------------------------------------------------------------
@dataclass
class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog): a fleet of agents does not retry in step."""

    base: float = 0.5
    cap: float = 60.0
    attempt: int = 0
    rand: Callable[[], float] = random.random

    def next(self) -> float:
        delay: float = min(self.cap, self.base * (2.0**self.attempt))
        self.attempt += 1
        return delay * (0.5 + self.rand() / 2)  # within [delay/2, delay]: never a burst of zero waits

    def reset(self) -> None:
        self.attempt = 0


# -- informer ----------------------------------------------------------------------------------------------
T = TypeVar("T")


@dataclass
class WatchStats:
    last_event: datetime | None = None
    restarts: dict[str, int] = field(default_factory=dict)

    def restart(self, reason: str) -> None:
        self.restarts[reason] = self.restarts.get(reason, 0) + 1


class Informer(Generic[T]):
    """list+watch of one resource into a cache of parsed values, keyed by (namespace, name).

    - Watches resume from the last resourceVersion seen (events and bookmarks), so a server-side timeout
      or a stalled connection costs no relist.
    - 410 GoneError: relist; objects that vanished meanwhile are deleted from the cache (synthetic deletes).
    - Watchdog: a watch silent for `watchdog` seconds is restarted (bookmarks arrive every minute on a
      real API server, hence 70 s as in kopf).
    - Resync: a full relist every `resync` seconds catches anything a watch could have missed.
    - Errors: 403 is logged once with the missing permission and retried slowly; 429 honours
      Retry-After; others back off exponentially with jitter. The cache keeps its last good state.
    `parse` turns one object into a value (None: not kept); an exception there drops that object and
    is logged once per object, never stops the informer.
    """

    def __init__(
        self,
        client: Client,
        rt: ResourceType,
        *,
        parse: Callable[[dict[str, Any]], T | None],
        on_change: Callable[[], None] = lambda: None,
        namespace: str | None = None,
        field_selector: str = "",
        label_selector: str = "",
        metadata_only: bool = False,
        watchdog: float = 70.0,
        timeout_seconds: int = 300,
        resync: float = 600.0,
        forbidden_retry: float = 60.0,
        backoff: Backoff | None = None,
        name: str = "",
    ) -> None:
        self.client = client
        self.rt = rt
        self.parse = parse
        self.on_change = on_change
        self.namespace = namespace
        self.field_selector = field_selector
        self.label_selector = label_selector
        self.metadata_only = metadata_only
        self.watchdog = watchdog
        self.timeout_seconds = timeout_seconds
        self.resync = resync
        self.forbidden_retry = forbidden_retry
        self.backoff = backoff or Backoff()
        self.name = name or rt.key
        self.cache: dict[tuple[str, str], T] = {}
        self.resource_version = ""
        self.synced = False  # the cache reflects a complete list
        self.error = ""  # last failure, "" when healthy
        self.forbidden = False
        self.stats = WatchStats()
        self._listed_at = 0.0
        self._bad: set[tuple[str, str]] = set()
        self._synced_event = asyncio.Event()

    # -- cache ---------------------------------------------------------------------------------------------
    def _parse(self, obj: dict[str, Any]) -> T | None:
        key = object_key(obj)
        try:
            value = self.parse(obj)
        except Exception as e:  # a bad object is skipped, named, logged once
            if key not in self._bad:
                self._bad.add(key)
                log.warning(
                    "kube_object_unreadable",
                    resource=self.name,
                    object="/".join(k for k in key if k),
                    error=f"{type(e).__name__}: {e}",
                )
            return None
        self._bad.discard(key)
        return value

    async def relist(self) -> None:
        items, rv = await self.client.list(
            self.rt,
            namespace=self.namespace,
            field_selector=self.field_selector,
            label_selector=self.label_selector,
            metadata_only=self.metadata_only,
        )
        fresh: dict[tuple[str, str], T] = {}
        for obj in items:
            value = self._parse(obj)
            if value is not None:
                fresh[object_key(obj)] = value
        vanished = self.cache.keys() - fresh.keys()
        changed = bool(vanished) or fresh.keys() != self.cache.keys() or not self.synced or bool(fresh)
        if vanished:
            log.info("kube_relist_deleted", resource=self.name, objects=len(vanished))  # synthetic deletes
        self.cache = fresh
        self.resource_version = rv
        self.synced = True
        self.error = ""
        self.forbidden = False
        self._listed_at = time.monotonic()
        self._synced_event.set()
        self.stats.last_event = datetime.now(UTC)
        if changed:
            self.on_change()

    def apply(self, event: Mapping[str, Any]) -> bool:
        """Apply one watch event to the cache; True when the cache changed."""
        etype = event.get("type")
        obj = event.get("object")
        if not isinstance(obj, dict):
            return False
        rv = _resource_version(obj)
        if rv:
            self.resource_version = rv
        self.stats.last_event = datetime.now(UTC)
        if etype == "BOOKMARK":
            return False
        key = object_key(obj)
        if etype == "DELETED":
            return self.cache.pop(key, None) is not None
        if etype in {"ADDED", "MODIFIED"}:
            value = self._parse(obj)
            if value is None:
                return self.cache.pop(key, None) is not None
            self.cache[key] = value
            return True
        return False

    async def wait_synced(self, within: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._synced_event.wait(), within)
        except TimeoutError:
            return False
        return True

    # -- loop ----------------------------------------------------------------------------------------------
    async def _watch_once(self) -> None:
        async for event in self.client.stream(
            self.rt,
            resource_version=self.resource_version,
            namespace=self.namespace,
            field_selector=self.field_selector,
            label_selector=self.label_selector,
            metadata_only=self.metadata_only,
            timeout_seconds=self.timeout_seconds,
            watchdog=self.watchdog,
        ):
            self.backoff.reset()
            if self.apply(event):
                self.on_change()
            if self.resync and time.monotonic() - self._listed_at > self.resync:
                self.stats.restart("resync")
                self.resource_version = ""  # relist on the next turn
                return

    def _fail(self, e: KubeError | Exception, reason: str) -> None:
        msg = str(e) or type(e).__name__
        if msg != self.error:
            log.warning("kube_watch_failed", resource=self.name, reason=reason, error=msg)
        self.error = msg
        self.stats.restart(reason)

    async def run(self) -> None:
        """Keep the cache current until cancelled. Never raises except CancelledError."""
        while True:
            try:
                if not self.resource_version:
                    await self.relist()
                await self._watch_once()
                self.stats.restart("closed")  # server-side timeout: resume from resource_version
            except GoneError:
                self.stats.restart("gone")
                self.resource_version = ""
            except WatchStalledError as e:
                self._fail(e, "watchdog")
            except ForbiddenError as e:
                self.forbidden = True
                self.synced = False
                self._fail(e, "forbidden")
                await asyncio.sleep(self.forbidden_retry * (0.5 + random.random() / 2))  # noqa: S311
            except TooManyRequestsError as e:
                self._fail(e, "throttled")
                await asyncio.sleep(e.retry_after if e.retry_after is not None else self.backoff.next())
            except NotFoundError as e:
                self.synced = False
                self._fail(e, "not_found")
                self.resource_version = ""
                await asyncio.sleep(self.forbidden_retry)
            except (KubeError, OSError, TimeoutError) as e:
                self._fail(e, "error")
                if isinstance(e, ProtocolError):
                    self.resource_version = ""
                await asyncio.sleep(self.backoff.next())


# -- leader election ---------------------------------------------------------------------------------------
@dataclass
class LeaseLock:
    """Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

    The holder renews `renewTime` every `retry_period`; a candidate takes the lease over only when
    `renewTime + leaseDurationSeconds` has passed. Updates (PUT: RBAC verbs get, create, update on
    leases) carry the resourceVersion read, so two candidates racing for an expired lease cannot both
    win (the loser gets 409). On shutdown the holder clears holderIdentity so a standby takes over at once.
    """

    client: Client
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    retry_period: float = 2.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    leader: bool = False

    @staticmethod
    def _micro(t: datetime) -> str:
        return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    async def try_acquire(self) -> bool:
        """One round: acquire or renew. Returns whether we hold the lease now."""
        now = self.clock()
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_duration),
            "renewTime": self._micro(now),
        }
        try:
            lease = await self.client.get(LEASES, self.name, namespace=self.namespace)
        except NotFoundError:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**spec, "acquireTime": self._micro(now), "leaseTransitions": 0},
            }
            try:
                await self.client.create(LEASES, body, namespace=self.namespace)
            except ConflictError:
                self.leader = False
                return False
            self.leader = True
            return True
        cur: Mapping[str, Any] = lease["spec"] if isinstance(lease.get("spec"), Mapping) else {}
        holder = str(cur.get("holderIdentity") or "")
        renewed = _parse_micro(str(cur.get("renewTime") or ""))
        duration = float(cur.get("leaseDurationSeconds") or self.lease_duration)
        expired = renewed is None or now > renewed + timedelta(seconds=duration)
        if holder and holder != self.identity and not expired:
            self.leader = False
            return False
        new_spec = {**cur, **spec}
        if holder != self.identity:
            new_spec["acquireTime"] = self._micro(now)
            new_spec["leaseTransitions"] = int(cur.get("leaseTransitions") or 0) + 1
        body = {**lease, "spec": new_spec}  # carries metadata.resourceVersion: the update is conditional
        try:
            await self.client.replace(LEASES, self.name, body, namespace=self.namespace)
        except ConflictError:
            self.leader = False
            return False
        self.leader = True
        return True

    async def release(self) -> None:
        if not self.leader:
            return
        self.leader = False
        with contextlib.suppress(KubeError, OSError):
            lease = await self.client.get(LEASES, self.name, namespace=self.namespace)
            spec = dict(lease.get("spec") or {})
            if spec.get("holderIdentity") == self.identity:  # hand over at once instead of after expiry
                spec["holderIdentity"] = ""
                spec["renewTime"] = None
                await self.client.replace(LEASES, self.name, {**lease, "spec": spec}, namespace=self.namespace)


def _parse_micro(text: str) -> datetime | None:
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text)  # 3.11 reads "Z"
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)
