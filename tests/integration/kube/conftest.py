"""Fixtures for the Kubernetes tests: the fake API server (fakeapi.FakeKube on kmock) on 127.0.0.1.

kmock is pinned exactly (0.8): FakeKube reaches into its emulator's internals.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import kmock
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: helpers are imported by name
from fakeapi import FakeKube

from ztmon.sources import kubeapi


@pytest.fixture
async def fake() -> AsyncIterator[FakeKube]:
    async with FakeKube(bookmark_every=0.5) as api, kmock.Server(api):  # a real server: about every 60 s
        yield api


@pytest.fixture
def connect(fake: FakeKube) -> kubeapi.ConnectOptions:
    return kubeapi.ConnectOptions(host=str(fake.url).rstrip("/"), request_timeout=5.0)


@pytest.fixture
async def client(connect: kubeapi.ConnectOptions) -> AsyncIterator[kubeapi.Client]:
    c = await kubeapi.Client.connect(connect)
    yield c
    await c.close()
