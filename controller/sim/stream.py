"""What a simulation hands out as it runs: blocks of consecutive rows, and the consumers
that turn them into the summary's sums, the timeline CSV or (on request) whole columns.

Memory stays flat in the trace's length: the runner keeps one block of per-row records
at a time (`BLOCK_ROWS`), each consumer keeps only its running figures. Whole-column
results (`SimResult.columns`) are one consumer among others (`ColumnKeeper`), for
callers that want arrays of a short trace.

The safety checks (import-limit and min on/off violations) are defined here once, on a
block with the state they carry between blocks; `controller.sim.report` runs the same
code over a whole kept result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from controller.config.models import SiteConfig
from controller.economics.hashprice import SATS_PER_BTC
from controller.outfile import PendingFile
from controller.plan.value import trace_terms
from controller.trace.reader import Trace

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

BLOCK_ROWS = 8192
"""Rows per block: big enough that numpy's per-call cost vanishes, small enough that the
block's Python records (~1 kB a row) stay a few MB."""

TIMELINE_COLUMNS = (
    "time", "pv_w", "load_w", "miner_w", "miner_target_w", "battery_w", "soc_pct", "grid_w",
    "tank_c", "heat_to_tank_w", "heat_demand_w", "backup_heat_w", "import_price",
    "export_price", "mode",
)


