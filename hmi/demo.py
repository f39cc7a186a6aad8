"""The demo site: the real `Service` and controller against the plant model, replaying a
real-data trace sped up, with the HMI serving it. For `make demo`, the browser tests and
anyone who wants to see the wall page without a house.

Nothing here is canned: each tick the service snapshots the plant's meters and miners
(in-process ports), the production controller decides, the plant integrates the commands
over the trace step (real physics: battery, tank, miner boot and ramp), and the ledger
writer accounts every step from the plant's flows, so the revenue on the page is the
ledger's. Time is virtual: one tick = one trace row (60 s of the day) every
`tick_real_s` real seconds. The trace's day is replayed as today, then tomorrow, ...;
a restarted demo with the same data directory continues where the ledger stopped.

Run it:  python -m hmi.demo --port 8080   (or `hearth hmi demo`)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import math
import shutil
import signal
import sys
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.config.load import parse_site
from controller.config.models import SiteConfig
from controller.control.types import Commands, MinerReading, Reading
from controller.economics.hashprice import BtcTerms, RowTerms
from controller.ledger.accumulate import Sample, split_miner_power
from controller.ledger.writer import LedgerWriter, economics_from_site, site_info
from controller.runtime.market import BitcoinTermsFeed
from controller.runtime.service import Clock, Service
from controller.sim.plant import Plant
from controller.trace.reader import Trace, read_trace
from hmi.app import HmiContext, create_app, hmi_settings
from hmi.commands import ServiceOverrides
from hmi.publisher import HmiPublisher
from hmi.server import HmiServer, bind

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
DEMO_SITE = ROOT / "hil" / "sites" / "house-10kwp.toml"
DEMO_TRACE = ROOT / "hil" / "traces" / "house-spring-day.csv"
DAY_S = 86_400


class VirtualClock:
    """The demo's time: monotonic seconds and the UTC instant of the trace row in play."""

    def __init__(self, start_utc_s: float) -> None:
        self.t = 1000.0
        self.utc_s = start_utc_s

    def monotonic(self) -> float:
        return self.t

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.utc_s, UTC)

    def advance(self, dt_s: float) -> None:
        self.t += dt_s
        self.utc_s += dt_s


