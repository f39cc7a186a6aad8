"""The ledger writer: samples in, batched transactions out, crash-safe.

Samples are accounted in memory; every `flush_interval_s` of sample time one transaction
writes the intervals and telemetry steps closed since the last flush *and* a checkpoint
of everything still open (the open interval's exact sums, the telemetry step, the DR
baseline) together with the end time of the last sample taken. So the database always
holds a consistent cut: a process killed at any instant (SIGKILL included) leaves either
the whole flush or none of it, and the next start resumes from the checkpoint:

- samples that end at or before the checkpoint are skipped (a replay is harmless);
- if the first new sample still falls in the open interval, the interval is completed;
- if it falls later (the controller was down), the open interval is closed with what it
  had (`covered_s` < `duration_s` says so) and accounting goes on.

Two writers for one site cannot both win: the checkpoint carries a generation number
updated with compare-and-set, and interval rows are unique per (site, start, revision).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from controller.config.models import SiteConfig
from controller.economics.grid_service import DrBaseline, GridServiceTerms
from controller.economics.heat import HeatValuation
from controller.economics.money import dec
from controller.errors import InputError, Problem
from controller.ledger.accumulate import (
    IntervalAccumulator,
    LedgerEconomics,
    Sample,
    TelemetryBucket,
    interval_start,
    split_sample,
)
from controller.ledger.db import make_engine, migrate
from controller.ledger.tables import LedgerInterval, LedgerSite, LedgerState, LedgerTelemetry

log = logging.getLogger(__name__)
STATE_VERSION = 1
_EPS_S = 1e-6


def table(model: Any) -> Table:
    return cast(Table, model.__table__)


class LedgerConflict(RuntimeError):
    """Another writer advanced this site's ledger; this one must stop."""


@dataclass(frozen=True)
class SiteInfo:
    """What the stored figures depend on; a database keeps the values it started with."""

    site_id: str
    currency: str
    timezone: str
    interval_s: int = 900
    telemetry_step_s: int = 60


def site_info(cfg: SiteConfig) -> SiteInfo:
    return SiteInfo(cfg.site.id, cfg.site.currency, cfg.site.timezone, cfg.ledger.interval_s,
                    cfg.ledger.telemetry_step_s)


def economics_from_site(cfg: SiteConfig) -> LedgerEconomics:
    bh = cfg.backup_heat
    gs = cfg.ledger.grid_service
    return LedgerEconomics(
        currency=cfg.site.currency,
        export_limit_w=dec(cfg.site.grid_export_limit_w),
        heat=HeatValuation.from_config(bh.kind, bh.efficiency, bh.fuel_price_per_kwh),
        battery_price_per_kwh=cfg.ledger.battery_energy_price_per_kwh,
        grid_service=None if gs is None else GridServiceTerms.from_config(
            gs, cfg.miner_capacity_w, cfg.site.timezone),
    )


def open_site_writer(cfg: SiteConfig, **kw: Any) -> LedgerWriter:
    """The live controller's writer, with every setting from the site's [ledger]."""
    led = cfg.ledger
    gs = led.grid_service
    return LedgerWriter.open(led.url, site_info(cfg), economics_from_site(cfg),
                             flush_interval_s=led.flush_interval_s,
                             retention_days=led.telemetry_retention_days,
                             baseline_s=gs.baseline_s if gs is not None else 900, **kw)


def ensure_site(engine: Engine, info: SiteInfo, clock: Callable[[], float]) -> int:
    """The site's row id; created on first use, refused if the stored settings differ."""
    t = table(LedgerSite)
    with engine.begin() as conn:
        row = conn.execute(select(t).where(t.c.site_id == info.site_id)).mappings().first()
        if row is None:
            res = conn.execute(insert(t).values(
                site_id=info.site_id, currency=info.currency, timezone=info.timezone,
                interval_s=info.interval_s, telemetry_step_s=info.telemetry_step_s,
                created_at_s=int(clock())))
            pk = res.inserted_primary_key
            assert pk is not None
            return int(pk[0])
        problems = []
        for field, where in (("currency", "site.currency"), ("timezone", "site.timezone"),
                             ("interval_s", "ledger.interval_min")):
            if row[field] != getattr(info, field):
                problems.append(Problem(where, f"the ledger of site {info.site_id!r} was kept "
                                               f"with {field} = {row[field]!r}, the config says "
                                               f"{getattr(info, field)!r}; use a new database "
                                               "(history must stay comparable)"))
        if problems:
            log.warning("refused ledger settings change: %s", "; ".join(map(str, problems)))
            raise InputError(str(engine.url), problems)
        if row["telemetry_step_s"] != info.telemetry_step_s:
            conn.execute(update(t).where(t.c.id == row["id"])
                         .values(telemetry_step_s=info.telemetry_step_s))
        return int(row["id"])


