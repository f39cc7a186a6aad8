"""`hearth doctor --config SITE.toml`: check everything the service depends on, in words.

Each check says what it tried and, when it failed, what that means for the site and what to
look at. Exit code 0 when all is well, 1 when something needs attention (2 for a bad
configuration, like every command).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from sqlalchemy import text

from controller.config.models import SiteConfig
from controller.devices.acquisition import Acquisition
from controller.ledger.db import make_engine, sqlite_path
from controller.miners.base import State
from controller.miners.factory import build_drivers


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.what}: {self.detail}"


async def _devices(cfg: SiteConfig, source: str) -> list[Check]:
    if not cfg.devices:
        return [Check("meters", False, "no [[devices]] in the site file: without a grid meter "
                                       "the miners never start")]
    acq = Acquisition(cfg.devices, source=source)
    out = []
    try:
        results = await acq.read_once()
        for dev in cfg.devices:
            where = (f"{dev.host}:{dev.port}" if dev.transport == "tcp"
                     else f"{dev.serial_port}")
            if results.get(dev.name):
                vals = ", ".join(f"{q} {r.value:.0f}" for q, r in acq.readings().items())
                out.append(Check(f"device {dev.name} ({dev.map} at {where})", True, vals))
            else:
                err = acq.poller(dev.name).state.last_error or "no answer"
                out.append(Check(f"device {dev.name} ({dev.map} at {where})", False,
                                 f"{err}. Check the address, the unit id ({dev.unit_id}), "
                                 "that Modbus TCP is enabled on the device, and cabling"))
    finally:
        await acq.stop()
    return out


async def _miners(cfg: SiteConfig) -> list[Check]:
    drivers = build_drivers(cfg)
    out = []
    try:
        statuses = await asyncio.gather(*(d.read() for d in drivers.values()))
        for (name, _drv), st in zip(drivers.items(), statuses, strict=True):
            api = st.api
            if st.state is State.UNAVAILABLE:
                out.append(Check(f"miner {name} ({api})", False,
                                 f"{st.detail or 'no answer'}. Check its address, that the "
                                 "API is enabled, and the credentials"))
            else:
                out.append(Check(f"miner {name} ({api})", True,
                                 f"{st.state.value}, {st.power_w:.0f} W, "
                                 f"{st.hashrate_ths:.2f} TH/s"))
    finally:
        for d in drivers.values():
            await d.close()
    return out


def _database(cfg: SiteConfig) -> Check:
    url = cfg.ledger.url
    path = sqlite_path(url)
    if path is not None and not path.exists():
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is not None and os.access(parent, os.W_OK):
            return Check(f"ledger database {url}", True, "not created yet; it will be")
        return Check(f"ledger database {url}", False,
                     f"cannot create {path}: no write access to {parent}")
    try:
        engine = make_engine(url, writer=False, create=False)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as err:
        return Check(f"ledger database {url}", False,
                     f"{err.__class__.__name__}: {err}. Revenue would not be recorded")
    return Check(f"ledger database {url}", True, "reachable")


async def diagnose(cfg: SiteConfig, source: str) -> list[Check]:
    checks = await _devices(cfg, source)
    checks += await _miners(cfg)
    checks.append(_database(cfg))
    return checks


def run_doctor(cfg: SiteConfig, source: str) -> int:
    checks = asyncio.run(diagnose(cfg, source))
    for c in checks:
        print(c.line())
    bad = [c for c in checks if not c.ok]
    print(f"\n{len(checks) - len(bad)} of {len(checks)} checks passed"
          + ("" if not bad else ": fix the FAIL lines above"))
    return 1 if bad else 0
