"""From a map to reads: absolute register points, batched reads, decoded quantities.

A `Plan` is what a poller executes every period: a few reads of contiguous registers
(batched up to the device's per-request limit) and, for each quantity, the signed points
to add up. Both register maps and discovered SunSpec models end up as a Plan, so polling,
decoding and the emulators' encoding are the same code for every device family.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from controller.devices import codec
from controller.devices.regmap import DeviceMap, Table


@dataclass(frozen=True)
class Point:
    """One value at an absolute address; `sf` is the scale-factor point, if any."""

    key: str  # register name, or SunSpec ref with its address ("103:W@40083")
    table: Table
    address: int
    type: str
    word_order: codec.WordOrder
    scale: float
    unit: str
    missing: tuple[int, ...]
    sf: Point | None = None

    @property
    def words(self) -> int:
        return codec.words_of(self.type)


@dataclass(frozen=True)
class ReadBlock:
    table: Table
    address: int
    count: int


@dataclass(frozen=True)
class Plan:
    measures: Mapping[str, tuple[tuple[int, tuple[Point, ...]], ...]]  # qty -> (sign, points)
    reads: tuple[ReadBlock, ...]
    unresolved: tuple[str, ...] = ()  # quantities the device does not have (SunSpec)

    def points(self) -> list[Point]:
        seen: dict[tuple[str, int], Point] = {}
        for terms in self.measures.values():
            for _, pts in terms:
                for p in pts:
                    seen.setdefault((p.table, p.address), p)
                    if p.sf is not None:
                        seen.setdefault((p.sf.table, p.sf.address), p.sf)
        return list(seen.values())


def plan_reads(points: Iterable[Point], max_count: int,
               joinable: Iterable[tuple[Table, int, int]] = ()) -> tuple[ReadBlock, ...]:
    """Cover every point's registers with as few reads as possible.

    Registers are merged when they are contiguous. Gaps are bridged only inside a
    `joinable` span (table, first, last) known to be readable as a whole (a SunSpec
    model); many devices answer exception 0x02 to a read that touches an unmapped
    register, so a plain register map never reads across a gap.
    """
    spans = sorted({(p.table, p.address, p.address + p.words - 1) for p in points})
    joins = sorted(joinable)

    def same_join(table: Table, a: int, b: int) -> bool:
        return any(t == table and lo <= a and b <= hi for t, lo, hi in joins)

    blocks: list[ReadBlock] = []
    cur: list[int] | None = None  # [start, end]
    cur_table: Table = "holding"
    for table, lo, hi in spans:
        if cur is not None and table == cur_table:
            contiguous = lo <= cur[1] + 1
            bridgeable = same_join(table, cur[0], hi)
            if (contiguous or bridgeable) and max(hi, cur[1]) - cur[0] + 1 <= max_count:
                cur[1] = max(cur[1], hi)
                continue
        if cur is not None:
            blocks.append(ReadBlock(cur_table, cur[0], cur[1] - cur[0] + 1))
        cur, cur_table = [lo, hi], table
    if cur is not None:
        blocks.append(ReadBlock(cur_table, cur[0], cur[1] - cur[0] + 1))
    return tuple(blocks)


def plan_for_registers(dmap: DeviceMap, quantities: Iterable[str] | None = None) -> Plan:
    """A plain register map: every address is fixed, so the plan is known up front."""
    wanted = set(dmap.measures) if quantities is None else set(quantities) & set(dmap.measures)

    def point(name: str) -> Point:
        reg = dmap.registers[name]
        sf = point(reg.scale_register) if reg.scale_register else None
        return Point(reg.name, reg.table, reg.address, reg.type, reg.word_order, reg.scale,
                     reg.unit, reg.missing, sf)

    measures = {
        q: tuple((t.sign, (point(t.refs[0]),)) for t in dmap.measures[q])
        for q in dmap.measures if q in wanted
    }
    pts = [p for terms in measures.values() for _, ps in terms for p in ps]
    pts += [p.sf for p in pts if p.sf is not None]
    joinable = [(dmap.table, lo, hi) for lo, hi in dmap.read_spans]
    return Plan(measures, plan_reads(pts, dmap.max_registers_per_read, joinable))


class Image:
    """Register values read in one poll, by (table, address)."""

    def __init__(self) -> None:
        self.words: dict[tuple[Table, int], int] = {}
        self.at_s: dict[tuple[Table, int], float] = {}

    def put(self, block: ReadBlock, registers: list[int], at_s: float) -> None:
        for i, w in enumerate(registers):
            self.words[(block.table, block.address + i)] = w
            self.at_s[(block.table, block.address + i)] = at_s

    def get(self, p: Point) -> tuple[list[int], float] | None:
        keys = [(p.table, p.address + i) for i in range(p.words)]
        if not all(k in self.words for k in keys):
            return None
        return [self.words[k] for k in keys], min(self.at_s[k] for k in keys)


class Missing(Exception):
    """The device says it has no value here (a sentinel, NaN, or a missing scale factor)."""


def decode_point(p: Point, image: Image) -> tuple[float, float] | None:
    """(value in the point's unit, sampled at) or None if the registers were not read.

    Raises Missing when the device reports the value as not available.
    """
    got = image.get(p)
    if got is None:
        return None
    words, at_s = got
    raw = codec.decode_raw(words, p.type, p.word_order)
    if codec.is_missing(raw, p.type, p.missing):
        raise Missing(f"{p.key} = not available (raw {raw!r})")
    value = float(raw) * p.scale
    if p.sf is not None:
        sf = decode_point(p.sf, image)
        if sf is None:
            return None
        if not -10 <= sf[0] <= 10:
            raise Missing(f"{p.key}: implausible scale factor {sf[0]:g}")
        value *= 10.0 ** int(sf[0])
        at_s = min(at_s, sf[1])
    return value, at_s


def evaluate(plan: Plan, image: Image) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:
    """Quantities this image yields: {qty: (value, at_s)}, and {qty: why missing}."""
    values: dict[str, tuple[float, float]] = {}
    missing: dict[str, str] = {}
    for qty, terms in plan.measures.items():
        total, at = 0.0, float("inf")
        try:
            for sign, pts in terms:
                for p in pts:
                    got = decode_point(p, image)
                    if got is None:
                        raise LookupError
                    total += sign * got[0]
                    at = min(at, got[1])
        except Missing as why:
            missing[qty] = str(why)
            continue
        except LookupError:
            continue  # not read this time (the read failed): keep the old value aging
        values[qty] = (total + 0.0, at)  # + 0.0 turns -0.0 into 0.0
    return values, missing
