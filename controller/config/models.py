"""Site configuration: one TOML file, validated by these pydantic models.

Every field carries its unit in its name. Cross-field rules (min < target < max, reserve
below priority, ...) live in model validators so `hearth config check` reports them with
the TOML path of the offending field.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator, model_validator

from controller.config.base import Strict
from controller.config.devices import DeviceConfig
from controller.config.hmi import HmiSection
from controller.config.ledger import LedgerSection
from controller.config.market import MarketFeedSection, feed_currency_problem
from controller.config.mqtt import MqttSection
from controller.config.openadr import OpenAdrSection
from controller.config.plan import PlanSection
from controller.config.satellite import SatelliteSection
from controller.config.schedule import ScheduleSection
from controller.config.service import ServiceSection


def _earlier(info: ValidationInfo, name: str) -> Any:
    """A field validated before this one (None if it failed its own validation)."""
    return info.data.get(name)


Watts = Annotated[float, Field(ge=0)]
# The largest single mining unit sold (hydro-cooled ASICs draw 5-12 kW): a miner entry
# above this is a typo or an attack, not a machine.
MAX_MINER_W = 15_000.0
Percent = Annotated[float, Field(ge=0, le=100)]


class SiteSection(Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")] = Field(
        description="Site id used in MQTT topics (hearth/<id>/...): lowercase, digits, - and _"
    )
    name: str = ""
    timezone: str = Field(default="UTC", description="IANA zone, e.g. Europe/Brussels")
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "EUR"
    latitude_deg: Annotated[float, Field(ge=-90, le=90)] = 50.9
    longitude_deg: Annotated[float, Field(ge=-180, le=180)] = 6.95
    grid_import_limit_w: Annotated[float, Field(gt=0)] = Field(
        description="Contractual or configured import limit at the meter (W)"
    )
    grid_export_limit_w: Watts = Field(
        description="Feed-in limit; the inverter curtails PV above it (W)"
    )
    main_fuse_a: Annotated[float, Field(gt=0)] = Field(description="Main fuse rating per phase (A)")
    phases: Literal[1, 3] = 3
    nominal_voltage_v: Annotated[float, Field(gt=0)] = 230.0

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name, e.g. "
                             "'Europe/Brussels')") from None
        return v

    @property
    def main_fuse_limit_w(self) -> float:
        return self.main_fuse_a * self.nominal_voltage_v * self.phases

    @property
    def import_limit_w(self) -> float:
        """The import the miners must never cause: the lower of contract and fuse."""
        return min(self.grid_import_limit_w, self.main_fuse_limit_w)


class PvSection(Strict):
    peak_w: Annotated[float, Field(gt=0)] = Field(description="Array peak power at STC (Wp)")
    inverter_max_w: Annotated[float, Field(gt=0)] = Field(description="Inverter AC limit (W)")
    tilt_deg: Annotated[float, Field(ge=0, le=90)] = 30.0
    azimuth_deg: Annotated[float, Field(ge=0, lt=360)] = Field(
        default=180.0, description="Compass bearing the array faces (180 = south)"
    )
    temp_coeff_per_c: Annotated[float, Field(le=0, ge=-0.01)] = -0.0037
    noct_c: Annotated[float, Field(ge=30, le=60)] = 45.0
    system_losses_pct: Annotated[float, Field(ge=0, lt=100)] = 14.0


class BatterySection(Strict):
    capacity_kwh: Annotated[float, Field(gt=0)]
    max_charge_w: Annotated[float, Field(gt=0)]
    max_discharge_w: Annotated[float, Field(gt=0)]
    round_trip_efficiency: Annotated[float, Field(gt=0.5, le=1.0)] = 0.9
    min_soc_pct: Percent = Field(default=5.0, description="The battery's own lower bound (BMS)")
    max_soc_pct: Percent = 100.0
    reserve_soc_pct: Percent = Field(
        default=20.0, description="The miners never take the battery below this"
    )
    priority_soc_pct: Percent = Field(
        default=80.0, description="Below this, surplus charges the battery before the miners"
    )
    miners_may_discharge_above_soc_pct: Percent | None = Field(
        default=None,
        description="If set, the miners may draw from the battery while SoC is above this",
    )
    initial_soc_pct: Percent = 50.0

    @field_validator("max_soc_pct")
    @classmethod
    def _max_above_min(cls, v: float, info: ValidationInfo) -> float:
        lo = _earlier(info, "min_soc_pct")
        if lo is not None and v <= lo:
            raise ValueError(f"must be above min_soc_pct ({lo})")
        return v

    @field_validator("reserve_soc_pct")
    @classmethod
    def _reserve_above_min(cls, v: float, info: ValidationInfo) -> float:
        lo = _earlier(info, "min_soc_pct")
        if lo is not None and v < lo:
            raise ValueError(f"must be at least min_soc_pct ({lo})")
        return v

    @field_validator("priority_soc_pct")
    @classmethod
    def _priority_above_reserve(cls, v: float, info: ValidationInfo) -> float:
        lo = _earlier(info, "reserve_soc_pct")
        if lo is not None and v < lo:
            raise ValueError(f"must be at least reserve_soc_pct ({lo})")
        return v

    @field_validator("miners_may_discharge_above_soc_pct")
    @classmethod
    def _discharge_above_reserve(cls, v: float | None, info: ValidationInfo) -> float | None:
        lo = _earlier(info, "reserve_soc_pct")
        if v is not None and lo is not None and v < lo + 2:
            raise ValueError(f"must be at least reserve_soc_pct + 2 ({lo + 2})")
        return v

    @field_validator("initial_soc_pct")
    @classmethod
    def _initial_in_bounds(cls, v: float, info: ValidationInfo) -> float:
        lo, hi = _earlier(info, "min_soc_pct"), _earlier(info, "max_soc_pct")
        if lo is not None and hi is not None and not lo <= v <= hi:
            raise ValueError(f"must lie between min_soc_pct and max_soc_pct ({lo}..{hi})")
        return v


class TankSection(Strict):
    volume_l: Annotated[float, Field(gt=0, le=100_000)]
    target_c: Annotated[float, Field(ge=5, le=95)]
    min_c: Annotated[float, Field(ge=0, le=95)] = Field(
        description="Below this the tank cannot serve the building; the backup heater does"
    )
    max_c: Annotated[float, Field(ge=5, le=98)] = Field(description="Never exceeded (hard limit)")
    heat_loss_w_per_k: Annotated[float, Field(ge=0)] = 2.5
    ambient_c: float = 18.0
    initial_c: float | None = None
    miner_heat_fraction: Annotated[float, Field(gt=0, le=1)] = Field(
        default=0.95, description="Share of miner electrical power that reaches the tank"
    )

    @field_validator("min_c")
    @classmethod
    def _min_below_target(cls, v: float, info: ValidationInfo) -> float:
        target = _earlier(info, "target_c")
        if target is not None and not v < target:
            raise ValueError(f"must be below target_c ({target})")
        return v

    @field_validator("max_c")
    @classmethod
    def _max_above_target(cls, v: float, info: ValidationInfo) -> float:
        target = _earlier(info, "target_c")
        if target is not None and not v > target:
            raise ValueError(f"must be above target_c ({target})")
        return v

    @field_validator("initial_c")
    @classmethod
    def _initial_below_max(cls, v: float | None, info: ValidationInfo) -> float | None:
        hi = _earlier(info, "max_c")
        if v is not None and hi is not None and v >= hi:
            raise ValueError(f"must be below max_c ({hi})")
        return v

    @property
    def heat_capacity_j_per_k(self) -> float:
        """Water at ~1 kg/L and 4186 J/(kg·K)."""
        return self.volume_l * 4186.0

    @property
    def start_c(self) -> float:
        return self.initial_c if self.initial_c is not None else self.target_c - 5.0


class Actuation(StrEnum):
    """How a miner's power is changed."""

    POWER_TARGET = "power_target"  # continuous target in W (Braiins OS, AxeOS via curve)
    PROFILES = "profiles"  # a set of discrete power levels (LuxOS, Avalon work modes)
    RELAY = "relay"  # on/off only, through a smart plug or contactor


