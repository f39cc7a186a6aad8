"""Bitaxe / ESP-Miner AxeOS: a power target mapped to frequency + core voltage by a curve.

Source: ESP-Miner `main/http_server/openapi.yaml` (bitaxeorg/ESP-Miner):
- `GET /api/system/info` -> power (W), hashRate (GH/s), temp (°C, chip average), frequency
  (MHz), coreVoltage (mV, configured), overheat_mode (1 after thermal protection).
- `PATCH /api/system` {frequency, coreVoltage} -> 200, or 400 "Invalid settings provided".
Pause: the current document has `POST /api/system/pause` / `resume` and reports
`miningPaused` in SystemInfo; older AxeOS builds have neither. So pausing is opt-in
(`use_pause = true` in the driver table, for firmware that has it): without it the driver
declares `can_pause = False` (pair the board with a relay to switch it off); with it, a
firmware that answers `/api/system/info` without `miningPaused` is refused with that reason.
Every PATCH is written to NVS flash, so writes are rate-limited (`min_write_interval_s`).
`POST /api/system/restart` is never called: if a firmware version only applies a new
frequency after a restart, the readback shows it and the write is reported `not_applied`.

The curve (power <-> frequency, voltage) is data: `controller/miners/profiles/*.toml`.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from controller.miners.base import (
    Capabilities,
    Control,
    FirmwareRefused,
    MinerDriver,
    State,
    Telemetry,
)
from controller.miners.transport import HttpJson

PROFILES_DIR = Path(__file__).parent / "profiles"


@dataclass(frozen=True, slots=True)
class CurvePoint:
    frequency_mhz: float
    core_voltage_mv: int
    power_w: float


class PowerCurve:
    """Frequency interpolated by power; core voltage of the point at or above (safe side)."""

    def __init__(self, points: list[CurvePoint]) -> None:
        if len(points) < 2:
            raise ValueError("a curve needs at least two points")
        pts = sorted(points, key=lambda p: p.power_w)
        for a, b in itertools.pairwise(pts):
            if not (a.power_w < b.power_w and a.frequency_mhz < b.frequency_mhz):
                raise ValueError("power and frequency must both increase along the curve")
        self.points = pts

    @classmethod
    def load(cls, ref: str) -> PowerCurve:
        path = Path(ref) if ref.endswith(".toml") else PROFILES_DIR / f"{ref}.toml"
        data = tomllib.loads(path.read_text())
        return cls([CurvePoint(float(p["frequency_mhz"]), int(p["core_voltage_mv"]),
                               float(p["power_w"])) for p in data["points"]])

    @property
    def min_power_w(self) -> float:
        return self.points[0].power_w

    @property
    def max_power_w(self) -> float:
        return self.points[-1].power_w

    def settings_for(self, power_w: float) -> tuple[int, int]:
        """(frequency MHz, core voltage mV) for a power target inside the curve."""
        p = min(max(power_w, self.min_power_w), self.max_power_w)
        for a, b in itertools.pairwise(self.points):
            if p <= b.power_w:
                f = (p - a.power_w) / (b.power_w - a.power_w)
                freq = a.frequency_mhz + f * (b.frequency_mhz - a.frequency_mhz)
                volt = a.core_voltage_mv if f <= 1e-9 else b.core_voltage_mv
                return round(freq), volt
        last = self.points[-1]
        return round(last.frequency_mhz), last.core_voltage_mv

    def power_at(self, frequency_mhz: float) -> float:
        """The power the curve expects at a frequency (readback of the firmware target)."""
        pts = self.points
        if frequency_mhz <= pts[0].frequency_mhz:
            return pts[0].power_w * frequency_mhz / pts[0].frequency_mhz
        for a, b in itertools.pairwise(pts):
            if frequency_mhz <= b.frequency_mhz:
                f = (frequency_mhz - a.frequency_mhz) / (b.frequency_mhz - a.frequency_mhz)
                return a.power_w + f * (b.power_w - a.power_w)
        return pts[-1].power_w


class AxeOsDriver(MinerDriver):
    api = "axeos"
    control = Control.CONTINUOUS
    document = "ESP-Miner openapi.yaml (AxeOS HTTP API)"

    def __init__(self, cfg: Any, *, host: str, port: int, curve: PowerCurve,
                 use_pause: bool = False, **kw: Any) -> None:
        self.curve = curve
        self.use_pause = use_pause
        self._has_pause: bool | None = None  # does the firmware report miningPaused?
        super().__init__(cfg, **kw)
        self.http = HttpJson(host, port, self.timeout_s)
        self._narrow_range(curve.min_power_w, curve.max_power_w)

    @classmethod
    def can_pause_with(cls, settings: object) -> bool:
        """Only with `use_pause = true` (firmware that has /api/system/pause)."""
        return bool(getattr(settings, "use_pause", False))

    def _capabilities(self, min_write_interval_s: float, settle_margin_s: float) -> Capabilities:
        caps = super()._capabilities(min_write_interval_s, settle_margin_s)
        return replace(caps, can_pause=self.use_pause)

    async def _read(self) -> Telemetry:
        info = await self.http.request("GET", "/api/system/info")
        power = float(info["power"])
        ghs = float(info["hashRate"])
        freq = float(info["frequency"])
        overheat = int(info.get("overheat_mode", 0) or 0) == 1
        self._has_pause = "miningPaused" in info
        if overheat:
            state, detail = State.OVERHEAT, "overheat_mode = 1 (thermal protection)"
        elif info.get("miningPaused") is True:
            state, detail = State.PAUSED, ""
        else:
            state, detail = (State.RUNNING if ghs > 0 else State.BOOTING), ""
        return Telemetry(state, power, ghs / 1000.0, float(info["temp"]),
                         round(self.curve.power_at(freq), 1), detail)

    def _same(self, a: float, b: float) -> bool:
        # The readback is the curve power at the rounded frequency: compare in MHz.
        return self.curve.settings_for(a) == self.curve.settings_for(b) or super()._same(a, b)

    async def _write_target(self, target_w: float) -> None:
        freq, volt = self.curve.settings_for(target_w)
        await self.http.request("PATCH", "/api/system",
                                {"frequency": freq, "coreVoltage": volt}, ok=(200, 204))

    async def _pause_or_resume(self, action: str) -> None:
        if self._has_pause is None:
            await self._read()
        if not self._has_pause:
            raise FirmwareRefused("this AxeOS build reports no miningPaused: it has no "
                                  f"/api/system/{action} (set use_pause = false)")
        await self.http.request("POST", f"/api/system/{action}", ok=(200, 204))

    async def _pause(self) -> None:
        await self._pause_or_resume("pause")

    async def _resume(self) -> None:
        await self._pause_or_resume("resume")

    async def close(self) -> None:
        await self.http.close()
