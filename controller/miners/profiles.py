"""Device profiles: what a home miner model can do, as data (controller/miners/profiles/).

A profile says which firmware API the model speaks, its power levels (stepped firmware) or
frequency/voltage/power curve (AxeOS), whether and how it pauses, its heater/quiet modes
where the API exposes them, and the public source each figure comes from, with a flag for
whether anyone checked it on hardware. `hearth emulate miner --profile NAME` runs an
emulator of a profile; the AxeOS driver reads its curve (`curve = NAME`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from controller.config.base import Strict
from controller.errors import InputError, Problem

PROFILES_DIR = Path(__file__).parent / "profiles"


class CurvePointData(Strict):
    frequency_mhz: Annotated[float, Field(gt=0)]
    core_voltage_mv: Annotated[int, Field(gt=0)]
    power_w: Annotated[float, Field(gt=0)]


class DeviceProfile(Strict):
    device: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    name: str
    api: Literal["braiins-os", "axeos", "whatsminer", "vnish", "luxos", "avalon"]
    actuation: Literal["power_target", "profiles"]
    level_command: Literal["workmode", "worklevel"] | None = None
    levels_w: list[Annotated[float, Field(gt=0)]] | None = None
    idle_power_w: Annotated[float, Field(ge=0)] = 2.0
    hashrate_ths_at_max: Annotated[float, Field(gt=0)] | None = None
    j_per_th: Annotated[float, Field(gt=0)] | None = None
    asic: str | None = None
    asic_count: Annotated[int, Field(ge=1)] | None = None
    can_pause: bool
    pause: str
    heater_mode: str
    quiet_mode: str
    target_temp_c: list[float] | None = None
    source: Annotated[str, Field(min_length=10)]
    verified_on_hardware: bool
    points: list[CurvePointData] | None = None

    @model_validator(mode="after")
    def _fits_the_api(self) -> DeviceProfile:
        if self.api == "avalon":
            if not self.levels_w or len(self.levels_w) > 3 or self.level_command is None:
                raise ValueError("an avalon profile needs levels_w (1 to 3 levels, in level "
                                 "order) and level_command")
            if self.levels_w != sorted(self.levels_w):
                raise ValueError("levels_w must rise with the level (0 = low)")
            if self.hashrate_ths_at_max is None:
                raise ValueError("hashrate_ths_at_max is required for stepped firmware")
        if self.api == "axeos" and (not self.points or len(self.points) < 2
                                    or self.j_per_th is None):
            raise ValueError("an axeos profile needs [[points]] (two or more) and j_per_th")
        return self

    @property
    def min_power_w(self) -> float:
        if self.levels_w:
            return self.levels_w[0]
        assert self.points
        return min(p.power_w for p in self.points)

    @property
    def max_power_w(self) -> float:
        if self.levels_w:
            return self.levels_w[-1]
        assert self.points
        return max(p.power_w for p in self.points)

    def miner_entry(self, name: str, driver: dict[str, Any]) -> dict[str, Any]:
        """A `[[miners]]` table for this model (efficiency flat at its nameplate)."""
        jpt = self.j_per_th or self.max_power_w / (self.hashrate_ths_at_max or 1.0)
        return {
            "name": name, "kind": self.device, "actuation": self.actuation,
            "min_power_w": self.min_power_w, "max_power_w": self.max_power_w,
            **({"profiles_w": list(self.levels_w)} if self.levels_w else {}),
            "idle_power_w": self.idle_power_w,
            "efficiency": [{"power_w": self.min_power_w, "j_per_th": jpt},
                           {"power_w": self.max_power_w, "j_per_th": jpt}],
            "ramp_w_per_s": max(self.max_power_w / 10, 1.0), "restart_s": 10.0,
            "stop_s": 2.0, "heats_tank": False, "driver": driver,
        }


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def load_profile(ref: str) -> DeviceProfile:
    """A profile by name (profiles dir) or TOML path; InputError names the bad field."""
    path = Path(ref) if ref.endswith(".toml") else PROFILES_DIR / f"{ref}.toml"
    if not path.is_file():
        raise InputError(str(path), [Problem("profile", f"no such profile {ref!r} (have: "
                                              f"{', '.join(profile_names())})")])
    try:
        return DeviceProfile.model_validate(tomllib.loads(path.read_text()))
    except tomllib.TOMLDecodeError as err:
        raise InputError(str(path), [Problem("(file)", f"not valid TOML: {err}")]) from None
    except ValidationError as err:
        from controller.config.load import problems_from_validation

        raise InputError(str(path), problems_from_validation(err)) from None