class EfficiencyPoint(Strict):
    power_w: Annotated[float, Field(gt=0)]
    j_per_th: Annotated[float, Field(gt=0)]


class MinerConfig(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")]
    kind: str = Field(description="Model / firmware, e.g. 'antminer-s9-braiins', 'bitaxe-gamma'")
    actuation: Actuation = Field(strict=False)  # read from its TOML string
    min_power_w: Annotated[float, Field(gt=0, le=MAX_MINER_W)]
    max_power_w: Annotated[float, Field(gt=0, le=MAX_MINER_W)] = Field(
        description="At most the site's import limit (checked with the whole site)")
    profiles_w: list[Annotated[float, Field(gt=0)]] | None = Field(
        default=None,
        validate_default=True,  # so a missing list is caught for actuation = 'profiles'
        description="Discrete power levels (actuation = 'profiles')",
    )
    idle_power_w: Watts = Field(
        default=0.0, description="Draw while booting or paused but powered (fans, control board)"
    )
    efficiency: list[EfficiencyPoint] = Field(min_length=1)
    ramp_w_per_s: Annotated[float, Field(gt=0)] = Field(
        default=20.0, description="How fast actual power follows a new target"
    )
    restart_s: Annotated[float, Field(ge=0)] = Field(
        default=60.0, description="From resume/power-on until it hashes (boot, warm-up)"
    )
    stop_s: Annotated[float, Field(ge=0)] = Field(
        default=2.0, description="From pause/off until its power is gone"
    )
    min_on_s: Annotated[float, Field(ge=0)] = 300.0
    min_off_s: Annotated[float, Field(ge=0)] = 300.0
    target_resolution_w: Annotated[float, Field(ge=0)] = Field(
        default=10.0, description="Target changes smaller than this are not sent (flash wear)"
    )
    heats_tank: bool = Field(default=True, description="Its heat goes into the buffer tank")
    driver: dict[str, Any] = Field(
        default_factory=dict, description="Driver settings (host, port, credentials ref)"
    )

    @field_validator("max_power_w")
    @classmethod
    def _max_above_min(cls, v: float, info: ValidationInfo) -> float:
        lo = _earlier(info, "min_power_w")
        if lo is not None and v < lo:
            raise ValueError(f"must be at least min_power_w ({lo})")
        if info.data.get("actuation") is Actuation.RELAY and lo is not None and v != lo:
            raise ValueError("must equal min_power_w for a relay miner (it is on or off)")
        return v

    @field_validator("profiles_w")
    @classmethod
    def _profiles(cls, v: list[float] | None, info: ValidationInfo) -> list[float] | None:
        actuation = info.data.get("actuation")
        if v is None:
            if actuation is Actuation.PROFILES:
                raise ValueError("is required when actuation = 'profiles'")
            return v
        if actuation is not Actuation.PROFILES:
            raise ValueError(f"only applies to actuation = 'profiles', not '{actuation}'")
        if sorted(set(v)) != list(v):
            raise ValueError("must be strictly increasing")
        lo, hi = _earlier(info, "min_power_w"), _earlier(info, "max_power_w")
        if (lo is not None and v[0] != lo) or (hi is not None and v[-1] != hi):
            raise ValueError(f"must start at min_power_w ({lo}) and end at max_power_w ({hi})")
        return v

    @field_validator("idle_power_w")
    @classmethod
    def _idle_below_min(cls, v: float, info: ValidationInfo) -> float:
        lo = _earlier(info, "min_power_w")
        if lo is not None and v >= lo:
            raise ValueError(f"must be below min_power_w ({lo})")
        return v

    @field_validator("efficiency")
    @classmethod
    def _efficiency_sorted(cls, v: list[EfficiencyPoint]) -> list[EfficiencyPoint]:
        powers = [p.power_w for p in v]
        if powers != sorted(set(powers)):
            raise ValueError(f"points must have strictly increasing power_w, got {powers}")
        return v

    def levels_w(self) -> tuple[float, ...] | None:
        """Discrete power levels, or None for a continuous target."""
        if self.actuation is Actuation.PROFILES:
            assert self.profiles_w is not None
            return tuple(self.profiles_w)
        if self.actuation is Actuation.RELAY:
            return (self.max_power_w,)
        return None

    def j_per_th_at(self, power_w: float) -> float:
        """Efficiency at a power, linearly interpolated (held flat beyond the points)."""
        pts = self.efficiency
        if power_w <= pts[0].power_w:
            return pts[0].j_per_th
        for lo, hi in itertools.pairwise(pts):
            if power_w <= hi.power_w:
                f = (power_w - lo.power_w) / (hi.power_w - lo.power_w)
                return lo.j_per_th + f * (hi.j_per_th - lo.j_per_th)
        return pts[-1].j_per_th

    def hashrate_ths_at(self, power_w: float) -> float:
        return power_w / self.j_per_th_at(power_w) if power_w > 0 else 0.0

    @property
    def best_j_per_th(self) -> float:
        return min(p.j_per_th for p in self.efficiency)


class TariffSection(Strict):
    """Defaults used when a trace carries no price columns."""

    import_price_per_kwh: Decimal = Field(default=Decimal("0.30"), strict=False)
    export_price_per_kwh: Decimal = Field(default=Decimal("0.05"), strict=False)
    prices_file: str | None = Field(
        default=None, description="`hearth run`: CSV time,import_price,export_price (ISO 8601 "
        "with offset; relative to the site file), re-read when it changes; see "
        "controller/runtime/prices.py. Outside its times the prices above apply")


class BitcoinSection(Strict):
    """The static bitcoin terms: what applies when neither the trace's columns nor a feed
    say newer (controller/economics/hashprice.py computes with them)."""

    network_difficulty: Annotated[float, Field(gt=0)] = 1.1e14
    block_subsidy_btc: Annotated[Decimal, Field(ge=0, strict=False)] = Decimal("3.125")
    fees_per_block_btc: Annotated[Decimal, Field(ge=0, strict=False)] = Decimal("0.03")
    btc_price: Annotated[Decimal, Field(gt=0, strict=False)] = Field(
        default=Decimal("85000"), description="In the site currency"
    )
    pool_fee_pct: Percent = 2.0
    feed: MarketFeedSection = Field(
        default=MarketFeedSection(),
        description="Live terms from the mempool.space API; these are the fallback",
    )


class BackupHeatSection(Strict):
    """What would heat the building without the miners; values the heat they deliver."""

    kind: Literal["gas_boiler", "heat_pump", "resistive"] = "gas_boiler"
    efficiency: Annotated[float, Field(gt=0, le=8)] = Field(
        default=0.9, description="Boiler efficiency, or heat-pump COP"
    )
    fuel_price_per_kwh: Decimal = Field(
        default=Decimal("0.10"), strict=False,
        description="Gas, or electricity for heat pump / resistive"
    )


class PidTuning(Strict):
    kp: float = 0.5
    ki: float = 0.2
    kd: float = 0.0


class Mode(StrEnum):
    GRID = "grid"  # grid-integrated: surplus, cheap power, shed on price spikes and DR
    ISLAND = "island"  # no grid: PV + battery only, no grid meter, the battery protected
    HEATING = "heating"  # tank first: buy for heat below a price cap, backup heater above


class ControlSection(Strict):
    mode: Mode = Field(default=Mode.GRID, strict=False)  # read from its TOML string

    @model_validator(mode="before")
    @classmethod
    def _legacy_export_rule(cls, data: Any) -> Any:
        """`shed_when_export_pays = true|false` (before issue 16) is `surplus_policy =
        "value"|"always_mine"`; both at once must agree."""
        if not isinstance(data, dict) or "shed_when_export_pays" not in data:
            return data
        data = dict(data)
        old = data.pop("shed_when_export_pays")
        if not isinstance(old, bool):
            raise ValueError("shed_when_export_pays: must be true or false (it is now "
                             "surplus_policy = \"value\" | \"always_mine\")")
        policy = "value" if old else "always_mine"
        if data.setdefault("surplus_policy", policy) != policy:
            raise ValueError(f"shed_when_export_pays = {str(old).lower()} contradicts "
                             f"surplus_policy = {data['surplus_policy']!r}")
        return data

    tick_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    export_margin_w: Watts = Field(
        default=50.0, description="Grid setpoint: keep this much export so miners never import"
    )
    import_headroom_w: Watts = Field(
        default=300.0, description="Miners are capped this far below the import limit"
    )
    stale_timeout_s: Annotated[float, Field(gt=0, le=60)] = Field(
        default=10.0, description="No fresh meter reading for this long: ramp miners to zero "
        "(at most a minute: a longer one would leave the miners running blind)"
    )
    tank_max_margin_c: Annotated[float, Field(ge=0)] = Field(
        default=1.0, description="Miners heating the tank stop this far below max_c"
    )
    grid_pid: PidTuning = PidTuning(kp=0.3, ki=0.5)
    tank_pid: PidTuning = Field(
        default=PidTuning(kp=3000.0, ki=1.0),
        description="W per K of tank error; ki in W per K·s (500 L: closed-loop τ ≈ 12 min)",
    )
    on_hysteresis_w: Watts = Field(
        default=50.0, description="Switch a miner on only with this much power above its minimum"
    )
    on_delay_s: Annotated[float, Field(ge=0)] = Field(
        default=60.0, description="Power for a miner must be available this long to start it"
    )
    off_delay_s: Annotated[float, Field(ge=0)] = Field(
        default=120.0, description="Too little power this long stops a miner (soft limits)"
    )
    start_horizon_s: Annotated[float, Field(gt=0, le=86_400)] = Field(
        default=900.0,
        description="A start costs the surplus lost while the miner boots, spread over this "
        "expected run: a new miner starts (or replaces a running one) only for more watts "
        "than that",
    )
    battery_soc_hysteresis_pct: Annotated[float, Field(ge=0, le=20)] = 2.0
    # Price rules (docs/modes.md): the supervisor's decisions above the loops.
    price_hysteresis_per_kwh: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.01,
        description="Buy for a miner only below its value per kWh minus this; keep buying "
        "until the price is above its value plus this (fewer starts on hourly prices)",
    )
    price_decision_min_hold_s: Annotated[float, Field(ge=0, le=86_400)] = Field(
        default=900.0,
        description="A price decision (how much to buy) holds at least this long",
    )
    price_heat_band_c: Annotated[float, Field(ge=0, le=20)] = Field(
        default=2.0,
        description="The displaced heat counts in the price rules once the tank is this far "
        "below its target, until it is back at it",
    )
    surplus_policy: Literal["value", "always_mine"] = Field(
        default="always_mine",
        description="Grid mode, surplus PV: 'value' mines a kWh only while it earns more "
        "than exporting it (BTC at the step's terms, plus the heat while the tank wants "
        "it, against the export price, with price_hysteresis_per_kwh and "
        "price_decision_min_hold_s); the miners held off say 'export_pays'. 'always_mine': "
        "the miners eat the surplus whatever export pays (the default: see docs/modes.md)",
    )
    price_spike_per_kwh: float | None = Field(
        default=None,
        description="Import price at or above which the miners shed whatever the other "
        "rules say (only a DR absorb request and PV that cannot be exported keep them)",
    )
    heating_price_cap_per_kwh: float | None = Field(
        default=None,
        description="Heating mode: buy power for the tank only at or below this import "
        "price; default: the displaced backup heat's cost per kWh ([backup_heat])",
    )
    island_probe_w: Watts = Field(
        default=50.0,
        description="Island mode: the miners leave the battery this far below its max "
        "charge power, and draw this much from it when it is full (to find curtailed PV)",
    )
    island_probe_backoff_s: Annotated[float, Field(ge=0)] = Field(
        default=1800.0,
        description="Island mode: after a miner tried on a full battery found too little "
        "PV (the battery discharged into it), wait this long before trying again",
    )
    island_full_soc_pct: Percent = Field(
        default=100.0,
        description="Island mode: at or above this SoC the miners take all the PV the "
        "battery cannot store (below it, the battery charges first)",
    )


