"""Kubernetes sources: the node agent (`mode: node`) and the cluster scanner (`mode: cluster`).

Node agent: watches the pods scheduled on its node only (`fieldSelector=spec.nodeName=<NODE_NAME>`, from
the downward API) and its own Node object; reads no Secrets. Each pod's containers become `Container`
values carrying namespace, pod and owning workload, with runtime ids from the pod status so that the
pipeline joins them with the Docker source's view. Finished pods (Succeeded/Failed) are dropped.

Cluster scanner: one replica at a time (a coordination.k8s.io Lease; the others publish nothing, so two
replicas never double-report). Secrets and Pods are read metadata-only (PartialObjectMetadata via the
Accept header: no data ever reaches this process; a reply with data is refused); ServiceAccounts, RBAC,
NetworkPolicies, Namespaces, Services, Ingresses in full; Istio PeerAuthentication/DestinationRule when
their API groups are served. Optionally (`read_tls_secrets`) `kubernetes.io/tls` Secrets in full, to take
certificate expiry from tls.crt: the key is dropped at once, but the RBAC grant is a read of private keys.

A 403 on one resource is reported (which permission is missing) and the rest keeps running; the kinds a
check needs are "observed" only when their list succeeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog

from ztmon.model.inventory import Container, Node, SourcePart
from ztmon.model.kube import KubeObjects, WatchState, Workload
from ztmon.sources import kubeapi, kubeobjects
from ztmon.sources.base import Notify, Source

log = structlog.get_logger("ztmon.sources.kube")

Parsed = list[kubeobjects.Model]
_FINISHED = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True, slots=True)
class KubeOptions:
    connect: kubeapi.ConnectOptions = field(default_factory=kubeapi.ConnectOptions)
    node_name: str = ""
    watchdog_seconds: float = 70.0  # bookmarks come every 60 s from a real API server
    watch_timeout_seconds: int = 300  # server-side timeout; the watch resumes from its resourceVersion
    resync_seconds: float = 600.0  # full relist: catches anything a watch missed
    forbidden_retry_seconds: float = 60.0
    read_tls_secrets: bool = False
    lease_namespace: str = ""  # "" = $POD_NAMESPACE, else "default"
    lease_name: str = "ztmon-cluster-scanner"
    lease_duration_seconds: float = 15.0
    lease_retry_seconds: float = 2.0
    identity: str = ""  # "" = $POD_NAME, else the host name
    sync_timeout_seconds: float = 20.0


def _pod_items(obj: dict[str, Any]) -> Parsed | None:
    status = obj.get("status")
    if isinstance(status, Mapping) and status.get("phase") in _FINISHED:
        return None
    return kubeobjects.parse(obj, node_pod=True)


def _items(**kw: Any) -> Callable[[dict[str, Any]], Parsed | None]:
    def parse(obj: dict[str, Any]) -> Parsed | None:
        return kubeobjects.parse(obj, **kw) or None

    return parse


def _pod_meta_items(obj: dict[str, Any]) -> Parsed | None:
    """Metadata-only pod (cluster scan): a Workload with labels and owner, no containers."""
    meta = kubeobjects.meta_of(obj)
    kind, name = kubeobjects.owner_of(meta)
    return [
        Workload(
            kind=kind,
            namespace=meta.namespace,
            name=name,
            pod=meta.name,
            labels=meta.labels,
            annotations=meta.annotations,
        )
    ]


class _InformerSource(Source):
    """A Source whose part is assembled from informers' caches."""

    observed_kinds: ClassVar[dict[str, tuple[str, ...]]] = {}  # informer name -> kinds it makes "observed"

    def __init__(self, options: KubeOptions) -> None:
        super().__init__()
        self.options = options
        self.client: kubeapi.Client | None = None
        self.informers: list[kubeapi.Informer[Parsed]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._notify: Notify = lambda: None
        self._part = SourcePart(kube=KubeObjects())

    def part(self) -> SourcePart:
        return self._part

    def _informer(self, rt: kubeapi.ResourceType, parse: Callable[[dict[str, Any]], Parsed | None], **kw: Any) -> None:
        assert self.client is not None  # noqa: S101 - connected before informers are made
        o = self.options
        self.informers.append(
            kubeapi.Informer(
                self.client,
                rt,
                parse=parse,
                on_change=self._changed,
                watchdog=o.watchdog_seconds,
                timeout_seconds=o.watch_timeout_seconds,
                resync=o.resync_seconds,
                forbidden_retry=o.forbidden_retry_seconds,
                **kw,
            )
        )

    def _changed(self) -> None:
        self._publish()
        self._notify()

    def _node(self) -> Node | None:
        return None

    def _publish(self) -> None:
        items: list[kubeobjects.Model] = []
        observed: set[str] = set()
        for inf in self.informers:
            for parsed in inf.cache.values():
                items.extend(parsed)
            if inf.synced:
                observed.update(self.observed_kinds.get(inf.name, ()))
        containers, kube = kubeobjects.assemble(items, observed=frozenset(observed))
        watches = tuple(
            WatchState(
                resource=inf.name, last_event=inf.stats.last_event, restarts=tuple(sorted(inf.stats.restarts.items()))
            )
            for inf in self.informers
        )
        self._part = SourcePart(
            containers=self._filter(containers),
            node=self._node(),
            kube=dataclasses.replace(kube, watches=watches),
        )

    def _filter(self, containers: tuple[Container, ...]) -> tuple[Container, ...]:
        return containers

    async def _connect(self) -> kubeapi.Client:
        if self.client is None:
            self.client = await kubeapi.Client.connect(self.options.connect)
            self._make_informers()
        return self.client

    def _make_informers(self) -> None:
        raise NotImplementedError

    def health(self) -> None:
        """Source health from the informers: up when any works; the error names what is missing."""
        problems = [f"{inf.name}: {inf.error}" for inf in self.informers if inf.error]
        if self.informers and all(inf.error and not inf.synced for inf in self.informers):
            raise kubeapi.KubeError("; ".join(problems))
        self.mark_up()
        self.error = "; ".join(problems)

    async def refresh(self) -> None:
        """First call: initial list of every resource (failures per resource, not for the source).
        Later calls (the engine's resync): nothing to fetch — the informers keep current — only health."""
        await self._connect()
        if not self._tasks:
            results = await asyncio.gather(*(inf.relist() for inf in self.informers), return_exceptions=True)
            for inf, res in zip(self.informers, results, strict=True):
                if isinstance(res, kubeapi.ForbiddenError):
                    inf.forbidden = True
                    inf.error = str(res)
                    log.warning("kube_forbidden", resource=inf.name, error=str(res))
                elif isinstance(res, BaseException):
                    inf.error = f"{type(res).__name__}: {res}"
        self._publish()
        self.health()

    async def watch(self, notify: Notify) -> None:
        self._notify = notify
        await self._connect()
        self._tasks = [asyncio.create_task(inf.run(), name=f"kube-informer:{inf.name}") for inf in self.informers]
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for t in self._tasks:
                t.cancel()
            self._tasks = []

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.close()
            self.client = None


class KubeNodeSource(_InformerSource):
    """`mode: node`: the pods on this node and the Node itself."""

    name = "kube"
    observed_kinds: ClassVar[dict[str, tuple[str, ...]]] = {"pods": ("Pod",)}

    def __init__(self, options: KubeOptions) -> None:
        super().__init__(options)
        if not options.node_name:
            raise ValueError("kubernetes node mode needs the node name (NODE_NAME from the downward API)")
        self._node_info: dict[str, str] = {}

    def _make_informers(self) -> None:
        node = self.options.node_name
        self._informer(kubeapi.PODS, _pod_items, field_selector=f"spec.nodeName={node}", name="pods")
        self._informer(kubeapi.NODES, self._node_items, field_selector=f"metadata.name={node}", name="nodes")

    def _node_items(self, obj: dict[str, Any]) -> Parsed | None:
        info = obj.get("status", {}).get("nodeInfo") if isinstance(obj.get("status"), Mapping) else None
        if isinstance(info, Mapping):
            self._node_info = {
                "kernel": str(info.get("kernelVersion") or ""),
                "os_image": str(info.get("osImage") or ""),
                "runtime_version": str(info.get("containerRuntimeVersion") or ""),
            }
        return None

    def _node(self) -> Node:
        return Node(name=self.options.node_name, **self._node_info)


class KubeClusterSource(_InformerSource):
    """`mode: cluster`: cluster-wide objects, leader-elected so that one replica reports."""

    name = "kube"
    observed_kinds: ClassVar[dict[str, tuple[str, ...]]] = {
        "pods": ("Pod",),
        "secrets": ("Secret",),
        "serviceaccounts": ("ServiceAccount",),
        "roles": ("Role",),
        "clusterroles": ("ClusterRole",),
        "rolebindings": ("RoleBinding",),
        "clusterrolebindings": ("ClusterRoleBinding",),
        "networkpolicies": ("NetworkPolicy",),
        "namespaces": ("Namespace",),
        "services": ("Service",),
        "ingresses": ("Ingress",),
        "peerauthentications.security.istio.io": ("PeerAuthentication",),
        "destinationrules.networking.istio.io": ("DestinationRule",),
    }

    def __init__(self, options: KubeOptions) -> None:
        super().__init__(options)
        self.lock: kubeapi.LeaseLock | None = None
        self.crds: dict[str, bool] = {}

    def _make_informers(self) -> None:
        self._informer(kubeapi.SECRETS, _items(kind="Secret"), metadata_only=True, name="secrets")
        self._informer(kubeapi.PODS, _pod_meta_items, metadata_only=True, name="pods")
        for rt in (
            kubeapi.SERVICE_ACCOUNTS,
            kubeapi.ROLES,
            kubeapi.CLUSTER_ROLES,
            kubeapi.ROLE_BINDINGS,
            kubeapi.CLUSTER_ROLE_BINDINGS,
            kubeapi.NETWORK_POLICIES,
            kubeapi.NAMESPACES,
            kubeapi.SERVICES,
            kubeapi.INGRESSES,
        ):
            self._informer(rt, _items(), name=rt.key)
        if self.options.read_tls_secrets:
            self._informer(
                kubeapi.SECRETS, _items(read_certs=True), field_selector="type=kubernetes.io/tls", name="secrets-tls"
            )

    async def _discover_crds(self) -> None:
        """Istio informers are added when their API groups are served (checked at each refresh)."""
        assert self.client is not None  # noqa: S101
        for rt in (kubeapi.PEER_AUTHENTICATIONS, kubeapi.DESTINATION_RULES):
            if self.crds.get(rt.key):
                continue
            try:
                served = await self.client.served(rt.group_version_path)
            except kubeapi.KubeError as e:
                log.info("kube_discovery_failed", group=rt.group, error=str(e))
                continue
            present = served is not None and rt.plural in served
            self.crds[rt.key] = present
            if present:
                self._informer(rt, _items(), name=rt.key)
                if self._tasks:
                    inf = self.informers[-1]
                    self._tasks.append(asyncio.create_task(inf.run(), name=f"kube-informer:{inf.name}"))

    def _publish(self) -> None:
        if self.lock is not None and not self.lock.leader:
            self._part = SourcePart(kube=KubeObjects())  # a standby replica reports nothing
            return
        super()._publish()
        # Only the TLS informer's Secrets carry certificates; metadata-only Secrets must not appear twice.
        part = self._part
        if part.kube is not None and self.options.read_tls_secrets:
            seen: set[tuple[str, str]] = set()
            secrets = []
            for s in part.kube.secrets:
                if (s.namespace, s.name) not in seen:
                    seen.add((s.namespace, s.name))
                    secrets.append(s)
            kube = part.kube
            self._part = SourcePart(node=part.node, kube=dataclasses.replace(kube, secrets=tuple(secrets)))

    async def refresh(self) -> None:
        client = await self._connect()
        if self.lock is None:
            o = self.options
            self.lock = kubeapi.LeaseLock(
                client,
                namespace=o.lease_namespace or os.environ.get("POD_NAMESPACE", "") or "default",
                name=o.lease_name,
                identity=o.identity or os.environ.get("POD_NAME", "") or os.uname().nodename,
                lease_duration=o.lease_duration_seconds,
                retry_period=o.lease_retry_seconds,
            )
            with contextlib.suppress(kubeapi.KubeError, OSError):
                await self.lock.try_acquire()  # the first scan reports only if this replica leads
        await self._discover_crds()
        await super().refresh()

    async def _elect(self) -> None:
        assert self.lock is not None  # noqa: S101
        backoff = kubeapi.Backoff(base=self.lock.retry_period, cap=30.0)
        was = self.lock.leader
        while True:
            try:
                await self.lock.try_acquire()
                backoff.reset()
                delay = self.lock.retry_period
            except (kubeapi.KubeError, OSError) as e:
                log.warning("kube_lease_failed", error=str(e))
                self.lock.leader = False  # cannot renew: stop reporting before another replica starts
                delay = backoff.next()
            if self.lock.leader != was:
                was = self.lock.leader
                log.info("kube_leadership", leader=was, identity=self.lock.identity)
                self._changed()
            await asyncio.sleep(delay)

    async def watch(self, notify: Notify) -> None:
        await self._connect()
        if self.lock is None:
            await self.refresh()
        elect = asyncio.create_task(self._elect(), name="kube-lease")
        try:
            await super().watch(notify)
        finally:
            elect.cancel()
            if self.lock is not None:
                await self.lock.release()

    @property
    def is_leader(self) -> bool:
        return self.lock is not None and self.lock.leader


def missing_permissions(informers: Iterable[kubeapi.Informer[Any]]) -> list[str]:
    """`list/watch secrets` lines for every informer the API server refused: what to grant."""
    return [f"list/watch {inf.rt.key}" for inf in informers if inf.forbidden]
