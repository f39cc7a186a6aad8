"""A small, transparent PV model: measured irradiance in, AC power of the site's array out.

Used by `hearth trace build` to turn weather-station irradiance into the `pv_w` column of
a trace. It is deliberately simple — every step is a textbook formula one can check by
hand — because a trace only has to be plausible, not bankable:

1. Solar position from UTC time and the site's latitude/longitude, with Spencer's (1971)
   Fourier series for declination and equation of time as used in NOAA's "General Solar
   Position Calculations". Accurate to a few tenths of a degree; no refraction, no
   parallax, no elevation.
2. Plane-of-array irradiance with the isotropic-sky (Liu–Jordan) transposition:
   ``POA = DNI·max(cos AOI, 0) + DHI·(1 + cos β)/2 + GHI·ρ·(1 − cos β)/2`` with tilt β,
   the array's azimuth (compass bearing, 180 = south) and ground albedo ρ = 0.2. The
   beam term is zero while the sun is below the horizon. Isotropic sky under-estimates
   circumsolar diffuse light a little on clear days; that is accepted.
3. Cell temperature from NOCT: ``T_cell = T_air + (NOCT − 20)/800 · POA`` (no wind term).
   Without an air temperature, 20 °C (the NOCT reference ambient) is assumed.
4. DC-to-AC in one line: ``P = peak_w · POA/1000 · (1 + γ·(T_cell − 25)) · (1 − losses)``,
   clipped to ``[0, inverter_max_w]``. Inverter efficiency, soiling, wiring, mismatch and
   shading are all in ``system_losses_pct``; no low-light efficiency drop, no spectrum.

All functions are vectorised over numpy arrays and never read a clock.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from controller.config.models import PvSection

FloatArray = npt.NDArray[np.float64]

ALBEDO = 0.2
"""Ground reflectance (grass, typical roofs): the usual default when it is not measured."""

NOCT_AMBIENT_C = 20.0
NOCT_IRRADIANCE_W_M2 = 800.0
STC_IRRADIANCE_W_M2 = 1000.0
STC_CELL_C = 25.0
DEFAULT_AIR_C = NOCT_AMBIENT_C
"""Air temperature assumed when none is given (the NOCT reference ambient)."""


def _as_float(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def solar_position(
    time_s: npt.ArrayLike, latitude_deg: float, longitude_deg: float
) -> tuple[FloatArray, FloatArray]:
    """Solar zenith and azimuth in degrees at UTC epoch seconds.

    Azimuth is a compass bearing (0 = north, 90 = east, 180 = south), the same convention
    as ``pv.azimuth_deg``. Spencer/NOAA series: errors of a few tenths of a degree, which
    is far below what matters for a simulated trace.
    """
    t = _as_float(time_s)
    days = np.floor(t / 86400.0)
    # Day of year (1-based) and hour of day, both UTC, computed without datetime objects.
    day_start = days.astype("datetime64[D]")
    year_start = day_start.astype("datetime64[Y]").astype("datetime64[D]")
    doy = (day_start - year_start).astype(np.float64) + 1.0
    year = day_start.astype("datetime64[Y]").astype(np.int64) + 1970
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    days_in_year = np.where(leap, 366.0, 365.0)
    hour = (t - days * 86400.0) / 3600.0

    g = 2.0 * np.pi / days_in_year * (doy - 1.0 + (hour - 12.0) / 24.0)  # fractional year
    eot_min = 229.18 * (
        0.000075
        + 0.001868 * np.cos(g)
        - 0.032077 * np.sin(g)
        - 0.014615 * np.cos(2 * g)
        - 0.040849 * np.sin(2 * g)
    )
    decl = (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )
    true_solar_min = hour * 60.0 + eot_min + 4.0 * longitude_deg
    hour_angle = np.radians(true_solar_min / 4.0 - 180.0)
    lat = np.radians(latitude_deg)

    cos_zen = np.sin(lat) * np.sin(decl) + np.cos(lat) * np.cos(decl) * np.cos(hour_angle)
    zenith = np.degrees(np.arccos(np.clip(cos_zen, -1.0, 1.0)))
    # Azimuth measured from south, positive westward, then turned into a compass bearing.
    az_south = np.arctan2(
        np.sin(hour_angle),
        np.cos(hour_angle) * np.sin(lat) - np.tan(decl) * np.cos(lat),
    )
    azimuth = np.mod(np.degrees(az_south) + 180.0, 360.0)
    return zenith, azimuth


def poa_irradiance(
    ghi: npt.ArrayLike,
    dhi: npt.ArrayLike,
    dni: npt.ArrayLike,
    zenith_deg: npt.ArrayLike,
    azimuth_deg: npt.ArrayLike,
    tilt_deg: float,
    array_azimuth_deg: float,
    albedo: float = ALBEDO,
) -> FloatArray:
    """Plane-of-array irradiance (W/m²), isotropic sky (Liu–Jordan).

    Negative inputs (sensor offsets at night) are treated as zero; the beam term is zero
    with the sun at or below the horizon or behind the array.
    """
    ghi_a = np.maximum(_as_float(ghi), 0.0)
    dhi_a = np.maximum(_as_float(dhi), 0.0)
    dni_a = np.maximum(_as_float(dni), 0.0)
    zen = np.radians(_as_float(zenith_deg))
    az = np.radians(_as_float(azimuth_deg))
    beta = np.radians(tilt_deg)
    cos_aoi = np.cos(zen) * np.cos(beta) + np.sin(zen) * np.sin(beta) * np.cos(
        az - np.radians(array_azimuth_deg)
    )
    sun_up = np.cos(zen) > 0.0
    beam = np.where(sun_up, dni_a * np.maximum(cos_aoi, 0.0), 0.0)
    sky = dhi_a * (1.0 + np.cos(beta)) / 2.0
    ground = ghi_a * albedo * (1.0 - np.cos(beta)) / 2.0
    return np.asarray(beam + sky + ground, dtype=np.float64)


def cell_temperature(poa_w_m2: npt.ArrayLike, air_c: npt.ArrayLike, noct_c: float) -> FloatArray:
    """NOCT model: the cell runs (NOCT − 20) K above air at 800 W/m², linear in POA."""
    poa = _as_float(poa_w_m2)
    return np.asarray(
        _as_float(air_c) + (noct_c - NOCT_AMBIENT_C) / NOCT_IRRADIANCE_W_M2 * poa,
        dtype=np.float64,
    )


def pv_power_w(
    time_s: npt.ArrayLike,
    ghi: npt.ArrayLike,
    dhi: npt.ArrayLike,
    dni: npt.ArrayLike,
    pv: PvSection,
    latitude_deg: float,
    longitude_deg: float,
    air_c: npt.ArrayLike | None = None,
) -> FloatArray:
    """AC power (W) of the configured array for irradiance samples at UTC epoch seconds.

    ``air_c`` may be None (20 °C assumed) or contain NaN (20 °C assumed there).
    The result is never negative and never above ``pv.inverter_max_w``.
    """
    t = _as_float(time_s)
    zen, az = solar_position(t, latitude_deg, longitude_deg)
    poa = poa_irradiance(ghi, dhi, dni, zen, az, pv.tilt_deg, pv.azimuth_deg)
    air = (
        np.full_like(t, DEFAULT_AIR_C)
        if air_c is None
        else np.where(np.isnan(_as_float(air_c)), DEFAULT_AIR_C, _as_float(air_c))
    )
    t_cell = cell_temperature(poa, air, pv.noct_c)
    dc = pv.peak_w * poa / STC_IRRADIANCE_W_M2 * (1.0 + pv.temp_coeff_per_c * (t_cell - STC_CELL_C))
    ac = dc * (1.0 - pv.system_losses_pct / 100.0)
    return np.asarray(np.clip(ac, 0.0, pv.inverter_max_w), dtype=np.float64)
