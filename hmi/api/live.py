"""Reading: live state, the 24 h history, revenue, ledger reports, the live feed (SSE).

Server-Sent Events rather than a WebSocket: one direction is all the page needs, it goes
through any proxy as plain HTTP, and the browser reconnects by itself. Every message is a
whole state (not a diff), so a page that missed some is right again with the next one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from controller.errors import InputError, Problem
from hmi.api.common import READ_ERRORS, ctx_of
from hmi.schemas import ErrorOut, HistoryOut, Miner, RevenueOut, StateOut
from hmi.security import Viewer

router = APIRouter(prefix="/api", tags=["live"], responses=READ_ERRORS)

MAX_STREAMS = 64
KEEPALIVE_S = 15.0
RETRY_MS = 1000


@router.get("/state", response_model=StateOut, summary="The latest tick, as the page shows it")
async def state(request: Request, _: Viewer) -> Any:
    return ctx_of(request).publisher.state


@router.get("/miners", response_model=list[Miner], summary="Each miner: power, hash rate, state")
async def miners(request: Request, _: Viewer) -> Any:
    return ctx_of(request).publisher.state.miners


@router.get("/history", response_model=HistoryOut,
            summary="Averaged points for the chart (PV, load, miners, grid, price)")
async def history(request: Request, _: Viewer,
                  hours: Annotated[float, Query(gt=0, le=24, allow_inf_nan=False)] = 24.0,
                  ) -> Any:
    pub = ctx_of(request).publisher
    return HistoryOut(step_s=pub.step_s, hours=hours, points=pub.history(hours))


@router.get("/revenue", response_model=RevenueOut,
            summary="Today and this month: btc_value, heat_value, power_cost, net, sats "
                    "(from the ledger)")
def revenue(request: Request, _: Viewer) -> Any:
    ctx = ctx_of(request)
    return ctx.ledger.summary(ctx.now_s())


# A month as the schema says it (so every value the schema allows is one): YYYY-MM, year
# 0001..9999, month 01..12.
MONTH_PATTERN = r"^([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-(0[1-9]|1[0-2])$"


def _in_range(d: date, field: str) -> date:
    """The ledger's days are local days with a UTC offset: the first and last day a
    datetime can hold cannot be one. Refused in words, never a 500."""
    if not date(2, 1, 1) <= d <= date(9998, 12, 31):
        raise InputError("ledger", [Problem(field, f"{d.isoformat()} is outside the years "
                                                   "0002..9998")])
    return d


@router.get("/ledger/day", summary="The ledger's report of one local day",
            responses={503: {"model": ErrorOut, "description": "No ledger"}})
def ledger_day(request: Request, _: Viewer,
               day: Annotated[date, Query(alias="date", examples=["2025-04-21"])],
               ) -> dict[str, Any]:
    return ctx_of(request).ledger.day_report(_in_range(day, "date"))


@router.get("/ledger/month", summary="The ledger's report of one month, a row per day",
            responses={503: {"model": ErrorOut, "description": "No ledger"}})
def ledger_month(request: Request, _: Viewer,
                 month: Annotated[str, Query(pattern=MONTH_PATTERN, examples=["2025-04"])],
                 ) -> dict[str, Any]:
    try:
        d = date.fromisoformat(f"{month}-01")
    except ValueError:
        raise InputError("ledger/month", [Problem("month", f"not a month (YYYY-MM): "
                                                           f"{month!r}")]) from None
    d = _in_range(d, "month")
    return ctx_of(request).ledger.month_report(d.year, d.month)


@router.get("/health", summary="Is the controller ticking?")
async def health(request: Request) -> dict[str, Any]:
    pub = ctx_of(request).publisher
    return {"ok": pub.state.available, "boot_id": pub.boot_id, "seq": pub.seq,
            "streams": pub.subscribers}


@router.get("/events", summary="Live feed (text/event-stream): events 'state' and 'point'",
            response_description="An endless text/event-stream",
            responses={200: {"content": {"text/event-stream": {}}},
                       503: {"model": ErrorOut, "description": "Too many live feeds open"}})
async def events(request: Request, _: Viewer) -> StreamingResponse:
    pub = ctx_of(request).publisher
    if pub.subscribers >= MAX_STREAMS:
        raise HTTPException(503, f"too many live feeds open ({MAX_STREAMS})")

    async def stream() -> AsyncIterator[str]:
        sub = pub.subscribe()
        try:
            yield f"retry: {RETRY_MS}\n"
            yield f"event: hello\ndata: {json.dumps({'boot_id': pub.boot_id})}\n\n"
            yield f"event: state\ndata: {pub.state_json}\n\n"
            while True:
                try:
                    item = await asyncio.wait_for(sub.next(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if item is None:  # the service stops: the browser reconnects to the next
                    return
                event, data = item
                yield f"event: {event}\ndata: {data}\n\n"
        finally:
            sub.close()

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
