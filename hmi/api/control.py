"""Commands: the mode (one tap on the wall page), pause, tank target (residents); a miner's
manual power and a demand-response cap (installer). Each answers with the overrides now in
force; the next tick (and its live update) shows the effect."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from hmi.api.common import WRITE_ERRORS, ctx_of
from hmi.schemas import (
    CommandOut,
    DrCapIn,
    MinerPowerIn,
    ModeIn,
    OverridesOut,
    PauseIn,
    TankTargetIn,
)
from hmi.security import Installer, Resident, Viewer

router = APIRouter(prefix="/api/commands", tags=["commands"], responses=WRITE_ERRORS)


def _done(request: Request, message: str) -> CommandOut:
    return CommandOut(ok=True, message=message, overrides=ctx_of(request).commands.overrides())


@router.get("/overrides", response_model=OverridesOut, summary="What people asked for, now")
async def overrides(request: Request, _: Viewer) -> Any:
    return ctx_of(request).commands.overrides()


@router.post("/mode", response_model=CommandOut, summary="Change the mode (resident)")
async def mode(request: Request, body: ModeIn, p: Resident) -> Any:
    return _done(request, ctx_of(request).commands.mode(body.mode, p.who))


@router.post("/pause", response_model=CommandOut, summary="Pause or resume all miners (resident)")
async def pause(request: Request, body: PauseIn, p: Resident) -> Any:
    return _done(request, ctx_of(request).commands.pause(body.paused, p.who))


@router.post("/tank-target", response_model=CommandOut,
             summary="Set the tank target, or null for the configured one (resident)")
async def tank_target(request: Request, body: TankTargetIn,
                      p: Resident) -> Any:
    return _done(request, ctx_of(request).commands.tank_target(body.target_c, p.who))


@router.post("/miner-power", response_model=CommandOut,
             summary="Hold one miner at a fixed power, or null for automatic (installer)")
async def miner_power(request: Request, body: MinerPowerIn,
                      p: Installer) -> Any:
    return _done(request, ctx_of(request).commands.miner_power(body.miner, body.power_w, p.who))


@router.post("/dr-cap", response_model=CommandOut,
             summary="Cap all miners together, optionally for a while (installer)")
async def dr_cap(request: Request, body: DrCapIn, p: Installer) -> Any:
    return _done(request, ctx_of(request).commands.dr_cap(body.cap_w, body.duration_s, p.who))
