"""SunSpec: find the `SunS` marker, walk the model chain, resolve model points to addresses.

SunSpec devices do not have fixed addresses: after the marker ("SunS" = 0x5375 0x6E53 at
40000, 0 or 50000) comes a chain of models, each `ID, L` followed by L registers, ended by
ID 0xFFFF. A map names model points (`103:W`); discovery turns them into addresses. The
point tables (offsets, types, scale-factor points, units) are data:
maps/sunspec_models.toml, taken from the SunSpec model definitions.
"""

from __future__ import annotations

import tomllib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from functools import cache

from controller.devices import codec
from controller.devices.plan import Plan, Point, plan_reads
from controller.devices.regmap import MAPS_DIR, DeviceMap, Table

SUNS = (0x5375, 0x6E53)  # "SunS"
END_ID = 0xFFFF
MAX_MODELS = 64

Reader = Callable[[Table, int, int], Awaitable[list[int]]]


@dataclass(frozen=True)
class PointDef:
    name: str
    offset: int
    type: str  # codec type name, or string/pad/bitfield*/enum32/... (not decodable here)
    size: int
    sf: str | None
    unit: str | None


@dataclass(frozen=True)
class ModelDef:
    id: int
    name: str
    fixed_length: int  # registers after ID and L before the repeating group (or L)
    points: dict[str, PointDef]
    group_length: int = 0
    group_points: dict[str, PointDef] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelInstance:
    id: int
    address: int  # of its ID register
    length: int  # L


class NotSunSpec(Exception):
    """No SunS marker at any base address."""


_UNIT_ALIASES = {"Pct": "%", "%WHRtg": "%", "% AhrRtg": "%", "C": "°C"}


def _points(raw: dict[str, dict[str, object]]) -> dict[str, PointDef]:
    out = {}
    for name, p in raw.items():
        unit = p.get("unit")
        unit_s = _UNIT_ALIASES.get(str(unit), str(unit)) if unit is not None else None
        out[name] = PointDef(name, int(p["offset"]), str(p["type"]),  # type: ignore[call-overload]
                             int(p.get("size", 1)), p.get("sf"), unit_s)  # type: ignore[call-overload, arg-type]
    return out


@cache
def models() -> dict[int, ModelDef]:
    data = tomllib.loads((MAPS_DIR / "sunspec_models.toml").read_text(encoding="utf-8"))
    out: dict[int, ModelDef] = {}
    for key, m in data["model"].items():
        group = m.get("group")
        fixed = int(m["fixed_length"] if group else m["length"])
        out[int(key)] = ModelDef(
            id=int(key), name=m["name"], fixed_length=fixed, points=_points(m["points"]),
            group_length=int(group["length"]) if group else 0,
            group_points=_points(group["points"]) if group else {},
        )
    return out


async def find_base(read: Reader, bases: Iterable[int]) -> int:
    """The first base address holding the SunS marker. Read errors there mean "not here"
    unless every base fails the same way (then the device is not answering: re-raise)."""
    last_err: Exception | None = None
    for base in bases:
        try:
            regs = await read("holding", base, 2)
        except Exception as err:  # any read error at a base = not here
            last_err = err
            if getattr(err, "kind", "") in ("timeout", "connect"):
                raise
            continue
        if tuple(regs) == SUNS:
            return base
    if last_err is not None and getattr(last_err, "kind", "") not in ("exception",):
        raise last_err
    raise NotSunSpec("no SunS marker at " + ", ".join(str(b) for b in bases))


async def walk(read: Reader, base: int) -> list[ModelInstance]:
    """The model chain after the marker, in device order."""
    out: list[ModelInstance] = []
    addr = base + 2
    while len(out) < MAX_MODELS and addr + 1 <= 65535:
        model_id, length = await read("holding", addr, 2)
        if model_id == END_ID or model_id == 0:
            break
        out.append(ModelInstance(model_id, addr, length))
        addr += 2 + length
    return out


async def discover(read: Reader, bases: Iterable[int]) -> tuple[int, list[ModelInstance]]:
    base = await find_base(read, bases)
    return base, await walk(read, base)


def decode_string(words: list[int]) -> str:
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    return raw.split(b"\x00", 1)[0].decode("ascii", errors="replace").strip()