class LedgerWriter:
    """Accounts samples for one site and writes them in batches (see module doc)."""

    def __init__(self, engine: Engine, site: SiteInfo, econ: LedgerEconomics, *,
                 flush_interval_s: float = 300.0, retention_days: int = 0,
                 baseline_s: int = 900, source: str = "live",
                 clock: Callable[[], float] = time.time) -> None:
        if econ.currency != site.currency:
            raise ValueError("economics and site disagree on the currency")
        self.engine = engine
        self.site = site
        self.econ = econ
        self.flush_interval_s = flush_interval_s
        self.retention_days = retention_days
        self.source = source
        self.clock = clock
        self.tz = ZoneInfo(site.timezone)
        self.site_pk = ensure_site(engine, site, clock)
        self.acc: IntervalAccumulator | None = None
        self.tel: TelemetryBucket | None = None
        self.dr = DrBaseline(baseline_s)
        self._baseline_s = baseline_s
        self.closed_until_s = -math.inf  # intervals before this are written
        self.last_end_s: float | None = None  # end of the last sample taken
        self.committed_end_s: float | None = None
        self._generation: int | None = None
        self._pending_intervals: list[dict[str, Any]] = []
        self._pending_telemetry: list[dict[str, Any]] = []
        self._last_flush_s = -math.inf
        self._last_prune_s = -math.inf
        self._broken = False
        self.skipped_samples = 0
        self.flushes = 0
        self._load_checkpoint()

    @classmethod
    def open(cls, url: str, site: SiteInfo, econ: LedgerEconomics,
             **kw: Any) -> LedgerWriter:
        engine = make_engine(url, writer=True)
        migrate(engine)
        return cls(engine, site, econ, **kw)

    @property
    def resume_after_s(self) -> float | None:
        """End of the last sample the database has (None: nothing yet)."""
        return self.committed_end_s

    # -- checkpoint -------------------------------------------------------------------------

    def _load_checkpoint(self) -> None:
        t = table(LedgerState)
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.site == self.site_pk)).mappings().first()
        if row is None:
            return
        st = json.loads(row["state"])
        if st.get("v") != STATE_VERSION:
            raise RuntimeError(f"ledger checkpoint version {st.get('v')} is not "
                               f"{STATE_VERSION}")
        self._generation = int(row["generation"])
        self.last_end_s = self.committed_end_s = float(row["last_end_s"])
        self._last_flush_s = self.last_end_s
        self.closed_until_s = float(st["closed_until_s"]) if st["closed_until_s"] is not None \
            else -math.inf
        self.acc = IntervalAccumulator.from_state(st["acc"]) if st["acc"] else None
        self.tel = TelemetryBucket.from_state(st["tel"]) if st["tel"] else None
        self.dr = DrBaseline.from_state(self._baseline_s, st["dr"])
        self._last_prune_s = float(st.get("last_prune_s", -math.inf) or -math.inf)
        log.info("ledger %s resumes after %s (open interval %s)", self.site.site_id,
                 self.last_end_s, self.acc.start_s if self.acc else None)

    def _state_json(self) -> str:
        return json.dumps({
            "v": STATE_VERSION,
            "closed_until_s": None if math.isinf(self.closed_until_s) else self.closed_until_s,
            "acc": self.acc.state() if self.acc else None,
            "tel": self.tel.state() if self.tel else None,
            "dr": self.dr.state(),
            "last_prune_s": None if math.isinf(self._last_prune_s) else self._last_prune_s,
        }, separators=(",", ":"))

    # -- samples ----------------------------------------------------------------------------

    def add(self, s: Sample) -> None:
        """Account one sample (skipped if the database already has it)."""
        if self._broken:
            raise LedgerConflict("this writer lost its ledger to another writer")
        _check_sample(s)
        if math.isinf(self._last_flush_s):
            self._last_flush_s = s.start_s  # the first flush comes one interval in
        if self.last_end_s is not None:
            if s.end_s <= self.last_end_s + _EPS_S:
                self.skipped_samples += 1
                return
            if s.start_s < self.last_end_s - _EPS_S:
                s = split_sample(s, self.last_end_s)[1]
        step = self.site.interval_s
        while True:
            cut = interval_start(s.start_s, step, self.tz) + step
            if s.end_s <= cut + _EPS_S:
                self._take(s)
                break
            head, s = split_sample(s, cut)
            self._take(head)
        if self.last_end_s is not None and \
                self.last_end_s - self._last_flush_s >= self.flush_interval_s:
            self.flush()

    def add_many(self, samples: Iterable[Sample]) -> None:
        for s in samples:
            self.add(s)

    def _take(self, s: Sample) -> None:
        start = interval_start(s.start_s, self.site.interval_s, self.tz)
        if start < self.closed_until_s:
            raise ValueError(f"sample at {s.start_s} falls in an interval already closed "
                             f"(before {self.closed_until_s})")
        if self.acc is not None and self.acc.start_s != start:
            self._close_interval()
        if self.acc is None:
            self.acc = IntervalAccumulator(start, self.site.interval_s)
        self.acc.add(s, self.econ, self.dr)
        step = self.site.telemetry_step_s
        while step:  # telemetry steps divide the interval: split here only (floats, cheap)
            tstart = interval_start(s.start_s, step, self.tz)
            if self.tel is not None and self.tel.start_s != tstart:
                self._pending_telemetry.append(self.tel.row())
                self.tel = None
            if self.tel is None:
                self.tel = TelemetryBucket(tstart, step)
            if s.end_s <= tstart + step + _EPS_S:
                self.tel.add(s)
                break
            head, s = split_sample(s, tstart + step)
            self.tel.add(head)
        self.last_end_s = s.end_s

    def _close_interval(self) -> None:
        assert self.acc is not None
        row = self.acc.close(self.econ)
        row.update(site=self.site_pk, rev=0, supersedes_id=None, source=self.source,
                   reason=None if row["covered_s"] == row["duration_s"] else
                   f"partial: {float(row['covered_s']):g} s of {row['duration_s']} s covered",
                   recorded_at_s=int(self.clock()))
        self._pending_intervals.append(row)
        self.closed_until_s = self.acc.end_s
        self.acc = None

    # -- writing ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything closed so far and the checkpoint, in one transaction."""
        if self._broken:
            raise LedgerConflict("this writer lost its ledger to another writer")
        if self.last_end_s is None or (self.last_end_s == self.committed_end_s
                                       and not self._pending_intervals
                                       and not self._pending_telemetry):
            return
        st, iv, te = table(LedgerState), table(LedgerInterval), table(LedgerTelemetry)
        now = int(self.clock())
        prune = (self.retention_days > 0 and
                 self.last_end_s - self._last_prune_s >= 86_400)
        if prune:
            self._last_prune_s = self.last_end_s
        values = {"last_end_s": self.last_end_s, "state": self._state_json(),
                  "updated_at_s": now}
        try:
            with self.engine.begin() as conn:
                if self._generation is None:
                    conn.execute(insert(st).values(site=self.site_pk, generation=1, **values))
                else:
                    res = conn.execute(
                        update(st).where(st.c.site == self.site_pk,
                                         st.c.generation == self._generation)
                        .values(generation=self._generation + 1, **values))
                    if res.rowcount != 1:
                        raise LedgerConflict(
                            f"the ledger of site {self.site.site_id!r} was advanced by another "
                            "writer; stopping this one")
                if self._pending_intervals:
                    conn.execute(insert(iv), self._pending_intervals)
                if self._pending_telemetry:
                    rows = [dict(r, site=self.site_pk) for r in self._pending_telemetry]
                    conn.execute(insert(te), rows)
                if prune:
                    cutoff = self.last_end_s - self.retention_days * 86_400
                    conn.execute(delete(te).where(te.c.site == self.site_pk,
                                                  te.c.start_s < cutoff))
        except (LedgerConflict, IntegrityError) as err:
            self._broken = True
            log.error("ledger write refused for %s: %s", self.site.site_id, err)
            if isinstance(err, LedgerConflict):
                raise
            raise LedgerConflict(f"ledger rows already written by another writer: "
                                 f"{err.orig}") from err
        self._generation = 1 if self._generation is None else self._generation + 1
        self.committed_end_s = self.last_end_s
        self._last_flush_s = self.last_end_s
        self._pending_intervals.clear()
        self._pending_telemetry.clear()
        self.flushes += 1

    def close(self, finalize: bool = False) -> None:
        """Flush; with `finalize`, also close the open interval and telemetry step (end of
        a simulation). A live controller shutting down leaves them open, to be completed
        after the restart."""
        if finalize and not self._broken:
            if self.acc is not None:
                self._close_interval()
            if self.tel is not None:
                self._pending_telemetry.append(self.tel.row())
                self.tel = None
        if not self._broken:
            self.flush()
        self.engine.dispose()


_NUMERIC = ("start_s", "duration_s", "pv_w", "load_w", "grid_w", "battery_w", "miner_w",
            "miner_from_pv_w", "miner_from_battery_w", "miner_from_grid_w", "heat_to_tank_w",
            "heat_from_tank_w", "backup_heat_w", "terahashes")


def _check_sample(s: Sample) -> None:
    bad = [f for f in _NUMERIC if not math.isfinite(getattr(s, f))]
    if not bad and s.duration_s <= 0:
        bad = ["duration_s (must be > 0)"]
    if not bad and (s.terahashes < 0 or s.miner_w < 0):
        bad = ["terahashes/miner_w (must be >= 0)"]
    if not bad and s.dr_request not in ("", "reduce", "absorb"):
        bad = [f"dr_request ({s.dr_request!r} is not '', 'reduce' or 'absorb')"]
    if not (s.import_price.is_finite() and s.export_price.is_finite()):
        bad.append("import_price/export_price")
    if bad:
        log.warning("refused ledger sample at %s: bad %s", s.start_s, ", ".join(bad))
        raise ValueError(f"ledger sample at {s.start_s}: bad {', '.join(bad)}")