class DemoPlant:
    """The plant behind in-process ports: meters (a MeasurementSource) and miners."""

    def __init__(self, cfg: SiteConfig, trace: Trace, clock: VirtualClock,
                 writer: LedgerWriter | None) -> None:
        self.cfg = cfg
        self.plant = Plant(cfg)
        self.trace = trace
        self.clock = clock
        self.writer = writer
        self.dt = trace.step_s
        self.day0 = trace.time_s[0]
        self._terms = RowTerms(cfg.bitcoin)
        self.meter_alive = True
        self._last: dict[str, Reading | None] = {}

    @property
    def row(self) -> int:
        """The trace row of the virtual time of day."""
        return int(((self.clock.utc_s - self.day0) % DAY_S) // self.dt) % len(self.trace.time_s)

    def _col(self, name: str, default: float = 0.0) -> float:
        v = float(getattr(self.trace, name)[self.row])
        return default if math.isnan(v) else v

    # MeasurementSource
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def readings(self) -> Mapping[str, Reading | None]:
        if self.meter_alive:
            m = self.plant.measure(self.clock.monotonic(), self._col("pv_w"), self._col("load_w"))
            self._last = {"grid_power_w": m.grid_power_w, "pv_power_w": m.pv_power_w,
                          "battery_power_w": m.battery_power_w, "soc_pct": m.soc_pct,
                          "tank_temp_c": m.tank_temp_c}
        return self._last

    def miner_readings(self) -> Mapping[str, MinerReading]:
        return {mm.cfg.name: mm.reading(self.clock.monotonic()) for mm in self.plant.miners}

    def _btc(self) -> BtcTerms:
        """The row's bitcoin terms, resolved as the simulator and the ledger do."""
        return self._terms(self._col("hashvalue_sats_per_th_day", math.nan),
                           self._col("btc_price", math.nan), self._col("hashprice", math.nan))

    def step(self, commands: Commands) -> None:
        """The plant over one trace step under the tick's commands; the ledger takes it."""
        pv, load, heat = self._col("pv_w"), self._col("load_w"), self._col("heat_demand_w")
        f = self.plant.step(commands, self.dt, pv, load, heat)
        if self.writer is None:
            return
        fpv, fbat, fgrid = split_miner_power(f.pv_w, f.load_w, f.miner_w, f.battery_w)
        t = self.cfg.tariffs
        # The service knows only the configured tariff (no price feed yet), so the ledger
        # is kept with it too: the page's prices and money then tell one story.
        self.writer.add(Sample(
            self.clock.utc_s, self.dt, f.pv_w, f.load_w, f.grid_w, f.battery_w, f.miner_w,
            fpv, fbat, fgrid, f.heat_to_tank_w, f.heat_from_tank_w, f.backup_heat_w,
            f.terahashes, t.import_price_per_kwh, t.export_price_per_kwh, self._btc(), "",
            f.soc_pct, f.tank_c))


class DemoFleet:
    """The plant's miners as the service's MinerFleet."""

    def __init__(self, plant: DemoPlant) -> None:
        self.plant = plant
        self.stopped_with: str | None = None

    async def start(self) -> None: ...

    async def stop(self, shutdown_state: str) -> None:
        self.stopped_with = shutdown_state

    def readings(self) -> Mapping[str, MinerReading]:
        return self.plant.miner_readings()

    def submit(self, commands: Commands) -> None:
        self.plant.step(commands)


@dataclass
class DemoSite:
    cfg: SiteConfig
    service: Service
    plant: DemoPlant
    publisher: HmiPublisher
    context: HmiContext
    clock: VirtualClock
    writer: LedgerWriter | None
    config_path: Path

    def tick(self) -> None:
        self.service.tick()
        self.clock.advance(self.plant.dt)

    async def run(self, tick_real_s: float, stop: asyncio.Event) -> None:
        """Tick every `tick_real_s` until `stop` is set, then shut the service down."""
        loop = asyncio.get_running_loop()
        next_t = loop.time()
        try:
            while not stop.is_set():
                self.tick()
                next_t += tick_real_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, next_t - loop.time()))
        finally:
            await self.service.shutdown()
            if self.writer is not None:
                self.writer.close()


def _site_doc(site: Path) -> dict[str, Any]:
    with site.open("rb") as f:
        return tomllib.load(f)


