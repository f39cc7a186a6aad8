"""The register contents of an emulated device, written from our quantities.

An emulator must serve exactly what the real device would: the addresses, types, word
order, scale factors, sentinels and *sign conventions* of its map. So the image is built
from the same map and resolution code the acquisition layer reads with, run backwards:
a value in our convention (grid import +, battery charge +) is turned into the vendor's
raw registers. SunSpec devices get a real model chain (SunS marker, common model, the
models of the layout, end marker), with every point the emulator does not fill left at
its "not implemented" value, as the specification says.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.devices import codec
from controller.devices.plan import Plan, Point, plan_for_registers
from controller.devices.regmap import DeviceMap, load_map
from controller.devices.sunspec import (
    SUNS,
    ModelInstance,
    PointDef,
    models,
    plan_for_sunspec,
)

log = logging.getLogger(__name__)

# Which SunSpec models each shipped SunSpec map's device has (repeating-group counts in
# GROUPS). The common model (1) precedes each device, as SolarEdge does for its meter.
DEFAULT_LAYOUTS: dict[str, tuple[int, ...]] = {
    "sunspec": (1, 103, 1, 203, 802),
    "solaredge": (1, 103, 1, 203),
    "solaredge-hybrid": (1, 103, 1, 203),
    "fronius": (1, 113),
    "fronius-gen24": (1, 113, 160, 124),
    "fronius-meter": (1, 213),
}
GROUPS: dict[int, int] = {160: 4}
# Scale factors the emulated devices use (raw = value / 10**sf).
DEFAULT_SF: dict[str, int] = {"W_SF": 0, "V_SF": -1, "Hz_SF": -2, "A_SF": -2, "SoC_SF": -1,
                              "ChaState_SF": -1, "DCW_SF": 0, "VA_SF": 0, "VAr_SF": 0,
                              "VAR_SF": 0, "PF_SF": -2, "WH_SF": 0, "TotWh_SF": 0}


@dataclass
class Layout:
    base: int
    instances: list[ModelInstance]


def _sentinel(type_name: str) -> list[int]:
    """Registers holding SunSpec's "not implemented" value for a type."""
    if type_name == "float32":
        return codec.encode_raw(math.nan, "float32")
    vals = codec.SENTINELS["sunspec"].get(type_name)
    if vals is None:
        return [0] * codec.words_of(type_name)
    return codec.encode_raw(vals[0], type_name)


