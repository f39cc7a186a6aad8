"""The installer's tools: the site config (schema, current values, validate, save), device
test buttons, the ledger export. All need the installer role.

Config changes go through the same `ConfigStore` as MQTT provisioning
(controller/bridge/provisioning.py): validated by the site's pydantic models (every
problem with its TOML path), written atomically with the previous file kept, secrets
shown redacted and kept when sent back redacted. Nothing is half-applied: a document with
one bad value changes nothing. The running service takes a saved config at its next
start.
"""

from __future__ import annotations

import io
import logging
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from controller.bridge.provisioning import ConfigStore
from controller.config.load import config_json_schema
from controller.errors import InputError, Problem
from hmi.api.common import WRITE_ERRORS, ctx_of
from hmi.schemas import (
    ConfigIn,
    ConfigOut,
    ConfigSavedOut,
    DeviceReadOut,
    ErrorOut,
    MinerTestIn,
    MinerTestOut,
    OkOut,
)
from hmi.security import Installer, refuse

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["installer"], responses=WRITE_ERRORS)
NO_STORE: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "This HMI was started without a site file"}}


def _store(request: Request) -> ConfigStore:
    store = ctx_of(request).config_store
    if store is None:
        raise refuse(request, 409, "this HMI has no site file to edit")
    return store


@router.get("/config/schema", summary="The JSON schema of the site file (for the form)")
async def schema(_: Installer) -> dict[str, Any]:
    return config_json_schema()


@router.get("/config", response_model=ConfigOut, responses=NO_STORE,
            summary="The site file as JSON (secrets redacted)")
def get_config(request: Request, _: Installer) -> Any:
    store = _store(request)
    return ConfigOut(path=str(store.path), version=store.version, config=store.redacted())


def _propose(request: Request, body: ConfigIn) -> Any:
    store = _store(request)
    site = body.config.get("site")
    new_id = site.get("id") if isinstance(site, dict) else None
    if new_id is not None and new_id != store.config.site.id:
        raise InputError("config", [Problem("site.id", f"cannot be changed here (from "
                         f"{store.config.site.id!r} to {new_id!r}): MQTT topics and the ledger "
                         "are named after it; edit the file on the controller")])
    return store.propose(document=body.config, source="config")


@router.post("/config/validate", response_model=OkOut, responses=NO_STORE,
             summary="Check a whole site document without saving it")
def validate(request: Request, body: ConfigIn, _: Installer) -> Any:
    prop = _propose(request, body)
    changed = ", ".join(prop.changed) or "nothing"
    return OkOut(message=f"valid; changes: {changed}")


@router.put("/config", response_model=ConfigSavedOut, responses=NO_STORE,
            summary="Validate and save a whole site document (the service takes it at restart)")
def save(request: Request, body: ConfigIn, p: Installer) -> Any:
    prop = _propose(request, body)
    version = _store(request).commit(prop)
    log.info("site config saved by %s: %s", p.who, ", ".join(prop.changed) or "no change")
    hook = ctx_of(request).on_config_saved
    if hook is not None:
        hook()
    return ConfigSavedOut(ok=True, version=version, changed=prop.changed,
                          message="Saved. Restart Hearth to apply it." if prop.changed
                          else "Saved (nothing changed).")


@router.get("/installer/devices", summary="What the test buttons can reach")
async def devices(request: Request, _: Installer) -> dict[str, Any]:
    cfg = ctx_of(request).site_config()
    return {
        "devices": [{"name": d.name, "role": d.role, "map": d.map, "transport": d.transport,
                     "address": f"{d.host}:{d.port or 'default'}" if d.transport == "tcp"
                     else d.serial_port} for d in cfg.devices],
        "miners": [{"name": m.name, "kind": m.kind, "api": m.driver.get("api"),
                    "min_power_w": m.min_power_w, "max_power_w": m.max_power_w,
                    "levels_w": m.levels_w()} for m in cfg.miners],
    }


@router.post("/installer/devices/{name}/read", response_model=DeviceReadOut,
             summary="Read one Modbus device now and show what it answered")
async def read_device(request: Request, name: str, _: Installer) -> Any:
    return await ctx_of(request).devices.read_device(name)


@router.post("/installer/miners/{name}/power", response_model=MinerTestOut,
             summary="Send one miner a power target (0 = pause) and read it back")
async def miner_power(request: Request, name: str, body: MinerTestIn,
                      _: Installer) -> Any:
    return await ctx_of(request).devices.set_miner_power(name, body.power_w)


def _day(d: date | None, field: str) -> date | None:
    """A day the ledger's local-day bounds can hold (typed as a date in the schema)."""
    if d is not None and not date(2, 1, 1) <= d <= date(9998, 12, 31):
        raise InputError("ledger export", [Problem(field, f"{d.isoformat()} is outside the "
                                                          "years 0002..9998")])
    return d


@router.get("/ledger/export.csv", summary="The ledger's intervals as CSV (installer)",
            responses={200: {"content": {"text/csv": {}}},
                       503: {"model": ErrorOut, "description": "No ledger"}})
def export(request: Request, _: Installer,
           start: Annotated[date | None, Query(alias="from")] = None,
           end: Annotated[date | None, Query(alias="to")] = None,
           ) -> Response:
    s, e = _day(start, "from"), _day(end, "to")
    if s is not None and e is not None and e < s:
        raise InputError("ledger export", [Problem("to", "is before from")])
    out = io.StringIO()
    ctx = ctx_of(request)
    ctx.ledger.export_csv(out, s, e)
    name = f"hearth-ledger-{ctx.cfg.site.id}-{s or 'start'}-{e or 'now'}.csv"
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
