"""A fake Kubernetes API server: kmock's emulator plus what kmock 0.8 lacks (see FACTS.md).

kmock.KubernetesEmulator keeps objects and serves CRUD; this subclass adds, for list and watch:
- a resourceVersion counter stamped on every object and list, and a history of events so a watch
  resumes from a resourceVersion (replaying what it missed);
- `compacted`: watching from an older resourceVersion gets a 410 ERROR event, as after etcd compaction;
- field selectors (`spec.nodeName=`, `metadata.name=`, `metadata.namespace=`, `type=`, `!=`) and label
  selectors (`k=v`, `k!=v`, `k`, `!k`);
- bookmarks every `bookmark_every` seconds when the client allows them; `timeoutSeconds` honoured;
- Accept negotiation for PartialObjectMetadata(List) (or `ignore_accept` to play a server that sends
  full objects anyway); `limit`/`continue` pagination;
- `stalled`: watches of these resources send headers and then nothing; `forbidden`: 403 on list/watch;
- a resourceVersion precondition on PATCH (409), which leader election relies on.
Served on 127.0.0.1 only (kmock.Server's default).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import enums, parsing, rendering  # kmock 0.8 (pinned): its Request type and action enum

_parse_path = parsing.parse_path


def _parse_path_fixed(path: str) -> parsing.ParsedPath:
    """kmock 0.8 reads `/api/v1/namespaces[/name]` as a namespace prefix and fails: the cluster-scoped
    `namespaces` resource is served here instead."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
        return parsing.ParsedPath(
            group="", version="v1", plural="namespaces", name=parts[3] if len(parts) == 4 else None
        )
    return _parse_path(path)


parsing.parse_path = _parse_path_fixed

CORE = {
    "v1": ["pods", "nodes", "secrets", "serviceaccounts", "namespaces", "services", "configmaps"],
    "rbac.authorization.k8s.io/v1": ["roles", "clusterroles", "rolebindings", "clusterrolebindings"],
    "networking.k8s.io/v1": ["networkpolicies", "ingresses"],
    "coordination.k8s.io/v1": ["leases"],
}
CLUSTER_SCOPED = {"nodes", "namespaces", "clusterroles", "clusterrolebindings"}
KINDS = {
    "pods": "Pod",
    "nodes": "Node",
    "secrets": "Secret",
    "serviceaccounts": "ServiceAccount",
    "namespaces": "Namespace",
    "services": "Service",
    "configmaps": "ConfigMap",
    "roles": "Role",
    "clusterroles": "ClusterRole",
    "rolebindings": "RoleBinding",
    "clusterrolebindings": "ClusterRoleBinding",
    "networkpolicies": "NetworkPolicy",
    "ingresses": "Ingress",
    "leases": "Lease",
    "peerauthentications": "PeerAuthentication",
    "destinationrules": "DestinationRule",
}


def res(api_version: str, plural: str) -> kmock.resource:
    group, _, version = api_version.rpartition("/")
    return kmock.resource(group, version, plural)


