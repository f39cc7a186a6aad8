"""The PV model gives plausible, physically shaped numbers (it feeds every built trace)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from controller.config.models import PvSection
from controller.trace.pvmodel import (
    cell_temperature,
    poa_irradiance,
    pv_power_w,
    solar_position,
)

LAT, LON = 50.9, 6.95


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def day_times(day: str, step_s: int = 60) -> np.ndarray:
    start = epoch(f"{day}T00:00:00")
    return start + np.arange(0, 86400, step_s, dtype=np.float64)


def clear_sky(zenith_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A crude clear sky (good enough for shape tests): GHI, DHI, DNI consistent."""
    cz = np.clip(np.cos(np.radians(zenith_deg)), 0.0, None)
    ghi = 1000.0 * cz**1.2
    dhi = 0.15 * ghi
    dni = np.where(cz > 0.05, (ghi - dhi) / np.maximum(cz, 0.05), 0.0)
    return ghi, dhi, dni


PV = PvSection(peak_w=10_000, inverter_max_w=10_000, tilt_deg=35, azimuth_deg=180)


def test_solar_noon_in_june_at_cologne() -> None:
    t = day_times("2015-06-21")
    zen, az = solar_position(t, LAT, LON)
    i = int(np.argmin(zen))
    # Solar noon at 6.95°E in late June: 12:00 − 27.8 min + ~1.7 min (equation of time).
    noon = datetime.fromtimestamp(t[i], UTC)
    assert (noon.hour, noon.minute) in {(11, 33), (11, 34), (11, 35)}
    assert zen[i] == pytest.approx(LAT - 23.44, abs=0.3)
    assert az[i] == pytest.approx(180.0, abs=1.0)
    # Sunrise in the north-east, sunset in the north-west, night below the horizon.
    assert zen[0] > 90  # midnight UTC
    morning = np.flatnonzero(zen < 90)[0]
    assert 40 < az[morning] < 60


def test_clear_sky_noon_poa_in_june_is_plausible() -> None:
    t = np.array([epoch("2015-06-21T11:34:00")])
    zen, az = solar_position(t, LAT, LON)
    ghi, dhi = 850.0, 120.0
    dni = (ghi - dhi) / np.cos(np.radians(zen))
    poa = poa_irradiance(ghi, dhi, dni, zen, az, tilt_deg=35, array_azimuth_deg=180)
    assert 900 <= poa[0] <= 1100


def test_zero_at_night_and_never_negative() -> None:
    t = day_times("2015-12-21")
    zen, _ = solar_position(t, LAT, LON)
    ghi, dhi, dni = clear_sky(zen)
    p = pv_power_w(t, ghi, dhi, dni, PV, LAT, LON)
    assert np.all(p >= 0)
    assert np.all(p[zen > 90] == 0)
    # Sensor noise at night (negative readings) must not make negative power.
    noisy = pv_power_w(t, ghi - 2, dhi - 2, dni - 2, PV, LAT, LON)
    assert np.all(noisy >= 0)


def test_roughly_symmetric_around_solar_noon_for_a_south_array() -> None:
    t = day_times("2015-06-21")
    zen, _ = solar_position(t, LAT, LON)
    ghi, dhi, dni = clear_sky(zen)
    p = pv_power_w(t, ghi, dhi, dni, PV, LAT, LON, air_c=np.full(len(t), 20.0))
    noon = int(np.argmin(zen))
    for hours in (1, 2, 3, 4):
        before, after = p[noon - 60 * hours], p[noon + 60 * hours]
        assert before == pytest.approx(after, rel=0.02)
    assert p[noon] > p[noon - 180] > p[noon - 360] > 0


def test_east_array_favours_the_morning() -> None:
    t = day_times("2015-06-21")
    zen, _ = solar_position(t, LAT, LON)
    ghi, dhi, dni = clear_sky(zen)
    east = PvSection(peak_w=10_000, inverter_max_w=10_000, tilt_deg=35, azimuth_deg=90)
    p = pv_power_w(t, ghi, dhi, dni, east, LAT, LON)
    noon = int(np.argmin(zen))
    assert p[noon - 180] > 1.5 * p[noon + 180]


def test_clipping_at_the_inverter_limit() -> None:
    t = day_times("2015-06-21")
    zen, _ = solar_position(t, LAT, LON)
    ghi, dhi, dni = clear_sky(zen)
    small = PvSection(peak_w=10_000, inverter_max_w=5_000, tilt_deg=35)
    p = pv_power_w(t, ghi, dhi, dni, small, LAT, LON)
    assert p.max() == 5_000.0
    assert np.sum(p == 5_000.0) > 60  # clipped for more than an hour around noon
    unclipped = pv_power_w(t, ghi, dhi, dni, PV, LAT, LON)
    assert np.all(p <= unclipped + 1e-9)


def test_hot_cells_make_less_power() -> None:
    t = np.array([epoch("2015-06-21T11:34:00")])
    zen, _ = solar_position(t, LAT, LON)
    ghi, dhi, dni = clear_sky(zen)
    cold = pv_power_w(t, ghi, dhi, dni, PV, LAT, LON, air_c=np.array([0.0]))
    hot = pv_power_w(t, ghi, dhi, dni, PV, LAT, LON, air_c=np.array([35.0]))
    assert hot[0] < cold[0]
    # −0.37 %/K over 35 K: about 13 % less.
    assert hot[0] / cold[0] == pytest.approx(1 - 0.0037 * 35, rel=0.03)
    # NaN air temperature means "unknown": 20 °C is used instead.
    unknown = pv_power_w(t, ghi, dhi, dni, PV, LAT, LON, air_c=np.array([np.nan]))
    default = pv_power_w(t, ghi, dhi, dni, PV, LAT, LON)
    assert unknown[0] == default[0]


def test_noct_cell_temperature() -> None:
    assert cell_temperature(800.0, 20.0, noct_c=45.0) == pytest.approx(45.0)
    assert cell_temperature(0.0, 5.0, noct_c=45.0) == pytest.approx(5.0)


def test_stc_like_power_matches_the_formula() -> None:
    """At POA 1000 W/m² and a 25 °C cell, AC = peak × (1 − losses)."""
    t = np.array([epoch("2015-06-21T11:34:00")])
    zen, az = solar_position(t, LAT, LON)
    flat = PvSection(peak_w=10_000, inverter_max_w=20_000, tilt_deg=0, system_losses_pct=14)
    # Flat array: POA = GHI. Air chosen so the NOCT model puts the cell at 25 °C.
    air = 25.0 - (45.0 - 20.0) / 800.0 * 1000.0
    p = pv_power_w(t, 1000.0, 100.0, 900.0 / np.cos(np.radians(zen)), flat, LAT, LON, [air])
    assert p[0] == pytest.approx(10_000 * 0.86, rel=1e-6)
    assert az[0] == pytest.approx(180, abs=1)
