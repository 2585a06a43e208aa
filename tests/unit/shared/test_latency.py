"""Every HTTP request is timed under its method, route template and status."""

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from prometheus_client import CollectorRegistry, Histogram

from shared.latency import RequestLatency


def app(registry: CollectorRegistry) -> FastAPI:
    api = FastAPI()
    latency = Histogram(
        "t_seconds", "latency", ["method", "route", "status"], registry=registry
    )
    api.add_middleware(RequestLatency, histogram=latency)

    @api.post("/episodes/{episode_id}", status_code=201)
    async def made(episode_id: str) -> dict[str, str]:
        return {"id": episode_id}

    @api.get("/refused")
    async def refused() -> None:
        raise HTTPException(status_code=409, detail="no")

    @api.get("/broken")
    async def broken() -> None:
        raise RuntimeError("a bug")

    return api


def count(registry: CollectorRegistry, method: str, route: str, status: str) -> float:
    labels = {"method": method, "route": route, "status": status}
    return registry.get_sample_value("t_seconds_count", labels) or 0.0


async def test_requests_count_under_their_route_template_and_status():
    registry = CollectorRegistry()
    transport = httpx.ASGITransport(app=app(registry), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/episodes/a")).status_code == 201
        assert (await client.post("/episodes/b")).status_code == 201
        assert (await client.get("/refused")).status_code == 409
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.get("/broken")).status_code == 500

    assert count(registry, "POST", "/episodes/{episode_id}", "201") == 2
    assert count(registry, "GET", "/refused", "409") == 1
    assert count(registry, "GET", "unmatched", "404") == 1
    assert count(registry, "GET", "/broken", "500") == 1


@pytest.fixture(autouse=True)
def _quiet_errors(caplog):
    caplog.set_level("CRITICAL")