def _field(obj: Mapping[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    return "" if cur is None else str(cur)


def field_matches(obj: Mapping[str, Any], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            path, value = term.split("!=", 1)
            if _field(obj, path) == value:
                return False
        else:
            path, _, value = term.replace("==", "=").partition("=")
            if _field(obj, path) != value:
                return False
    return True


def label_matches(obj: Mapping[str, Any], selector: str) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, _, v = term.replace("==", "=").partition("=")
            if labels.get(k) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


@attrs.define(kw_only=True)
class FakeKube(kmock.KubernetesEmulator):
    rv: int = 0
    history: list[tuple[int, Any, dict[str, Any]]] = attrs.field(factory=list)  # (rv, resource, event)
    compacted: int = 0  # a watch from a resourceVersion below this gets 410
    bookmark_every: float = 0.0
    forbidden: set[str] = attrs.field(factory=set)  # plurals: 403 on list and watch
    stalled: set[str] = attrs.field(factory=set)  # plurals: watches send nothing
    ignore_accept: bool = False
    crds: set[str] = attrs.field(factory=set)  # "security.istio.io/v1/peerauthentications" when "installed"
    list_requests: list[dict[str, Any]] = attrs.field(factory=list)
    watch_requests: list[dict[str, Any]] = attrs.field(factory=list)
    tick: asyncio.Event = attrs.field(factory=asyncio.Event)
    close_watches: int = 0  # bumped to end every open watch (as an API server restart does)
    memo: tuple[Any, list[dict[str, Any]]] | None = None

    # -- store helpers for tests ---------------------------------------------------------------------------
    def _next(self) -> int:
        self.rv += 1
        return self.rv

    def _record(self, resource: Any, etype: str, obj: dict[str, Any]) -> None:
        self.history.append((self.rv, resource, {"type": etype, "object": obj}))
        self.tick.set()
        self.tick = asyncio.Event()

    def add(self, api_version: str, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Create or replace an object; watchers see ADDED or MODIFIED."""
        r = res(api_version, plural)
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        md["resourceVersion"] = str(self._next())
        md.setdefault("uid", str(uuid.uuid4()))
        md.setdefault("creationTimestamp", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", KINDS.get(plural, plural.capitalize()))
        key = (r, md.get("namespace"), md["name"])
        existed = key in self.objects and not self.objects[key].deleted
        if key in self.objects:
            self.objects[key].create(obj)
        else:
            self.objects[key] = obj
        self._record(r, "MODIFIED" if existed else "ADDED", obj)
        return obj

    def remove(
        self, api_version: str, plural: str, namespace: str | None, name: str, *, silently: bool = False
    ) -> None:
        """Delete; `silently`: no event in the history (as if compacted away before any watch saw it)."""
        r = res(api_version, plural)
        view = self.objects[r, namespace, name]
        last = copy.deepcopy(view.raw)
        view.delete()
        last["metadata"]["resourceVersion"] = str(self._next())
        if not silently:
            self._record(r, "DELETED", last)

    def compact(self) -> None:
        """Forget the history: a watch from any older resourceVersion now gets 410."""
        self.compacted = self.rv  # resuming from the current resourceVersion is still fine
        self.history.clear()

    def end_watches(self) -> None:
        self.close_watches += 1
        self.tick.set()
        self.tick = asyncio.Event()

    def items(self, resource: Any) -> list[dict[str, Any]]:
        """Current objects of a resource, sorted; memoised per resourceVersion (pages of one list)."""
        memo = self.memo
        if memo and memo[0] == (resource, self.rv):
            return memo[1]
        out = self._items(resource)
        self.memo = ((resource, self.rv), out)
        return out

    def _items(self, resource: Any) -> list[dict[str, Any]]:
        out = []
        for (r, _ns, _name), obj in self.objects.items():
            if r == resource and not obj.deleted:
                out.append(obj.raw)
        out.sort(key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))
        return out

    # -- serving ---------------------------------------------------------------------------------------------
    def _served(self, request: rendering.Request) -> bool:
        r = request.resource
        if r is None:
            return False
        api_version = f"{r.group}/{r.version}" if r.group else r.version
        return r.plural in CORE.get(api_version, ()) or f"{api_version}/{r.plural}" in self.crds

    @staticmethod
    def _accept(request: rendering.Request) -> str:
        for k, v in request.headers.items():
            if k.lower() == "accept":
                return str(v)
        return ""

    def _view(self, request: rendering.Request, obj: dict[str, Any]) -> dict[str, Any]:
        if "as=PartialObjectMetadata" in self._accept(request) and not self.ignore_accept:
            return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
        return obj

    def _selected(self, request: rendering.Request, obj: dict[str, Any]) -> bool:
        p = request.params
        ns = request.namespace
        if ns is not None and obj["metadata"].get("namespace") != ns:
            return False
        return field_matches(obj, p.get("fieldSelector", "")) and label_matches(obj, p.get("labelSelector", ""))

    def _discovery(self, path: str) -> Any:
        gv = path.strip("/").removeprefix("apis/").removeprefix("api/")
        plurals = list(CORE.get(gv, ())) + [c.rsplit("/", 1)[1] for c in self.crds if c.rsplit("/", 1)[0] == gv]
        if not plurals:
            return aiohttp.web.json_response(
                status(404, "NotFound", "the server could not find the requested resource"), status=404
            )
        return aiohttp.web.json_response(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": gv,
                "resources": [
                    {
                        "name": pl,
                        "singularName": "",
                        "kind": KINDS.get(pl, pl),
                        "namespaced": pl not in CLUSTER_SCOPED,
                        "verbs": ["get", "list", "watch", "create", "patch", "delete"],
                    }
                    for pl in plurals
                ],
            }
        )

    async def _handle(self, request: rendering.Request) -> Any:
        path = str(request.url.path)
        if re.fullmatch(r"/apis/[^/]+/[^/]+/?|/api/v1/?", path) and request.method == enums.method.GET:
            return self._discovery(path)
        r = request.resource
        if r is not None and request.method == enums.method.PUT and request.name:  # kmock 0.8 routes PATCH only
            return await self._replace(request)
        if r is not None and request.action in {enums.action.LIST, enums.action.WATCH}:
            if r.plural in self.forbidden:
                scope = f'in the namespace "{request.namespace}"' if request.namespace else "at the cluster scope"
                verb = "watch" if request.action == enums.action.WATCH else "list"
                raise kmock.KubernetesError(
                    status=403,
                    reason="Forbidden",
                    message=f'{r.plural} is forbidden: User "system:serviceaccount:ztmon:ztmon" cannot {verb} '
                    f'resource "{r.plural}" in API group "{r.group}" {scope}',
                    details={"kind": r.plural, "group": r.group},
                )
            if not self._served(request):
                raise kmock.KubernetesResourceNotFoundError
        mutating = r is not None and request.action in {enums.action.CREATE, enums.action.UPDATE}
        if mutating and isinstance(request.data, dict):
            md = request.data.setdefault("metadata", {})
            if request.action == enums.action.UPDATE:
                want = md.get("resourceVersion")
                key = (r, request.namespace, request.name)
                cur = self.objects[key] if key in self.objects else None  # noqa: SIM401 - no .get on kmock's array
                have = cur["metadata"].get("resourceVersion") if cur is not None and not cur.deleted else None
                if want and have and want != have:
                    raise kmock.KubernetesError(
                        status=409,
                        reason="Conflict",
                        message="the object has been modified; please apply your changes "
                        "to the latest version and try again",
                    )
            md["resourceVersion"] = str(self._next())
            if request.action == enums.action.CREATE:
                md.setdefault("uid", str(uuid.uuid4()))
        response = await super()._handle(request)
        if mutating and r is not None:
            name = request.name or (request.data or {}).get("metadata", {}).get("name")
            ns = request.namespace or (request.data or {}).get("metadata", {}).get("namespace")
            key = (r, ns, name)
            if key in self.objects and not self.objects[key].deleted:
                self._record(
                    r,
                    "ADDED" if request.action == enums.action.CREATE else "MODIFIED",
                    copy.deepcopy(self.objects[key].raw),
                )
        return response

    async def _replace(self, request: rendering.Request) -> Any:
        """PUT: replace the object; a stale metadata.resourceVersion in the body is a 409, as on a real server."""
        r = request.resource
        key = (r, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return aiohttp.web.json_response(status(404, "NotFound", f"{request.name} not found"), status=404)
        body = copy.deepcopy(request.data)
        have = self.objects[key]["metadata"].get("resourceVersion")
        want = (body.get("metadata") or {}).get("resourceVersion")
        if want and want != have:
            msg = "the object has been modified; please apply your changes to the latest version and try again"
            return aiohttp.web.json_response(status(409, "Conflict", msg), status=409)
        body.setdefault("metadata", {})["resourceVersion"] = str(self._next())
        self.objects[key].create(body)
        self._record(r, "MODIFIED", body)
        return aiohttp.web.json_response(body)

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        p = request.params
        self.list_requests.append({"path": str(request.url.path), "accept": self._accept(request), **p})
        assert request.resource is not None
        items = [o for o in self.items(request.resource) if self._selected(request, o)]
        start = int(p.get("continue") or 0)
        limit = int(p.get("limit") or 0)
        page = items[start : start + limit] if limit else items[start:]
        nxt = str(start + limit) if limit and start + limit < len(items) else ""
        meta = "as=PartialObjectMetadataList" in self._accept(request) and not self.ignore_accept
        kind = KINDS.get(request.resource.plural or "", "Object")
        return {
            "kind": "PartialObjectMetadataList" if meta else f"{kind}List",
            "apiVersion": "meta.k8s.io/v1"
            if meta
            else (request.resource.group + "/" if request.resource.group else "") + str(request.resource.version),
            "metadata": {"resourceVersion": str(self.rv), **({"continue": nxt} if nxt else {})},
            "items": [self._view(request, o) if meta else o for o in page],
        }

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        p = request.params
        closing = self.close_watches  # before the request is visible: end_watches() after it always applies
        self.watch_requests.append({"path": str(request.url.path), "accept": self._accept(request), **p})
        r = request.resource
        assert r is not None
        since = p.get("resourceVersion", "")
        yield b""
        if since not in {"", "0"} and int(since) < self.compacted:
            yield {
                "type": "ERROR",
                "object": status(410, "Expired", f"too old resource version: {since} ({self.compacted})"),
            }
            return
        if r.plural in self.stalled:
            await asyncio.sleep(3600)
            return
        deadline = time.monotonic() + float(p.get("timeoutSeconds") or 3600)
        if since in {"", "0"}:  # "start at most recent": synthetic ADDED for the current state
            for obj in self.items(r):
                if self._selected(request, obj):
                    yield {"type": "ADDED", "object": self._view(request, obj)}
            cursor = len(self.history)
        else:
            cursor = next((i for i, (rv, _, _) in enumerate(self.history) if rv > int(since)), len(self.history))
        bookmarks = p.get("allowWatchBookmarks") == "true" and self.bookmark_every > 0
        last_bookmark = time.monotonic()
        while True:
            while cursor < len(self.history):
                _rv, er, event = self.history[cursor]
                cursor += 1
                if er == r and self._selected(request, event["object"]):
                    yield {"type": event["type"], "object": self._view(request, event["object"])}
            now = time.monotonic()
            if now >= deadline or closing != self.close_watches:
                return
            wait = deadline - now
            if bookmarks:
                due = last_bookmark + self.bookmark_every - now
                if due <= 0:
                    last_bookmark = now
                    yield {
                        "type": "BOOKMARK",
                        "object": {
                            "kind": KINDS.get(r.plural or "", ""),
                            "apiVersion": "v1",
                            "metadata": {"resourceVersion": str(self.rv)},
                        },
                    }
                    continue
                wait = min(wait, due)
            tick = self.tick
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tick.wait(), timeout=wait)
