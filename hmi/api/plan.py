"""The day-ahead plan (docs/plan.md): `GET /api/plan` for the page's plan panel.

The document is the one the runtime planner also publishes on MQTT `state/plan`: the
current slot's overrides (tank target, buy floor), and per 15-min slot the planned miner
power, tank temperature, grid flows and prices, with the plan's expected net value.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from hmi.api.common import READ_ERRORS, ctx_of
from hmi.security import Viewer

router = APIRouter(prefix="/api", tags=["live"], responses=READ_ERRORS)


def plan_document(request: Request) -> dict[str, Any] | None:
    """The running service's plan, or None (no service, or `[plan] enabled = false`)."""
    port = ctx_of(request).commands.port
    service = getattr(port, "service", None)
    planner = getattr(service, "planner", None)
    as_json = getattr(planner, "as_json", None)
    if as_json is None:
        return None
    doc: dict[str, Any] = as_json()
    return doc


@router.get("/plan", summary="The day-ahead plan: per slot miner W, tank °C, prices; its value")
async def plan(request: Request, _: Viewer) -> dict[str, Any]:
    """`enabled: false` (and no plan) on a site without `[plan] enabled = true`: the page
    then hides its plan panel (a 200, so a browser logs no failed request)."""
    doc = plan_document(request)
    if doc is None:
        return {"enabled": False, "plan": None}
    return doc