class DeviceImage:
    """Register words of one device; `set_values` writes quantities into them."""

    def __init__(self, dmap: DeviceMap | str, *, layout: Sequence[int] | None = None,
                 base: int = 40000) -> None:
        self.map = load_map(dmap) if isinstance(dmap, str) else dmap
        self.words: dict[int, int] = {}
        self.layout: Layout | None = None
        if self.map.kind == "sunspec":
            ids = tuple(layout) if layout is not None else DEFAULT_LAYOUTS.get(
                self.map.id, (1, 103, 1, 203, 802))
            self.layout = self._build_sunspec(ids, base)
            self.plan: Plan = plan_for_sunspec(self.map, self.layout.instances)
        else:
            self.plan = plan_for_registers(self.map)
        # Spans the device answers as a whole hold other (unmapped) registers too.
        for lo, hi in self.map.read_spans:
            for a in range(lo, hi + 1):
                self.words.setdefault(a, 0)
        # Fixed registers of a SunSpec map (SolarEdge's battery block) exist too.
        for p in self.plan.points():
            for i in range(p.words):
                self.words.setdefault(p.address + i, 0)

    def _build_sunspec(self, ids: Sequence[int], base: int) -> Layout:
        defs = models()
        self.words[base], self.words[base + 1] = SUNS
        addr = base + 2
        instances = []
        for n, mid in enumerate(ids):
            mdef = defs[mid]
            length = mdef.fixed_length + GROUPS.get(mid, 0) * mdef.group_length
            regs = [0] * (length + 2)
            regs[0], regs[1] = mid, length

            serial = f"EMU{base + n:05d}"
            self._fill(regs, mdef.points, 0, mid, serial)
            for g in range(GROUPS.get(mid, 0)):
                gstart = 2 + mdef.fixed_length + g * mdef.group_length
                self._fill(regs, mdef.group_points, gstart, mid, serial)
                if "ID" in mdef.group_points:
                    regs[gstart + mdef.group_points["ID"].offset] = g + 1
            for i, w in enumerate(regs):
                self.words[addr + i] = w
            instances.append(ModelInstance(mid, addr, length))
            addr += length + 2
        self.words[addr], self.words[addr + 1] = 0xFFFF, 0
        return Layout(base, instances)

    def _fill(self, regs: list[int], points: Mapping[str, PointDef], start: int, mid: int,
              serial: str) -> None:
        """Initial words of a model: strings, scale factors, counts, and "not implemented"
        for every measured point (the emulator overwrites those it feeds)."""
        for pdef in points.values():
            name, off, typ = pdef.name, pdef.offset, pdef.type
            if off < 2 and start == 0:
                continue  # ID and L
            if typ == "string":
                text = {"Mn": "Hearth", "Md": f"emulated {self.map.id}", "SN": serial}.get(
                    name, "")
                raw = text.encode("ascii")[: 2 * pdef.size].ljust(2 * pdef.size, b"\0")
                words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
            elif typ == "sunssf":
                words = codec.encode_raw(DEFAULT_SF.get(name, 0), "sunssf")
            elif typ == "u16" and name == "N":
                words = [GROUPS.get(mid, 0)]
            elif typ in codec.TYPE_NAMES:
                words = _sentinel(typ)
            else:
                words = [0] * pdef.size
            regs[start + off : start + off + len(words)] = words

    def _write(self, p: Point, value: float) -> None:
        sf = 0
        if p.sf is not None:
            sf_words = [self.words[p.sf.address + i] for i in range(p.sf.words)]
            sf = int(codec.decode_raw(sf_words, p.sf.type, p.sf.word_order))
        raw = value / p.scale / (10.0 ** sf)
        if not codec.is_float(p.type):
            lo, hi = codec.int_range(p.type)
            raw_i = round(raw)
            clipped = min(max(raw_i, lo), hi)
            if clipped in p.missing:  # keep clear of the "not available" values
                clipped += 1 if clipped < 0 or clipped == lo else -1
            if clipped != raw_i:
                log.warning("emulated %s: %s = %g does not fit %s; clipped", self.map.id,
                            p.key, value, p.type)
            words = codec.encode_raw(clipped, p.type, p.word_order)
        else:
            words = codec.encode_raw(raw, p.type, p.word_order)
        for i, w in enumerate(words):
            self.words[p.address + i] = w

    def _read_back(self, p: Point) -> float:
        words = [self.words[p.address + i] for i in range(p.words)]
        value = float(codec.decode_raw(words, p.type, p.word_order)) * p.scale
        if p.sf is not None:
            sf_words = [self.words[p.sf.address + i] for i in range(p.sf.words)]
            value *= 10.0 ** int(codec.decode_raw(sf_words, p.sf.type, p.sf.word_order))
        return value

    def set_values(self, values: Mapping[str, float]) -> None:
        """Write every quantity this device measures (ours: import +, charge +).

        Quantities read from one register are written first; a sum (Victron's PV, SMA's
        drawn - fed in, SolarEdge's DC + battery) then puts what is left of its value
        into the registers no other quantity owns, so every quantity reads back right.
        """
        owned: set[int] = set()
        singles = {q for q, t in self.plan.measures.items() if len(t) == 1
                   and len(t[0][1]) == 1 and q in values}
        for qty in singles:
            sign, (p,) = self.plan.measures[qty][0]
            self._write(p, sign * float(values[qty]))
            owned.add(p.address)
        for qty, terms in self.plan.measures.items():
            if qty not in values or qty in singles:
                continue
            v = float(values[qty])
            free: list[tuple[int, tuple[Point, ...]]] = []
            for sign, pts in terms:
                if all(p.address in owned for p in pts):
                    v -= sign * sum(self._read_back(p) for p in pts)
                else:
                    free.append((sign, pts))
            pos = [pts for sign, pts in free if sign > 0]
            neg = [pts for sign, pts in free if sign < 0]
            if pos and neg:  # an in/out pair: each side carries its magnitude
                share_pos, share_neg = max(v, 0.0) / len(pos), max(-v, 0.0) / len(neg)
            elif pos:
                share_pos, share_neg = v / len(pos), 0.0
            elif neg:
                share_pos, share_neg = 0.0, -v / len(neg)
            else:
                continue
            for sign, pts in free:
                share = share_pos if sign > 0 else share_neg
                for p in pts:
                    self._write(p, share / len(pts))

    def set_missing(self, quantity: str) -> None:
        """Put the "not available" value of the device's convention into a quantity."""
        for _, pts in self.plan.measures.get(quantity, ()):
            for p in pts:
                if codec.is_float(p.type):
                    words = codec.encode_raw(math.nan, p.type, p.word_order)
                elif p.missing:
                    words = codec.encode_raw(p.missing[0], p.type, p.word_order)
                else:
                    raise ValueError(f"{self.map.id}: {p.key} has no sentinel")
                for i, w in enumerate(words):
                    self.words[p.address + i] = w

    def blocks(self) -> list[tuple[int, list[int]]]:
        """Contiguous runs of defined registers: (first address, words)."""
        out: list[tuple[int, list[int]]] = []
        for addr in sorted(self.words):
            if out and out[-1][0] + len(out[-1][1]) == addr:
                out[-1][1].append(self.words[addr])
            else:
                out.append((addr, [self.words[addr]]))
        return out
