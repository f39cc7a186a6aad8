"""`hearth scan modbus`: what answers at an address, for an installer setting up a site.

For each unit id it looks for the SunSpec marker and lists the models found (with the
manufacturer, model and serial of each common model); otherwise it tries every shipped
register map and reports the ones whose registers answer with plausible values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.devices.link import Link, ReadError, TcpEndpoint
from controller.devices.plan import Image, evaluate, plan_for_registers
from controller.devices.regmap import Table, load_map, shipped_maps
from controller.devices.sunspec import NotSunSpec, decode_string, discover, models

# Unit ids the shipped maps use by default: 1 (most), 3 (SMA), 100 (Victron system),
# 200/240 (Fronius meters).
DEFAULT_UNITS = (1, 3, 100, 200, 240)

# What a real device can show; a register map whose values fall outside is not it.
_PLAUSIBLE = {"W": (-1e6, 1e6), "%": (0.0, 100.0), "V": (0.0, 1000.0), "A": (-5000.0, 5000.0),
              "Hz": (40.0, 70.0)}


@dataclass
class UnitReport:
    unit_id: int
    sunspec_base: int | None = None
    models: list[tuple[int, str, int]] = field(default_factory=list)  # id, name, address
    common: list[dict[str, str]] = field(default_factory=list)
    maps: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    error: str | None = None

    @property
    def found(self) -> bool:
        return bool(self.models or self.maps)


async def scan_unit(link: Link, unit_id: int, timeout_s: float) -> UnitReport:
    rep = UnitReport(unit_id)

    async def read(table: Table, address: int, count: int) -> list[int]:
        return await link.read(unit_id, table, address, count, timeout_s)

    try:
        base, instances = await discover(read, (40000, 0, 50000))
    except NotSunSpec:
        base, instances = None, []
    except ReadError as err:
        rep.error = str(err)
        if err.kind in ("timeout", "connect", "garbled"):
            return rep  # nobody home at this unit: skip the register maps too
        base, instances = None, []
    if base is not None:
        rep.sunspec_base = base
        defs = models()
        for inst in instances:
            mdef = defs.get(inst.id)
            rep.models.append((inst.id, mdef.name if mdef else "(unknown to Hearth)",
                               inst.address))
            if inst.id == 1:
                try:
                    words = await read("holding", inst.address + 2, 64)
                    rep.common.append({"manufacturer": decode_string(words[0:16]),
                                       "model": decode_string(words[16:32]),
                                       "serial": decode_string(words[48:64])})
                except ReadError:
                    pass
        return rep
    for map_id in shipped_maps():
        dmap = load_map(map_id)
        if dmap.kind != "registers":
            continue
        plan = plan_for_registers(dmap)
        image = Image()
        try:
            for block in plan.reads:
                image.put(block, await read(block.table, block.address, block.count), 0.0)
        except ReadError:
            continue
        values, _missing = evaluate(plan, image)
        if not values:
            continue
        from controller.devices.regmap import QUANTITIES

        plausible = all(
            _PLAUSIBLE[QUANTITIES[q]][0] <= v <= _PLAUSIBLE[QUANTITIES[q]][1]
            for q, (v, _) in values.items()
        )
        if plausible:
            rep.maps.append((map_id, {q: v for q, (v, _) in values.items()}))
    return rep


async def scan_tcp(host: str, port: int, units: tuple[int, ...], timeout_s: float
                   ) -> list[UnitReport]:
    link = Link(TcpEndpoint(host, port), connect_timeout_s=timeout_s)
    try:
        return [await scan_unit(link, u, timeout_s) for u in units]
    finally:
        await link.close()


def render(reports: list[UnitReport], host: str, port: int) -> str:
    lines = []
    for rep in reports:
        head = f"{host}:{port} unit {rep.unit_id}: "
        if rep.models:
            lines.append(head + f"SunSpec at {rep.sunspec_base}")
            for mid, name, addr in rep.models:
                lines.append(f"  model {mid:>5} {name} (at {addr})")
            for c in rep.common:
                lines.append(f"  device: {c['manufacturer']} {c['model']} "
                             f"serial {c['serial']}")
            lines.append("  -> use map 'sunspec' (or the vendor's: solaredge, fronius, ...)")
        elif rep.maps:
            for map_id, values in rep.maps:
                shown = ", ".join(f"{q}={v:g}" for q, v in values.items())
                lines.append(head + f"answers like map {map_id!r}: {shown}")
        else:
            lines.append(head + (f"nothing found ({rep.error})" if rep.error
                                 else "nothing found"))
    return "\n".join(lines)