@dataclass
class Block:
    """Rows `start .. start + len(trace)` of a run: the trace's slice and what happened.

    `columns` are step averages (soc and tank at the end of the step), the same names as
    `SimResult.columns`; `forced_off` and row numbers elsewhere count from the run's start.
    """

    start: int
    trace: Trace
    columns: dict[str, FloatArray]
    mode: list[str]
    limiter: list[str]
    miner_run: dict[str, BoolArray]
    miner_energy_j: dict[str, FloatArray]
    forced_off: dict[str, list[int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.trace)


class SimConsumer(Protocol):
    """Gets every block in order, then `close()` once the run has ended normally."""

    def block(self, b: Block) -> None: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------ safety checks


def import_violation_rows(b: Block, import_limit_w: float) -> list[int]:
    """Rows (run-wide numbers) where the miners' *commanded* power would still push import
    past the limit.

    Import caused by the house alone is not the miners' fault; the miners' shutdown tail
    inside the step they were told to stop is hardware, not a decision. What counts is a
    command that, fully obeyed, would still overload the connection.
    """
    c = b.columns
    with_targets = c["grid_w"] - c["miner_w"] + c["miner_target_w"]
    bad = ((c["grid_w"] > import_limit_w + 1.0) & (with_targets > import_limit_w + 1.0)
           & (c["miner_target_w"] > 0))
    return [b.start + int(i) for i in np.flatnonzero(bad)]


class OnOffCheck:
    """(miner, row, 'on'|'off') where a switch came too soon and no hard limit forced it;
    fed block by block, it carries each miner's last state and switch time."""

    def __init__(self, cfg: SiteConfig, step_s: float) -> None:
        self.cfg = cfg
        self.step_s = step_s
        self._prev = {m.name: False for m in cfg.miners}
        self._last_switch = {m.name: -math.inf for m in cfg.miners}

    def feed(self, b: Block) -> list[tuple[str, int, str]]:
        out: list[tuple[str, int, str]] = []
        dt = self.step_s
        for m in self.cfg.miners:
            run = b.miner_run[m.name]
            prev = self._prev[m.name]
            last_switch = self._last_switch[m.name]
            forced = set(b.forced_off.get(m.name, ()))
            for j in np.flatnonzero(np.diff(np.concatenate(([prev], run))).astype(bool)):
                i = b.start + int(j)
                now = float(i) * dt
                state = bool(run[j])
                if state == prev:
                    continue
                held = now - last_switch
                if state and held < m.min_off_s - 1e-6:
                    out.append((m.name, i, "on"))
                if not state and held < m.min_on_s - 1e-6 and i not in forced:
                    out.append((m.name, i, "off"))
                last_switch, prev = now, state
            self._prev[m.name], self._last_switch[m.name] = prev, last_switch
        return out


# ------------------------------------------------------------------ consumers


_SUMMED = ("pv_w", "curtailed_w", "load_w", "surplus_w", "miner_w", "miner_from_pv_w",
           "miner_from_battery_w", "miner_from_grid_w", "heat_demand_w", "heat_to_tank_w",
           "heat_from_tank_w", "backup_heat_w", "unserved_w")


class Totals:
    """Running sums behind the summary (`controller.sim.report.summarize`): power sums in
    W·rows (NaN counts as zero), money in currency·s/h, counts of rows."""

    def __init__(self, cfg: SiteConfig, step_s: float) -> None:
        self.cfg = cfg
        self.step_s = step_s
        self.steps = 0
        self.sums = dict.fromkeys(_SUMMED, 0.0)
        self.pv_available = 0.0
        self.from_surplus = 0.0
        self.capturable = 0.0
        self.export = 0.0
        self.import_ = 0.0
        self.btc_value = 0.0  # currency·s/s: multiply by step_s
        self.btc_sats = 0.0  # sats·s/s: multiply by step_s
        self.import_cost = 0.0  # W·currency/kWh per row: × step_s / 3.6e6
        self.export_revenue = 0.0
        self.tank_rows_above = 0
        self.tank_rows_below = 0
        self.tank_max_c = -math.inf
        self.tank_last_c = math.nan
        self.soc_min_pct = math.inf
        self.miner_energy_j = {m.name: 0.0 for m in cfg.miners}
        self.import_violations = 0
        self.on_off_violations = 0
        self._on_off = OnOffCheck(cfg, step_s)

    def block(self, b: Block) -> None:
        c, cfg = b.columns, self.cfg
        self.steps += len(b)
        for name in _SUMMED:
            self.sums[name] += float(np.nansum(c[name]))
        self.pv_available += float(np.nansum(b.trace.pv_w))
        capturable_w = np.minimum(c["surplus_w"], cfg.miner_capacity_w)
        self.capturable += float(np.nansum(capturable_w))
        self.from_surplus += float(np.nansum(np.minimum(c["miner_from_pv_w"], capturable_w)))
        grid = c["grid_w"]
        imp = np.maximum(grid, 0.0)
        exp = np.maximum(-grid, 0.0)
        self.import_ += float(np.nansum(imp))
        self.export += float(np.nansum(exp))
        terms = trace_terms(cfg, b.trace)  # sats per TH and BTC price of each step
        sats = c["hashrate_ths"] * terms.sats_per_th
        self.btc_sats += float(np.sum(sats))
        self.btc_value += float(np.sum(sats * terms.btc_price)) / SATS_PER_BTC
        self.import_cost += float(np.sum(imp * b.trace.import_price))
        self.export_revenue += float(np.sum(exp * b.trace.export_price))
        if cfg.tank is not None and len(b):
            tank = c["tank_c"]
            self.tank_rows_above += int(np.sum(tank > cfg.tank.max_c))
            self.tank_rows_below += int(np.sum(tank < cfg.tank.min_c))
            self.tank_max_c = max(self.tank_max_c, float(np.nanmax(tank)))
            self.tank_last_c = float(tank[-1])
        if cfg.battery is not None and len(b):
            self.soc_min_pct = min(self.soc_min_pct, float(np.nanmin(c["soc_pct"])))
        for name, e in b.miner_energy_j.items():
            self.miner_energy_j[name] += float(e.sum())
        self.import_violations += len(import_violation_rows(b, cfg.site.import_limit_w))
        self.on_off_violations += len(self._on_off.feed(b))

    def close(self) -> None:
        pass

    def kwh(self, name: str) -> float:
        """Energy of a summed column."""
        return self.sums[name] * self.step_s / 3.6e6


class ColumnKeeper:
    """Keeps every block's arrays and joins them at the end (`SimResult.columns`,
    `.mode`, ...): for callers that need whole arrays of a short trace."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.columns: dict[str, FloatArray] = {}
        self.mode: list[str] = []
        self.limiter: list[str] = []
        self.miner_run: dict[str, BoolArray] = {}
        self.miner_energy_j: dict[str, FloatArray] = {}
        self.traces: list[Trace] = []

    def block(self, b: Block) -> None:
        self.blocks.append(b)

    def close(self) -> None:
        bs = self.blocks
        if not bs:
            return
        self.columns = {k: np.concatenate([b.columns[k] for b in bs]) for k in bs[0].columns}
        self.miner_run = {k: np.concatenate([b.miner_run[k] for b in bs])
                          for k in bs[0].miner_run}
        self.miner_energy_j = {k: np.concatenate([b.miner_energy_j[k] for b in bs])
                               for k in bs[0].miner_energy_j}
        for b in bs:
            self.mode.extend(b.mode)
            self.limiter.extend(b.limiter)
        self.traces = [b.trace for b in bs]
        self.blocks = []


def _fmt(a: FloatArray, spec: str) -> list[str]:
    out: list[str] = np.char.mod(spec, a).tolist()
    return ["" if s == "nan" else s for s in out]


def _spec(name: str) -> str:
    return "%.5f" if name.endswith("price") else "%.2f" if name in ("soc_pct", "tank_c") \
        else "%.1f"


def timeline_rows(time_s: FloatArray, columns: dict[str, FloatArray],
                  mode: Sequence[str]) -> str:
    """The timeline CSV lines (no header) of these rows."""
    times = np.datetime_as_string(time_s.astype("datetime64[s]"), unit="s")
    cols: list[list[str]] = [[f"{t}Z" for t in times.tolist()]]
    for name in TIMELINE_COLUMNS[1:-1]:
        cols.append(_fmt(columns[name], _spec(name)))
    cols.append(list(mode))
    return "".join(",".join(row) + "\n" for row in zip(*cols, strict=True))


TIMELINE_HEADER = ",".join(TIMELINE_COLUMNS) + "\n"


class TimelineWriter:
    """Writes the timeline CSV (gzip if the name ends in .gz) as the blocks come. The file
    appears under its name only when the run has ended (`close`): a failed run leaves no
    half timeline behind."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = PendingFile(self.path, compress=self.path.suffix == ".gz")
        self._file.write(TIMELINE_HEADER)

    def block(self, b: Block) -> None:
        self._file.write(timeline_rows(b.trace.time_s, b.columns, b.mode))

    def close(self) -> None:
        self._file.close()

    def abort(self) -> None:
        """Drop the partial file (the run failed)."""
        self._file.abort()
