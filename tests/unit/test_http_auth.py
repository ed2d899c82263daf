"""Bearer token rotation and the open probe paths of the HTTP app (aiohttp test client, no network)."""

from __future__ import annotations

import os

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ztmon.engine import http
from ztmon.settings import AuthConfig, ServerConfig
from ztmon.sinks.prometheus import PrometheusSink


class _Engine:
    report = None
    ready = True


@pytest.fixture
async def client_for(tmp_path):
    clients = []

    async def make(token_text: str):
        f = tmp_path / "token"
        f.write_text(token_text + "\n")
        cfg = ServerConfig(auth=AuthConfig(bearer_token_file=f))
        app = http.make_app(_Engine(), PrometheusSink(process_metrics=False), cfg)  # type: ignore[arg-type]
        c = TestClient(TestServer(app))
        await c.start_server()
        clients.append(c)
        return c, f

    yield make
    for c in clients:
        await c.close()


async def test_metrics_need_the_token_and_probes_stay_open(client_for):
    c, _ = await client_for("first")
    assert (await c.get("/metrics")).status == 401
    assert (await c.get("/metrics", headers={"Authorization": "Bearer first"})).status == 200
    assert (await c.get("/healthz")).status == 200
    assert (await c.get("/readyz")).status == 200


async def test_rotated_token_file_is_picked_up_without_restart(client_for):
    c, f = await client_for("first")
    f.write_text("second-token\n")
    st = f.stat()
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert (await c.get("/metrics", headers={"Authorization": "Bearer first"})).status == 401
    assert (await c.get("/metrics", headers={"Authorization": "Bearer second-token"})).status == 200


async def test_unreadable_rotated_file_keeps_the_last_good_token(client_for):
    c, f = await client_for("first")
    f.unlink()
    assert (await c.get("/metrics", headers={"Authorization": "Bearer first"})).status == 200


def test_missing_token_file_fails_at_start(tmp_path):
    with pytest.raises(OSError):
        http.Token(ServerConfig(auth=AuthConfig(bearer_token_file=tmp_path / "absent")))