def build_demo(data_dir: Path, *, site: Path = DEMO_SITE, trace: Path = DEMO_TRACE,
               start_utc: str = "06:00", ledger: bool = True,
               today: datetime | None = None) -> DemoSite:
    """The demo service with its HMI parts (not serving yet). `data_dir` keeps the site
    file the installer pages edit, the ledger, the HMI logins and the controller state."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path = data_dir / "site.toml"
    if not config_path.exists():
        shutil.copyfile(site, config_path)
    doc = _site_doc(config_path)
    base = parse_site(doc, str(config_path))
    tr = read_trace(trace, base)
    # One tick per trace row; everything the demo keeps lives under data_dir.
    doc.setdefault("control", {})["tick_s"] = tr.step_s
    doc["service"] = {**doc.get("service", {}), "data_dir": str(data_dir),
                      "start_delay_max_s": 0.0}
    doc["ledger"] = {**doc.get("ledger", {}), "data_dir": str(data_dir), "enabled": ledger}
    doc.get("ledger", {}).pop("database_url", None)
    cfg = parse_site(doc, str(config_path))

    writer = None
    if ledger:
        writer = LedgerWriter.open(cfg.ledger.url, site_info(cfg), economics_from_site(cfg),
                                   flush_interval_s=cfg.ledger.interval_s, source="demo")
    # The trace's day replayed as today (UTC), from start_utc; or after what the ledger has.
    day = (today or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    hh, mm = (int(x) for x in start_utc.split(":"))
    offset = day.timestamp() - tr.time_s[0]
    shifted = dataclasses.replace(tr, time_s=tr.time_s + offset)
    start_s = day.timestamp() + hh * 3600 + mm * 60
    if writer is not None and writer.resume_after_s is not None:
        start_s = max(start_s, writer.resume_after_s)
    clock = VirtualClock(start_s)
    plant = DemoPlant(cfg, shifted, clock, writer)
    fleet = DemoFleet(plant)
    s = hmi_settings(cfg)
    publisher = HmiPublisher(cfg, history_step_s=s.history_step_s)
    # The bitcoin terms as `hearth run` has them: cached live terms while fresh, else the
    # static [bitcoin] ones, said on the money view (the demo site's feed is off).
    bitcoin = BitcoinTermsFeed(cfg, data_dir, utc=lambda: clock.utc().timestamp())
    service = Service(cfg, [plant], fleet, [publisher],
                      Clock(monotonic=clock.monotonic, utc=clock.utc), bitcoin=bitcoin)
    ctx = HmiContext.build(cfg, publisher, ServiceOverrides(service), config_path=config_path,
                           utc=clock.utc)
    if ledger:
        with contextlib.suppress(Exception):  # a first run has no history yet
            publisher.backfill(ctx.ledger.telemetry(int(start_s - DAY_S), int(start_s)))
    return DemoSite(cfg, service, plant, publisher, ctx, clock, writer, config_path)


async def serve_demo(demo: DemoSite, host: str, port: int, tick_real_s: float,
                     stop: asyncio.Event | None = None) -> None:
    """Serve the HMI and tick the demo until SIGINT/SIGTERM (or `stop`)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    server = HmiServer(create_app(demo.context), host, port, sock=bind(host, port))
    await server.start()
    print(f"Hearth demo: {demo.cfg.site.name or demo.cfg.site.id} on {server.url}/ "
          f"(installer: {server.url}/installer, API: {server.url}/api/docs); "
          f"one tick = {demo.plant.dt:g} s of the day every {tick_real_s:g} s",
          file=sys.stderr, flush=True)
    try:
        await demo.run(tick_real_s, stop)
    finally:
        await server.stop()
        demo.context.auth.flush()
        demo.context.commands.close()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", type=Path, default=DEMO_SITE, help="site TOML")
    p.add_argument("--trace", type=Path, default=DEMO_TRACE, help="trace CSV to replay")
    p.add_argument("--host", default="127.0.0.1", help="listen address (0.0.0.0: the LAN)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--data-dir", type=Path, default=None,
                   help="keep logins, ledger and the edited site file here "
                        "(default: a new temporary directory)")
    p.add_argument("--tick-real-s", type=float, default=1.0,
                   help="real seconds per tick (one trace row, e.g. 60 s of the day)")
    p.add_argument("--start", default="06:00", help="time of day (UTC) the replay starts at")
    p.add_argument("--no-ledger", action="store_true", help="run without a ledger")


def run_from_args(args: argparse.Namespace) -> int:
    from controller.errors import InputError, Problem

    if not args.tick_real_s > 0:
        raise InputError("arguments", [Problem("--tick-real-s", "must be > 0")])
    try:
        hh, mm = (int(x) for x in args.start.split(":"))
        if not (0 <= hh < 24 and 0 <= mm < 60):
            raise ValueError
    except ValueError:
        raise InputError("arguments", [Problem("--start", "must be HH:MM")]) from None
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="hearth-demo-"))
    demo = build_demo(data_dir, site=args.site, trace=args.trace, start_utc=args.start,
                      ledger=not args.no_ledger)
    asyncio.run(serve_demo(demo, args.host, args.port, args.tick_real_s))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from controller.errors import InputError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s")
    p = argparse.ArgumentParser(prog="python -m hmi.demo", description=__doc__.splitlines()[0])
    add_arguments(p)
    try:
        return run_from_args(p.parse_args(argv))
    except InputError as err:
        print(err.render(), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
