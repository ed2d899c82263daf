"""The adapter (ztmon.sources.kubeapi) with the real kubernetes.aio client against the fake API server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubetest import eventually, pod, secret

from ztmon.sources import kubeapi


def names(inf: kubeapi.Informer[Any]) -> list[str]:
    return sorted(name for _, name in inf.cache)


@contextlib.asynccontextmanager
async def running(inf: kubeapi.Informer[Any]) -> AsyncIterator[kubeapi.Informer[Any]]:
    task = asyncio.create_task(inf.run())
    try:
        yield inf
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def informer(client, rt=kubeapi.PODS, **kw) -> kubeapi.Informer[Any]:
    kw.setdefault("watchdog", 2.0)
    kw.setdefault("forbidden_retry", 0.2)
    kw.setdefault("backoff", kubeapi.Backoff(base=0.05, cap=0.2))
    return kubeapi.Informer(client, rt, parse=lambda o: o["metadata"].get("labels", {}), **kw)


async def test_list_is_paginated_and_returns_the_resource_version(fake, client):
    for i in range(7):
        fake.add("v1", "secrets", secret(f"s{i}"))
    items, rv = await client.list(kubeapi.SECRETS, page_size=3)
    assert len(items) == 7
    assert rv == "7"
    assert [r.get("continue", "") for r in fake.list_requests] == ["", "3", "6"]


async def test_field_and_label_selectors_reach_the_server(fake, client):
    fake.add("v1", "pods", pod("a", labels={"tier": "web"}))
    fake.add("v1", "pods", pod("b", node="node-2", labels={"tier": "web"}))
    fake.add("v1", "pods", pod("c", labels={"tier": "db"}))
    items, _ = await client.list(kubeapi.PODS, field_selector="spec.nodeName=node-1", label_selector="tier=web")
    assert [i["metadata"]["name"] for i in items] == ["a"]


async def test_metadata_only_list_and_watch_carry_no_data(fake, client):
    fake.add("v1", "secrets", secret("s1"))
    items, rv = await client.list(kubeapi.SECRETS, metadata_only=True)
    assert items[0]["kind"] == "PartialObjectMetadata"
    assert "data" not in items[0]
    assert fake.list_requests[-1]["accept"] == kubeapi.METADATA_LIST_ACCEPT
    fake.add("v1", "secrets", secret("s2"))
    stream = client.stream(kubeapi.SECRETS, resource_version=rv, metadata_only=True, timeout_seconds=1)
    events = [e async for e in stream if e["type"] != "BOOKMARK"]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "s2")]
    assert "data" not in events[0]["object"]
    assert fake.watch_requests[-1]["accept"] == kubeapi.METADATA_ACCEPT


async def test_a_server_ignoring_metadata_accept_is_refused_and_nothing_is_stored(fake, client):
    fake.ignore_accept = True
    fake.add("v1", "secrets", secret("s1"))
    with pytest.raises(kubeapi.ProtocolError, match="ignored the metadata-only Accept"):
        await client.list(kubeapi.SECRETS, metadata_only=True)
    inf = informer(client, kubeapi.SECRETS, metadata_only=True)
    async with running(inf):
        await eventually(lambda: inf.error)
        assert inf.cache == {}
        assert not inf.synced


async def test_watch_resumes_from_the_last_resource_version_without_relisting(fake, client):
    fake.add("v1", "pods", pod("a"))
    inf = informer(client, timeout_seconds=1)
    async with running(inf):
        await eventually(lambda: names(inf) == ["a"])
        fake.add("v1", "pods", pod("b"))
        await eventually(lambda: names(inf) == ["a", "b"])
        await eventually(lambda: len(fake.watch_requests) >= 2, within=4)  # the server ended the first watch
        fake.add("v1", "pods", pod("c"))
        await eventually(lambda: names(inf) == ["a", "b", "c"])
    assert len(fake.list_requests) == 1
    resumed = fake.watch_requests[1]
    assert resumed["resourceVersion"] == "2"
    assert inf.stats.restarts["closed"] >= 1


async def test_bookmarks_advance_the_resource_version(fake, client):
    fake.bookmark_every = 0.1
    fake.add("v1", "pods", pod("a"))
    fake.add(
        "v1",
        "pods",
        pod("other", ns="elsewhere"),
    )
    inf = informer(client, namespace="shop")
    async with running(inf):
        await eventually(lambda: names(inf) == ["a"])
        fake.add("v1", "pods", pod("x", ns="elsewhere"))  # not ours: only a bookmark tells us rv moved
        await eventually(lambda: inf.resource_version == "3")
    assert fake.watch_requests[0]["allowWatchBookmarks"] == "true"


async def test_gone_relists_and_emits_synthetic_deletes(fake, client):
    fake.bookmark_every = 0  # a bookmark would carry the watch past the deletion it never saw
    fake.add("v1", "pods", pod("a"))
    fake.add("v1", "pods", pod("b"))
    inf = informer(client, timeout_seconds=1)
    async with running(inf):
        await eventually(lambda: names(inf) == ["a", "b"])
        await eventually(lambda: len(fake.watch_requests) >= 1)
        # While the watch is down, "b" is deleted and the history compacted: resuming gets 410.
        fake.remove("v1", "pods", "shop", "b", silently=True)
        fake.compact()
        await eventually(lambda: inf.stats.restarts.get("gone", 0) >= 1, within=4)
        await eventually(lambda: names(inf) == ["a"])
    assert len(fake.list_requests) == 2


async def test_watchdog_restarts_a_silent_watch(fake, client):
    fake.stalled.add("pods")
    fake.add("v1", "pods", pod("a"))
    inf = informer(client, watchdog=0.3)
    async with running(inf):
        await eventually(lambda: inf.stats.restarts.get("watchdog", 0) >= 2)
        assert names(inf) == ["a"]  # the cache keeps its last good state
        fake.stalled.clear()
        fake.add("v1", "pods", pod("b"))
        await eventually(lambda: names(inf) == ["a", "b"])
    assert "no event or bookmark" in (inf.error or "no event or bookmark")


async def test_forbidden_resource_is_named_and_others_keep_working(fake, client):
    fake.forbidden.add("secrets")
    fake.add("v1", "pods", pod("a"))
    secrets = informer(client, kubeapi.SECRETS)
    pods = informer(client)
    async with running(secrets), running(pods):
        await eventually(lambda: secrets.forbidden)
        await eventually(lambda: names(pods) == ["a"])
    assert 'cannot list resource "secrets"' in secrets.error
    with pytest.raises(kubeapi.ForbiddenError) as e:
        await client.list(kubeapi.SECRETS)
    assert e.value.status == 403


async def test_dropped_watches_resume(fake, client):
    fake.add("v1", "pods", pod("a"))
    inf = informer(client)
    async with running(inf):
        await eventually(lambda: names(inf) == ["a"] and fake.watch_requests)
        fake.end_watches()
        await eventually(lambda: len(fake.watch_requests) >= 2)
        fake.add("v1", "pods", pod("b"))
        await eventually(lambda: names(inf) == ["a", "b"])


async def test_unreadable_object_is_skipped_not_fatal(fake, client):
    fake.add("v1", "pods", pod("good"))
    fake.add("v1", "pods", pod("bad"))

    def parse(obj):
        if obj["metadata"]["name"] == "bad":
            raise ValueError("spec.containers: expected a list")
        return obj

    inf = kubeapi.Informer(client, kubeapi.PODS, parse=parse, watchdog=2.0)
    async with running(inf):
        await eventually(lambda: sorted(n for _, n in inf.cache) == ["good"])


async def test_absent_api_group_is_none_present_is_its_resources(fake, client):
    assert await client.served("/apis/security.istio.io/v1") is None
    fake.crds.add("security.istio.io/v1/peerauthentications")
    assert await client.served("/apis/security.istio.io/v1") == frozenset({"peerauthentications"})


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, kubeapi.UnauthorizedError),
        (403, kubeapi.ForbiddenError),
        (404, kubeapi.NotFoundError),
        (409, kubeapi.ConflictError),
        (410, kubeapi.GoneError),
        (429, kubeapi.TooManyRequestsError),
        (500, kubeapi.ServerError),
        (503, kubeapi.ServerError),
    ],
)
def test_typed_errors_by_status(status, cls):
    e = kubeapi.error_for(status, {"message": "m", "reason": "R"}, resource="pods", retry_after="3")
    assert type(e) is cls
    assert str(e) == "pods: m"
    if cls is kubeapi.TooManyRequestsError:
        assert e.retry_after == 3.0


async def test_too_many_requests_honours_retry_after(fake, client):
    import kmock  # noqa: PLC0415

    body = {"kind": "Status", "code": 429, "reason": "TooManyRequests", "message": "slow down"}
    fake[kmock.action.LIST, kmock.resource("", "v1", "pods")] << 429 << {"Retry-After": "1"} << body
    with pytest.raises(kubeapi.TooManyRequestsError) as e:
        await client.list(kubeapi.PODS)
    assert e.value.retry_after == 1.0


def test_backoff_grows_with_jitter_and_resets():
    b = kubeapi.Backoff(base=1.0, cap=8.0, rand=lambda: 1.0)
    assert [b.next() for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    b.reset()
    low = kubeapi.Backoff(base=1.0, cap=8.0, rand=lambda: 0.0)
    assert low.next() == 0.5


async def test_lease_one_leader_and_takeover_after_expiry(fake, client):
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    now = [datetime(2025, 6, 1, tzinfo=UTC)]
    a = kubeapi.LeaseLock(
        client, namespace="ztmon", name="scanner", identity="a", lease_duration=15, clock=lambda: now[0]
    )
    b = kubeapi.LeaseLock(
        client, namespace="ztmon", name="scanner", identity="b", lease_duration=15, clock=lambda: now[0]
    )
    assert await a.try_acquire()
    assert not await b.try_acquire()
    now[0] += timedelta(seconds=5)
    assert await a.try_acquire()  # renew
    now[0] += timedelta(seconds=16)
    assert await b.try_acquire()  # a stopped renewing: b takes over
    assert not await a.try_acquire()
    lease = await client.get(kubeapi.LEASES, "scanner", namespace="ztmon")
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] == 1


async def test_lease_race_on_a_stale_resource_version_loses(fake, client):
    a = kubeapi.LeaseLock(client, namespace="ztmon", name="race", identity="a")
    assert await a.try_acquire()
    lease = await client.get(kubeapi.LEASES, "race", namespace="ztmon")
    stale = lease["metadata"]["resourceVersion"]
    assert await a.try_acquire()  # moves the resourceVersion on
    with pytest.raises(kubeapi.ConflictError):
        await client.replace(
            kubeapi.LEASES,
            "race",
            {"metadata": {"resourceVersion": stale}, "spec": {"holderIdentity": "b"}},
            namespace="ztmon",
        )


async def test_lease_released_on_shutdown_is_taken_at_once(fake, client):
    a = kubeapi.LeaseLock(client, namespace="ztmon", name="handover", identity="a", lease_duration=3600)
    b = kubeapi.LeaseLock(client, namespace="ztmon", name="handover", identity="b", lease_duration=3600)
    assert await a.try_acquire()
    assert not await b.try_acquire()
    await a.release()
    assert await b.try_acquire()