class SiteConfig(Strict):
    """A whole site. Battery, tank and satellite are optional."""

    site: SiteSection
    pv: PvSection
    battery: BatterySection | None = None
    tank: TankSection | None = None
    satellite: SatelliteSection | None = None
    devices: list[DeviceConfig] = Field(
        default_factory=list, description="Modbus devices: grid meter, inverter, battery"
    )
    mqtt: MqttSection | None = None
    openadr: OpenAdrSection | None = None  # OpenADR 2.0b VEN (docs/dr.md)
    ledger: LedgerSection = LedgerSection()
    service: ServiceSection = ServiceSection()
    hmi: HmiSection = HmiSection()
    miners: list[MinerConfig] = Field(min_length=1)
    tariffs: TariffSection = TariffSection()
    bitcoin: BitcoinSection = BitcoinSection()
    backup_heat: BackupHeatSection = BackupHeatSection()
    control: ControlSection = ControlSection()
    plan: PlanSection = PlanSection()
    schedule: ScheduleSection | None = None

    @field_validator("miners")
    @classmethod
    def _unique_names(cls, v: list[MinerConfig]) -> list[MinerConfig]:
        names = [m.name for m in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate miner names: {dupes}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _island_has_no_grid_limits(cls, data: Any) -> Any:
        """Island: there is no grid, so an installer has no grid limits to enter. Export is
        0 (nothing to send it to); the import limit is the main fuse (the breaker between
        the inverter and the house), which `main_fuse_a` still states. Limits given
        anyway are kept (and validated)."""
        if not isinstance(data, dict):
            return data
        control, site = data.get("control"), data.get("site")
        if not (isinstance(control, dict) and control.get("mode") == Mode.ISLAND.value
                and isinstance(site, dict)):
            return data
        site = dict(site)
        site.setdefault("grid_export_limit_w", 0.0)
        fuse_a, volts, phases = (site.get("main_fuse_a"), site.get("nominal_voltage_v", 230.0),
                                 site.get("phases", 3))
        if "grid_import_limit_w" not in site and all(
                isinstance(x, int | float) and not isinstance(x, bool) and x > 0
                for x in (fuse_a, volts, phases)):
            site["grid_import_limit_w"] = float(fuse_a * volts * phases)
        return {**data, "site": site}

    @model_validator(mode="after")
    def _needs(self) -> Self:
        # Raised at the root, so the message names the section it is about.
        if self.tank is None:
            bad = [m.name for m in self.miners if m.heats_tank]
            if bad:
                raise ValueError(
                    f"miners {bad} have heats_tank = true but the site has no [tank] section"
                )
        if self.satellite is not None and self.mqtt is None:
            raise ValueError("[satellite] is reached over MQTT: add an [mqtt] section")
        why = feed_currency_problem(self.bitcoin.feed, self.site.currency)
        if why is not None:
            raise ValueError(why)
        if (self.satellite is not None and self.tank is not None
                and self.satellite.tank_max_c is not None
                and self.satellite.tank_max_c < self.tank.max_c):
            raise ValueError(
                f"satellite.tank_max_c ({self.satellite.tank_max_c}) must be at least "
                f"tank.max_c ({self.tank.max_c}): the board's cut-off backs up the controller's")
        if self.control.mode is Mode.HEATING and self.tank is None:
            raise ValueError("control.mode = 'heating' needs a [tank] section")
        if self.control.mode is Mode.ISLAND:
            # Off-grid: the battery is the only buffer, and what the miners regulate.
            if self.battery is None:
                raise ValueError("control.mode = 'island' needs a [battery] section: with no "
                                 "grid, the battery is the only buffer the miners can use")
            b, full = self.battery, self.control.island_full_soc_pct
            if not b.reserve_soc_pct + self.control.battery_soc_hysteresis_pct < full \
                    <= b.max_soc_pct:
                raise ValueError(
                    f"control.island_full_soc_pct ({full}) must lie above battery."
                    f"reserve_soc_pct + control.battery_soc_hysteresis_pct "
                    f"({b.reserve_soc_pct + self.control.battery_soc_hysteresis_pct}) and at "
                    f"most battery.max_soc_pct ({b.max_soc_pct})")
        return self

    @property
    def miner_capacity_w(self) -> float:
        return sum(m.max_power_w for m in self.miners)

    @property
    def site_power_bound_w(self) -> float:
        """The most power this site could ever deliver (grid import limit, PV inverter,
        battery discharge): a physical bound for caps given in watts (DR)."""
        battery = self.battery.max_discharge_w if self.battery is not None else 0.0
        return self.site.import_limit_w + self.pv.inverter_max_w + battery

    def selectable_modes(self) -> list[Mode]:
        """Modes a person may switch to at run time. Island follows the wiring (no grid
        at the meter), not a preference, so it is only ever the configured mode; heating
        needs a tank."""
        if self.control.mode is Mode.ISLAND:
            return [Mode.ISLAND]
        return [Mode.GRID] + ([Mode.HEATING] if self.tank is not None else [])

    def mode_refusal(self, mode: str) -> str | None:
        """Why `mode` cannot be selected at run time on this site (None: it can)."""
        if mode in [m.value for m in self.selectable_modes()]:
            return None
        if mode == Mode.ISLAND.value:
            return ("'island' follows the site's wiring: set control.mode = 'island' in the "
                    "site config (it needs a battery); it is not switched at run time")
        if self.control.mode is Mode.ISLAND:
            return f"this site runs in island mode (no grid): {mode!r} cannot be selected"
        if mode == Mode.HEATING.value:
            return "'heating' needs a tank and this site has none"
        return f"unknown mode {mode!r}; one of {[m.value for m in self.selectable_modes()]}"