def _point(ref: str, inst: ModelInstance, pdef: PointDef, base: int, mdef: ModelDef,
           sentinels: dict[str, tuple[int, ...]]) -> Point:
    sf: Point | None = None
    if pdef.sf:
        sdef = mdef.points.get(pdef.sf)
        if sdef is not None:
            sf = Point(f"{inst.id}:{sdef.name}@{inst.address + sdef.offset}", "holding",
                       inst.address + sdef.offset, "sunssf", "big", 1.0, "",
                       sentinels.get("sunssf", ()))
    t = pdef.type
    ctype = {"enum16": "u16", "bitfield16": "u16"}.get(t, t)
    return Point(f"{ref}@{base + pdef.offset}", "holding", base + pdef.offset, ctype, "big",
                 1.0, pdef.unit or "", sentinels.get(t, sentinels.get(ctype, ())), sf)


def resolve_ref(ref: str, instances: list[ModelInstance],
                sentinels: dict[str, tuple[int, ...]]) -> tuple[Point, ...] | None:
    """'103:W' / '160:2:DCW' / '160:*:DCW' -> points, or None if the device lacks it."""
    parts = ref.split(":")
    model_id = int(parts[0])
    mdef = models().get(model_id)
    inst = next((i for i in instances if i.id == model_id), None)
    if mdef is None or inst is None:
        return None
    if len(parts) == 2:
        pdef = mdef.points[parts[1]]
        if pdef.offset + pdef.size > inst.length + 2:
            return None  # a shorter (older) model revision without this point
        return (_point(ref, inst, pdef, inst.address, mdef, sentinels),)
    index, name = parts[1], parts[2]
    pdef = mdef.group_points[name]
    if mdef.group_length == 0:
        return None
    n = max(0, (inst.length - mdef.fixed_length) // mdef.group_length)
    first = inst.address + 2 + mdef.fixed_length
    wanted = range(n) if index == "*" else [int(index) - 1]
    pts = []
    for k in wanted:
        if not 0 <= k < n:
            return None
        start = first + k * mdef.group_length
        pts.append(_point(f"{model_id}:{k + 1}:{name}", inst, pdef, start, mdef, sentinels))
    return tuple(pts) if pts else None


def plan_for_sunspec(dmap: DeviceMap, instances: list[ModelInstance],
                     quantities: Iterable[str] | None = None,
                     extra: Plan | None = None) -> Plan:
    """Resolve every quantity against the discovered models; the first alternative the
    device has wins. Fixed registers of the map (SolarEdge's battery block) join in."""
    sentinels = codec.SENTINELS["sunspec"]
    wanted = set(dmap.measures) if quantities is None else set(quantities) & set(dmap.measures)
    measures: dict[str, tuple[tuple[int, tuple[Point, ...]], ...]] = {}
    unresolved: list[str] = []
    for qty in dmap.measures:
        if qty not in wanted:
            continue
        terms: list[tuple[int, tuple[Point, ...]]] = []
        for term in dmap.measures[qty]:
            pts: tuple[Point, ...] | None = None
            for ref in term.refs:
                if ":" not in ref:
                    pts = _fixed_point(dmap, ref)
                else:
                    pts = resolve_ref(ref, instances, sentinels)
                if pts is not None:
                    break
            if pts is None:
                break
            terms.append((term.sign, pts))
        else:
            measures[qty] = tuple(terms)
            continue
        unresolved.append(qty)
    pts_all = [p for terms in measures.values() for _, ps in terms for p in ps]
    pts_all += [p.sf for p in pts_all if p.sf is not None]
    joinable = [("holding", i.address, i.address + 1 + i.length) for i in instances]
    joinable += [(dmap.table, lo, hi) for lo, hi in dmap.read_spans]
    reads = plan_reads(pts_all, dmap.max_registers_per_read, joinable)  # type: ignore[arg-type]
    return Plan(measures, reads, tuple(unresolved))


def _fixed_point(dmap: DeviceMap, name: str) -> tuple[Point, ...]:
    reg = dmap.registers[name]
    sf = None
    if reg.scale_register:
        s = dmap.registers[reg.scale_register]
        sf = Point(s.name, s.table, s.address, s.type, s.word_order, s.scale, s.unit, s.missing)
    return (Point(reg.name, reg.table, reg.address, reg.type, reg.word_order, reg.scale,
                  reg.unit, reg.missing, sf),)
