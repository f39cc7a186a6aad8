"""Modbus acquisition figures on loopback (prints numbers; asserts nothing).

1. Poll-cycle time for three devices (Victron GX, SMA inverter, SDM630 meter, each its
   own emulator and TCP connection): all three polled concurrently, against the baseline
   of polling them one after another.
2. How a poll grows with the number of registers: one map with N contiguous u16 values,
   read batched (contiguous runs, up to 125 registers per request) against the baseline
   of one request per value.

Run: .venv/bin/python bench/modbus_bench.py [--cycles 200]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.config.devices import DeviceConfig
from controller.devices.acquisition import Acquisition
from controller.devices.plan import Plan, plan_reads
from controller.devices.regmap import load_map
from hil.modbus import DeviceImage, EmulatedDevice, ModbusEmulator

VALUES = {"grid_power_w": -1234.0, "pv_power_w": 5432.0, "battery_power_w": 1500.0,
          "soc_pct": 63.5, "grid_power_l1_w": -411.0, "grid_power_l2_w": -412.0,
          "grid_power_l3_w": -411.0, "grid_frequency_hz": 50.0}


def ms(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(0.95 * len(xs)))]
    return f"median {statistics.median(xs) * 1e3:7.2f} ms   p95 {p95 * 1e3:7.2f} ms"


async def three_devices(cycles: int, delay_s: float | None) -> None:
    emus, devs = [], []
    for name, map_id, role in (("gx", "victron-gx", "battery"),
                               ("sma", "sma-inverter", "pv_inverter"),
                               ("meter", "eastron-sdm630", "grid_meter")):
        dmap = load_map(map_id)
        emu = ModbusEmulator([EmulatedDevice(dmap.unit_id, DeviceImage(dmap))])
        emu.set_values(VALUES)
        port = await emu.start_tcp()
        emus.append(emu)
        devs.append(DeviceConfig(name=name, role=role, map=map_id, host="127.0.0.1",
                                 port=port, inter_request_delay_s=delay_s))
    acq = Acquisition(devs)
    await acq.read_once()  # connect and warm up
    concurrent, sequential = [], []
    for _ in range(cycles):
        t = time.perf_counter()
        await acq.read_once()
        concurrent.append(time.perf_counter() - t)
        t = time.perf_counter()
        for p in acq.pollers:
            await p.poll_once()
        sequential.append(time.perf_counter() - t)
    reads = sum(len(p.plan.reads) for p in acq.pollers if p.plan)
    what = ("the maps' inter-request delays (SDM630: 20 ms)" if delay_s is None
            else "no inter-request delay")
    print(f"three devices, {reads} requests per cycle, {cycles} cycles, {what}:")
    print(f"  concurrent (Hearth) : {ms(concurrent)}")
    print(f"  one after another   : {ms(sequential)}   (baseline)")
    await acq.stop()
    for emu in emus:
        await emu.stop()


def synthetic_map(directory: Path, n: int) -> Path:
    lines = ['[map]', f'id = "bench{n}"', 'source = "synthetic benchmark map"',
             'kind = "registers"', '']
    for i in range(n):
        lines += ['[[register]]', f'name = "v{i}"', f'address = {1000 + i}', 'type = "u16"',
                  'unit = "W"', '']
    lines += ['[measure]', 'pv_power_w = [' + ", ".join(f'"v{i}"' for i in range(n)) + ']']
    path = directory / f"bench{n}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def register_growth(cycles: int) -> None:
    print("\none device, N contiguous u16 values, time per poll:")
    print(f"  {'N':>5}  {'batched':>34}  {'one read per value (baseline)':>36}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (10, 50, 125, 250, 500):
            path = synthetic_map(Path(tmp), n)
            dmap = load_map(str(path))
            emu = ModbusEmulator([EmulatedDevice(1, DeviceImage(dmap))])
            emu.set_values({"pv_power_w": float(n)})
            port = await emu.start_tcp()
            acq = Acquisition([DeviceConfig(name="b", role="pv_inverter", map=str(path),
                                            host="127.0.0.1", port=port)])
            p = acq.pollers[0]
            assert p.plan is not None
            batched_plan = p.plan
            points = [pt for _, pts in batched_plan.measures["pv_power_w"] for pt in pts]
            single = Plan(batched_plan.measures,
                          tuple(r for pt in points for r in plan_reads([pt], 1)))
            await p.poll_once()
            k = max(5, cycles // max(1, n // 25))
            times = {}
            for label, plan in (("batched", batched_plan), ("single", single)):
                p.plan = plan
                xs = []
                for _ in range(k):
                    t = time.perf_counter()
                    assert await p.poll_once()
                    xs.append(time.perf_counter() - t)
                times[label] = (len(plan.reads), statistics.median(xs))
            b, s = times["batched"], times["single"]
            print(f"  {n:>5}  {b[0]:>4} req {b[1] * 1e3:9.2f} ms {'':>14}"
                  f"{s[0]:>5} req {s[1] * 1e3:9.2f} ms  ({s[1] / b[1]:5.1f}x slower)")
            await acq.stop()
            await emu.stop()


async def main(cycles: int) -> None:
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    await three_devices(cycles, None)
    await three_devices(cycles, 0.0)
    await register_growth(cycles)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=200)
    asyncio.run(main(ap.parse_args().cycles))
