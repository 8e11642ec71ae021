"""Health and broker statistics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from roost import __version__
from roost.api.auth import CallerDep, roost
from roost.api.errors import ERROR_RESPONSES
from roost.server.server import RoostServer

router = APIRouter(tags=["system"], responses=ERROR_RESPONSES)

ServerDep = Annotated[RoostServer, Depends(roost)]


@router.get("/health", summary="Liveness: answers while the broker's event loop runs")
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/stats", summary="Broker counters (the operator) or the caller's tenant counts")
async def stats(server: ServerDep, who: CallerDep) -> dict[str, Any]:
    broker = server.broker
    if who.tenant is None:
        values: dict[str, Any] = dict(server.sys_values())
        values["tenants"] = sorted({tenant for tenant, _ in broker.sessions})
        return values
    sessions = [s for (t, _), s in broker.sessions.items() if t == who.tenant]
    retained = broker.retained.get(who.tenant)
    return {
        "tenant": who.tenant,
        "sessions": len(sessions),
        "connected": sum(1 for s in sessions if s.connected),
        "subscriptions": sum(len(s.subscriptions) for s in sessions),
        "queued": sum(s.message_count() for s in sessions),
        "retained": 0
        if retained is None
        else sum(1 for topic, _ in retained.items() if not topic.startswith("$")),
    }
