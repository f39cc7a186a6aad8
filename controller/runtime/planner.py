"""The day-ahead plan inside `hearth run` (`[plan] enabled = true`).

- `LiveForecast` is the plan's source on a real site: PV, house load and heat demand by
  persistence from the service's own history (the same 15-min slot on the last day seen,
  up to a week back), prices from the price feed (a day-ahead `prices_file` or
  `cmd/prices`; the horizon ends where the known prices end, at most `horizon_h`), and the
  value of a terahash from `[bitcoin]`. Heat demand is not metered: it is what the tank's
  energy balance says the building drew (miner heat in − stored − standing loss).
- `RuntimePlanner` is a publisher (it sees every tick record) and a command hook (it
  writes the current slot's tank target and `plan_min_w` into the overrides). The
  pure `Planner` runs on a worker thread: a re-plan (~10-100 ms) never delays a tick; the
  hook only reads the last output (one reference). The plan owns its own two override
  fields (`plan_tank_target_c`, `plan_min_w`) and rewrites them every tick; a person's
  `cmd/tank_target` (or the HMI's) is a field of its own and wins over the plan's.
- The plan is published as a JSON document (`as_json`): MQTT `state/plan` (retained) and
  the HMI's `GET /api/plan`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np

from controller.config.models import SiteConfig
from controller.control.overrides import Overrides
from controller.economics.hashprice import BtcTerms
from controller.plan.lp import Plan, PlanInputs
from controller.plan.planner import NO_PLAN, Planner, PlanOutput
from controller.plan.value import network_value_per_th
from controller.runtime.hindsight import Hindsight
from controller.runtime.ports import TickRecord
from controller.runtime.prices import PriceFeed

log = logging.getLogger(__name__)

HISTORY_DAYS = 8
DEFAULT_LOAD_W = 300.0


class LiveForecast:
    """Persistence from measured history + the price feed (a `PlanSource`)."""

    def __init__(self, cfg: SiteConfig, feed: PriceFeed,
                 terms_at: Callable[[float], BtcTerms] | None = None) -> None:
        self.cfg = cfg
        self.feed = feed
        # What mining is worth when the plan is made: the terms the controller decides on
        # (the market feed while fresh, else the static [bitcoin]); None: always static.
        self.terms_at = terms_at
        self.step_s = float(cfg.plan.step_s)
        self.horizon_h = cfg.plan.horizon_h
        self.day = round(86_400 / self.step_s)
        self.vth = network_value_per_th(cfg)
        self._hist: dict[int, list[float]] = {}  # slot -> [pv J, load J, heat J, s, heat s]

    def observe(self, t_s: float, pv_w: float | None, load_w: float | None,
                heat_w: float | None, dt_s: float) -> None:
        if pv_w is None or load_w is None or dt_s <= 0:
            return
        k = int(t_s // self.step_s)
        h = self._hist.get(k)
        if h is None:
            h = self._hist[k] = [0.0, 0.0, 0.0, 0.0, 0.0]
            for old in [s for s in self._hist if s < k - HISTORY_DAYS * self.day]:
                del self._hist[old]
        h[0] += pv_w * dt_s
        h[1] += load_w * dt_s
        h[3] += dt_s
        if heat_w is not None:
            h[2] += heat_w * dt_s
            h[4] += dt_s

    def observed(self, k: int) -> tuple[float, float, float, float] | None:
        """Slot k as measured: mean PV, load and heat W, and the seconds seen."""
        h = self._hist.get(k)
        if h is None or h[3] <= 0:
            return None
        return h[0] / h[3], h[1] / h[3], h[2] / h[4] if h[4] > 0 else 0.0, h[3]

    def _persist(self, k: int, now_k: int) -> tuple[float, float, float]:
        for back in range(1, HISTORY_DAYS + 1):
            j = k - back * self.day
            h = self._hist.get(j)
            if j < now_k and h is not None and h[3] >= 0.5 * self.step_s:
                heat = h[2] / h[4] if h[4] > 0 else 0.0
                return h[0] / h[3], h[1] / h[3], max(heat, 0.0)
        return 0.0, self._mean_load(), 0.0

    def _mean_load(self) -> float:
        secs = sum(h[3] for h in self._hist.values())
        return sum(h[1] for h in self._hist.values()) / secs if secs > 0 else DEFAULT_LOAD_W

    def horizon_end_s(self, t_s: float, prices_known: bool = True) -> float:
        end = t_s + self.horizon_h * 3600.0
        s = self.feed.series
        if prices_known and s is not None and s.at(t_s) is not None:
            end = min(end, s.end_s)
        # Whole slots only.
        return math.floor(end / self.step_s) * self.step_s

    def inputs(self, t_s: float, tank_c: float | None, soc_pct: float | None,
               prices_known: bool = True) -> PlanInputs | None:
        a = int(t_s // self.step_s)
        b = int(self.horizon_end_s(t_s, prices_known) // self.step_s)
        if b <= a:
            b = a + 1
        n = b - a
        pv, load, heat = np.zeros(n), np.zeros(n), np.zeros(n)
        imp, exp = np.zeros(n), np.zeros(n)
        for i in range(n):
            pv[i], load[i], heat[i] = self._persist(a + i, a)
            p = self.feed.prices_at((a + i) * self.step_s)
            imp[i], exp[i] = p.import_per_kwh, p.export_per_kwh
        vth = self.vth if self.terms_at is None else \
            float(self.terms_at(t_s).value_per_th_s())
        return PlanInputs(a * self.step_s, self.step_s, pv, load, heat, imp, exp,
                          np.full(n, vth), tank_start_c=tank_c, soc_start_pct=soc_pct)


def plan_json(plan: Plan | None, out: PlanOutput, planner: Planner, currency: str,
              hindsight: dict[str, Any] | None = None) -> dict[str, Any]:
    """The plan as the HMI and MQTT show it."""
    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")

    doc: dict[str, Any] = {
        "enabled": True,
        "currency": currency,
        "replans": planner.replans,
        "reasons": dict(planner.reasons),
        "last_reason": planner.last_reason,
        "tank_target_c": None if out.tank_target_c is None else round(out.tank_target_c, 2),
        "plan_min_w": None if out.plan_min_w is None else round(out.plan_min_w),
        "plan": None,
        "hindsight": hindsight,  # the last whole UTC day: realised vs best (regret)
    }
    if plan is None:
        return doc
    def r(x: float, nd: int = 0) -> float | None:
        return None if not math.isfinite(x) else round(float(x), nd) + 0.0  # no -0.0

    doc["plan"] = {
        "start": iso(plan.start_s),
        "step_s": plan.step_s,
        "expected_value": f"{plan.value:.2f}",
        "solve_ms": round(plan.solve_s * 1e3, 1),
        "slots": [
            {"start": iso(plan.start_s + k * plan.step_s),
             "miner_w": r(plan.miner_w[k]), "import_w": r(plan.import_w[k]),
             "export_w": r(plan.export_w[k]), "tank_c": r(plan.tank_c[k], 2),
             "soc_pct": r(plan.soc_pct[k], 1), "backup_heat_w": r(plan.backup_heat_w[k]),
             "import_price": r(plan.import_price[k], 5),
             "export_price": r(plan.export_price[k], 5)}
            for k in range(plan.n)
        ],
    }
    return doc


class _Sample(NamedTuple):
    t_s: float
    pv_w: float | None
    load_w: float | None
    heat_w: float | None
    tank_c: float | None
    dt_s: float
    grid_w: float | None
    hashrate_ths: float
    import_price: float | None
    export_price: float | None
    soc_pct: float | None
    btc_terms: BtcTerms | None = None  # what the controller decided on (None: static)


class RuntimePlanner:
    """Publisher + command hook around the pure `Planner`, re-planning on a worker thread."""

    def __init__(self, cfg: SiteConfig, feed: PriceFeed,
                 terms_at: Callable[[float], BtcTerms] | None = None) -> None:
        self.cfg = cfg
        self.feed = feed
        self.source = LiveForecast(cfg, feed, terms_at)
        pc = cfg.plan
        self.planner = Planner(cfg, self.source, pc.deviation_kwh,
                               min_replan_interval_s=pc.min_replan_interval_s)
        self.output: PlanOutput = NO_PLAN
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # on every new plan
        self._samples: deque[_Sample] = deque(maxlen=10_000)
        self.hindsight = Hindsight(cfg, float(pc.step_s))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._feed_version = -1
        self._last_t: float | None = None
        self._last_tank: float | None = None
        self._doc: dict[str, Any] = plan_json(None, NO_PLAN, self.planner, cfg.site.currency)
        self._tank_names = frozenset(m.name for m in cfg.miners if m.heats_tank)
        feed.listeners.append(lambda _s: self._wake.set())
        self._thread = threading.Thread(target=self._run, name="planner", daemon=True)
        self._thread.start()

    # -- the tick side (never waits) -----------------------------------------------------------

    def __call__(self, ov: Overrides, now_s: float) -> Overrides:
        out = self.output  # NO_PLAN (no prices yet, or they ran out): both fields clear
        return ov._replace(plan_tank_target_c=out.tank_target_c, plan_min_w=out.plan_min_w)

    def publish(self, tick: TickRecord) -> None:
        m = tick.measurements
        t = tick.at_utc.timestamp()
        dt = 0.0 if self._last_t is None else max(t - self._last_t, 0.0)
        self._last_t = t
        g, pv, bat = m.grid_power_w, m.pv_power_w, m.battery_power_w
        miners = sum(r.power_w for r in m.miners.values())
        load = None
        if g is not None and pv is not None:
            load = max(pv.value + g.value - (bat.value if bat is not None else 0.0) - miners,
                       0.0)
        tank = m.tank_temp_c.value if m.tank_temp_c is not None else None
        heat = None
        tk = self.cfg.tank
        if tk is not None and tank is not None and self._last_tank is not None and dt > 0:
            heat_in = tk.miner_heat_fraction * sum(
                r.power_w for n, r in m.miners.items() if n in self._tank_names)
            stored = tk.heat_capacity_j_per_k * (tank - self._last_tank) / dt
            heat = heat_in - stored - tk.heat_loss_w_per_k * (tank - tk.ambient_c)
        self._last_tank = tank
        soc = m.soc_pct.value if m.soc_pct is not None else None
        self._samples.append(_Sample(
            t, None if pv is None else pv.value, load, heat, tank, dt,
            None if g is None else g.value, sum(r.hashrate_ths for r in m.miners.values()),
            m.import_price_per_kwh, m.export_price_per_kwh, soc, m.btc_terms))
        self._soc = soc
        self._wake.set()

    async def close(self) -> None:
        self._stop.set()
        self._wake.set()

    # -- the worker ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(5.0)
            self._wake.clear()
            try:
                self._drain()
            except Exception:  # a planner bug must never take the service down
                log.exception("planner failed")

    def _drain(self) -> None:
        if self.feed.version != self._feed_version:
            if self._feed_version >= 0:
                self.planner.invalidate("prices")
            self._feed_version = self.feed.version
        replans = self.planner.replans
        judged = False
        while self._samples:
            sm = self._samples.popleft()
            t, pv, load, heat, tank, dt = sm.t_s, sm.pv_w, sm.load_w, sm.heat_w, sm.tank_c, sm.dt_s
            self.source.observe(t, pv, load, heat, dt)
            self.hindsight.observe(t, dt, sm.grid_w, sm.hashrate_ths, sm.import_price,
                                   sm.export_price, tank, sm.soc_pct, sm.btc_terms)
            day = self.hindsight.due_day(t)
            if day is not None:
                judged = self.hindsight.judge(day, self.source.observed,
                                              self.feed.prices_at) is not None or judged
            surplus = None if pv is None or load is None else pv - load
            self.output = self.planner.update(t, tank, getattr(self, "_soc", None), surplus,
                                              heat, dt)
        if self.planner.replans != replans:
            plan = self.planner.plan
            if plan is not None:
                log.info("plan: re-planned (%s) %d slots from %s, expected value %.2f %s, "
                         "solved in %.0f ms", self.planner.last_reason, plan.n,
                         datetime.fromtimestamp(plan.start_s, UTC).isoformat(timespec="minutes"),
                         plan.value, self.cfg.site.currency, plan.solve_s * 1e3)
        if self.planner.replans != replans or self.output is not self._doc_out or judged:
            self._publish_doc()

    _doc_out: PlanOutput | None = None

    def _publish_doc(self) -> None:
        self._doc_out = self.output
        self._doc = plan_json(self.planner.plan, self.output, self.planner,
                              self.cfg.site.currency, self.hindsight.last)
        for fn in self.listeners:
            try:
                fn(self._doc)
            except Exception:
                log.exception("plan listener %r failed", fn)

    def as_json(self) -> dict[str, Any]:
        return self._doc


def mqtt_plan_listener(bridge: Any) -> Callable[[dict[str, Any]], None]:
    """Publish each new plan document on `hearth/<site>/state/plan` (retained, with the
    state expiry), from the planner's thread (paho's publish only queues)."""
    import json

    from controller.bridge.connection import publish_properties

    def send(doc: dict[str, Any]) -> None:
        if not bridge.connected:
            return
        props = publish_properties()
        assert bridge.config.mqtt is not None
        props.MessageExpiryInterval = bridge.config.mqtt.state_expiry_s
        bridge._client.publish(bridge.topics.state("plan"), json.dumps(doc).encode(), qos=1,
                               retain=True, properties=props)

    return send
