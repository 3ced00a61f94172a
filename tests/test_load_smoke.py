"""A short version of ``benchmarks/load_test.py``: 20 small jobs at once, all succeed, none lost or duplicated."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from app.main import create_app
from benchmarks.load_test import run

pytestmark = pytest.mark.usefixtures("worker")


def test_twenty_concurrent_jobs_all_succeed_once(settings):
    app = create_app(settings.model_copy(update={"api_keys": "load-smoke"}))  # a key of its own: its own job list

    async def load():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://restora", headers={"Authorization": "Bearer load-smoke"}) as client:
            return await run(client, jobs=20, concurrency=10, timeout=120)

    report = asyncio.run(load())
    print(f"\nload smoke: {report}")
    assert (report.submitted, report.succeeded, report.lost, report.duplicated, report.refused) == (20, 20, 0, 0, 0), report
