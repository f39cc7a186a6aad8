"""What the JSON API sends and takes: pydantic models, so the OpenAPI document, the page
and the tests all read the same contract.

Powers in W (grid import +, battery charge +), temperatures in °C, times as ISO 8601 UTC,
money as decimal strings in the site currency (exact), sats as integers.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class _In(BaseModel):
    """Request bodies: unknown keys are refused, "55" is not a number."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# -- live state ---------------------------------------------------------------------------


class Flows(_Out):
    pv_w: float | None = Field(description="PV power (None: no PV reading)")
    grid_w: float | None = Field(description="Grid power at the meter, import +, export -")
    battery_w: float | None = Field(description="Battery power, charge +, discharge -")
    soc_pct: float | None = None
    load_w: float | None = Field(description="House load without the miners (derived)")
    miners_w: float = Field(description="All miners together (their own readback)")
    heat_to_tank_w: float | None = Field(
        description="Miner heat reaching the tank (miner power x heat fraction)")
    stale: list[str] = Field(default_factory=list,
                             description="Fields whose reading is older than the stale limit")


class Tank(_Out):
    temp_c: float | None
    target_c: float
    min_c: float
    max_c: float
    target_overridden: bool = False


class Miner(_Out):
    name: str
    kind: str
    state: Literal["mining", "starting", "paused", "off", "no_data"]
    power_w: float | None
    target_w: float
    max_power_w: float
    hashrate_ths: float | None
    temp_c: float | None
    manual_w: float | None = Field(default=None, description="Fixed power set by hand")
    heats_tank: bool
    reason: str | None = Field(
        default=None, description="The controller's reason code for what it does now "
        "(min_off, on_delay, booting, stale_meter, price, cannot_pause, ...)")
    reason_left_s: float | None = Field(
        default=None, description="Seconds until the reason may lift (as of this tick)")
    why: str | None = Field(default=None, description="The reason in one sentence for "
                                                      "residents, with the time left")


class Alarm(_Out):
    code: str
    severity: Literal["info", "warning", "alarm"]
    title: str = Field(description="Plain words for residents")
    detail: str = Field(description="What the controller does about it")
    miner: str | None = None


class GridRequest(_Out):
    """A demand-response event (docs/dr.md) in force or scheduled, for the wall page."""

    event_id: str
    source: str = Field(description="Where it came from: mqtt or openadr")
    kind: Literal["reduce", "absorb"] = Field(
        description="reduce: the miners stay under power_w; absorb: they take at least it")
    power_w: float
    start: str = Field(description="ISO 8601 UTC")
    end: str | None = Field(description="ISO 8601 UTC; None: until cancelled")
    active: bool = Field(description="In force now (false: scheduled for later)")
    title: str = Field(description="Plain words for residents")
    detail: str = Field(description="One sentence for residents: who asks what, until when")


class BitcoinOut(_Out):
    """The bitcoin terms the controller decides on and the ledger books now."""

    source: Literal["feed", "mqtt", "config"] = Field(
        description="feed: the live market feed; mqtt: pushed over cmd/bitcoin_terms; "
                    "config: the site file's static [bitcoin] terms (fallback)")
    stale: bool = Field(description="Live terms exist but are older than the staleness limit")
    btc_price: str = Field(description="Site currency per BTC, in force")
    hashvalue_sats_per_th_day: str = Field(description="Expected sats per TH/s per day, gross")
    as_of: str | None = Field(description="When the last live terms were fetched or pushed")
    words: str = Field(description="One sentence for residents: where the price comes from")


class StateOut(_Out):
    available: bool = Field(description="False until the controller has run a tick")
    seq: int = Field(description="Tick counter of this HMI process (resets on restart)")
    boot_id: str = Field(description="Changes when the service restarts")
    at: str | None = Field(description="Time of the tick (ISO 8601 UTC)")
    tick_s: float
    site_name: str
    timezone: str = Field(description="The site's time zone (IANA), for clocks and charts")
    currency: str
    mode: str
    configured_mode: str
    modes_available: list[str]
    paused: bool
    hold_reason: str | None
    limiter: str | None
    status: str = Field(description="One sentence for residents: what the miners do and why")
    flows: Flows | None
    tank: Tank | None
    miners: list[Miner]
    alarms: list[Alarm]
    dr_cap_w: float | None
    dr_absorb_w: float | None = Field(
        default=None, description="Demand response: the least the miners take (W), if asked")
    grid_requests: list[GridRequest] = Field(
        default_factory=list,
        description="Demand-response events in force, then the next few scheduled ones")
    total_target_w: float | None
    import_price_per_kwh: float | None
    export_price_per_kwh: float | None
    bitcoin: BitcoinOut | None = Field(
        default=None, description="The bitcoin terms in force (None: not known to the HMI)")


class HistoryPoint(_Out):
    t: float = Field(description="Start of the step, UTC epoch seconds")
    pv_w: float | None
    load_w: float | None
    miners_w: float
    grid_w: float | None
    soc_pct: float | None
    tank_c: float | None
    import_price: float | None


class HistoryOut(_Out):
    step_s: int
    hours: float
    points: list[HistoryPoint]


# -- revenue ------------------------------------------------------------------------------


class RevenuePeriod(_Out):
    label: str
    sats: int = Field(description="Expected sats earned (after pool fee)")
    btc_value: str = Field(description="+ the sats' value in the site currency")
    heat_value: str = Field(description="+ the backup heating the miners' heat displaced")
    power_cost: str = Field(description="+ what the miners' power cost (grid import, forgone "
                                        "export, battery) less grid-service pay; negative: "
                                        "the site gained on power")
    heat_kwh: str
    miner_kwh: str
    net: str = Field(description="btc_value + heat_value - power_cost")


class PoolMonth(_Out):
    """Pool reconciliation of one local month (docs/ledger.md, Pool payouts)."""

    month: str = Field(description="YYYY-MM, the site's local month")
    expected_sats: int = Field(description="Expected after the pool fee (what FPPS owes)")
    gross_sats: int | None = Field(description="Expected before the pool fee")
    pool_fee_sats: int | None = Field(description="gross - expected: the configured fee")
    paid_sats: int = Field(description="Payouts attributed to the month")
    payouts: int
    difference_sats: int = Field(description="paid - expected: luck, and fees beyond the "
                                             "configured one")
    ratio: str | None = Field(description="paid / expected; null without payouts")


class RevenueOut(_Out):
    available: bool
    reason: str | None = None
    currency: str
    today: RevenuePeriod | None = None
    month: RevenuePeriod | None = None
    pool: list[PoolMonth] = Field(
        default_factory=list,
        description="Expected vs paid sats for this month and the two before, if any payouts "
                    "were imported for them (hearth ledger payouts import)")


# -- commands -----------------------------------------------------------------------------


class ModeIn(_In):
    mode: str = Field(description="'grid' (solar surplus) or 'heating' (tank first)")


class PauseIn(_In):
    paused: bool


class TankTargetIn(_In):
    target_c: Finite | None = Field(description="°C between the tank's min and max; "
                                                "null: back to the configured target")


class MinerPowerIn(_In):
    miner: str
    power_w: Finite | None = Field(description="0: keep off; null: back to automatic")


class DrCapIn(_In):
    cap_w: Finite | None = Field(description="Cap on all miners together; null: no cap")
    duration_s: Annotated[float, Field(gt=0, le=7 * 86_400, allow_inf_nan=False)] | None = \
        Field(default=None, description="The cap lifts itself after this long")


class OverridesOut(_Out):
    mode: str | None
    paused: bool
    hold_reason: str | None
    tank_target_c: float | None
    dr_cap_w: float | None
    dr_cap_until: str | None
    manual_w: dict[str, float]


class CommandOut(_Out):
    ok: bool
    message: str
    overrides: OverridesOut


# -- auth ---------------------------------------------------------------------------------


class SessionOut(_Out):
    role: Literal["none", "resident", "installer"]
    via: Literal["none", "session", "token"]
    csrf_token: str = Field(description="Send as X-CSRF-Token on every POST/PUT/DELETE")
    setup_required: bool = Field(description="No installer password yet: use the setup code")
    pin_configured: bool
    public_view: bool


class SetupIn(_In):
    setup_code: Annotated[str, Field(max_length=64)]
    password: Annotated[str, Field(max_length=256)]


class LoginIn(_In):
    password: Annotated[str, Field(max_length=256)]


class PinIn(_In):
    pin: Annotated[str, Field(max_length=64)]


class PasswordChangeIn(_In):
    current_password: Annotated[str, Field(max_length=256)]
    new_password: Annotated[str, Field(max_length=256)]


class PinSetIn(_In):
    pin: Annotated[str, Field(max_length=64)] | None = Field(
        description="4 to 8 digits; null removes the PIN (residents can then not log in)")


class TokenIn(_In):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    role: Literal["resident", "installer"]


class TokenOut(_Out):
    id: str
    name: str
    role: Literal["resident", "installer"]
    created_at: str
    last_used_at: str | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="Shown once: use as 'Authorization: Bearer <token>'")


class OkOut(_Out):
    ok: bool = True
    message: str = ""


# -- installer ----------------------------------------------------------------------------


class ProblemOut(_Out):
    where: str
    reason: str


class ErrorOut(_Out):
    error: str
    problems: list[ProblemOut] = Field(default_factory=list)


class ConfigOut(_Out):
    path: str
    version: str
    config: dict[str, object] = Field(description="The site file as JSON, secrets redacted")


class ConfigIn(_In):
    config: dict[str, object] = Field(description="A whole site document (as in the TOML file)")


class ConfigSavedOut(_Out):
    ok: bool
    version: str
    changed: list[str]
    message: str


class DeviceReadOut(_Out):
    device: str
    ok: bool
    map: str
    endpoint: str
    status: str
    error: str | None
    values: dict[str, float]
    missing: dict[str, str]
    took_s: float


class MinerTestIn(_In):
    power_w: Finite


class MinerTestOut(_Out):
    miner: str
    ok: bool
    action: str
    reason: str
    requested_w: float
    sent_w: float | None
    confirmed_w: float | None
    state: str
    power_w: float
    hashrate_ths: float
    temp_c: float | None
    detail: str
