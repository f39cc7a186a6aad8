"""Register maps as data: one TOML file per device family, loaded and checked here.

A map says where a device keeps each value and how to turn registers into our
quantities. A user adds a device family by writing a file, not Python:

```toml
[map]
id = "sma-inverter"            # = the file name without .toml
title = "SMA Sunny Boy / Sunny Tripower"
source = "the vendor document the addresses come from"
kind = "registers"             # fixed addresses; or "sunspec" (discovered models)
unit_id = 3                    # default Modbus unit (device id)
table = "holding"              # default register table: holding (FC3) or input (FC4)
word_order = "big"             # high word first; "little" = low word first
sentinels = "sma"              # raw values meaning "not available": none/sunspec/sma/huawei

[[register]]
name = "ac_power_w"
address = 30775
type = "s32"                   # u16 s16 u32 s32 u64 s64 float32 float64 sunssf ...
unit = "W"
scale = 1.0                    # value = raw * scale ...
# scale_register = "w_sf"      # ... * 10 ** (that sunssf register), SunSpec style

[measure]                      # our quantities, each a sum of signed terms
pv_power_w = "ac_power_w"
grid_power_w = ["grid_in_w", "-grid_out_w"]   # sign convention mapped to ours
```

In a `sunspec` map a term names a model point, `103:W`, a point of the n-th repeating
group, `160:3:DCW`, or the sum over all of them, `160:*:DCW`; alternatives separated by
`|` take the first model the device has (`101:W|103:W|113:W`).

Every problem is reported with the file, the line and the field, and a map with any
problem is refused whole.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from controller.devices import codec
from controller.errors import InputError, Problem

MAPS_DIR = Path(__file__).parent / "maps"
MAX_READ_REGISTERS = 125  # Modbus limit for FC3/FC4

Table = Literal["holding", "input"]

# Our quantities and the unit each must come in. Names carry the unit.
QUANTITIES: dict[str, str] = {
    "grid_power_w": "W",
    "grid_power_l1_w": "W",
    "grid_power_l2_w": "W",
    "grid_power_l3_w": "W",
    "grid_voltage_l1_v": "V",
    "grid_voltage_l2_v": "V",
    "grid_voltage_l3_v": "V",
    "grid_current_l1_a": "A",
    "grid_current_l2_a": "A",
    "grid_current_l3_a": "A",
    "grid_frequency_hz": "Hz",
    "pv_power_w": "W",
    "pv_power_l1_w": "W",
    "pv_power_l2_w": "W",
    "pv_power_l3_w": "W",
    "battery_power_w": "W",
    "soc_pct": "%",
}
# Several devices may add up to one site value; these are summed across devices.
SUMMABLE = frozenset(q for q in QUANTITIES if q.startswith(("pv_", "battery_power")))

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_SUNSPEC_REF_RE = re.compile(r"^(\d{1,5}):(?:(\d{1,3}|\*):)?([A-Za-z][A-Za-z0-9_]*)$")

_MAP_KEYS = {
    "id", "title", "source", "kind", "unit_id", "port", "table", "word_order", "sentinels",
    "max_registers_per_read", "timeout_s", "connect_delay_s", "inter_request_delay_s",
    "single_client", "notes", "read_spans",
}
_REGISTER_KEYS = {
    "name", "address", "type", "unit", "scale", "scale_register", "table", "word_order",
    "missing", "note",
}
_SUNSPEC_KEYS = {"bases"}


@dataclass(frozen=True)
class RegisterDef:
    """One register (or run of registers) at a fixed address."""

    name: str
    address: int
    type: str
    unit: str
    scale: float
    scale_register: str | None
    table: Table
    word_order: codec.WordOrder
    missing: tuple[int, ...]
    note: str = ""

    @property
    def words(self) -> int:
        return codec.words_of(self.type)


@dataclass(frozen=True)
class Term:
    """A signed summand of a quantity; `refs` are alternatives (first present wins)."""

    sign: int
    refs: tuple[str, ...]


@dataclass(frozen=True)
class DeviceMap:
    id: str
    title: str
    source: str
    kind: Literal["registers", "sunspec"]
    path: Path
    unit_id: int = 1
    port: int = 502
    table: Table = "holding"
    word_order: codec.WordOrder = "big"
    sentinels: str = "none"
    max_registers_per_read: int = MAX_READ_REGISTERS
    timeout_s: float = 1.0
    connect_delay_s: float = 0.0
    inter_request_delay_s: float = 0.0
    single_client: bool = False
    notes: str = ""
    sunspec_bases: tuple[int, ...] = (40000, 0, 50000)
    # Address ranges (in the default table) the device answers as a whole, so one read
    # may bridge unlisted registers inside them. Outside them reads never cross a gap.
    read_spans: tuple[tuple[int, int], ...] = ()
    registers: dict[str, RegisterDef] = field(default_factory=dict)
    measures: dict[str, tuple[Term, ...]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------
# Locating a field in the TOML text, so an error can name its line.


class _Lines:
    """Find the line of `[section]`, the n-th `[[array]]` and a key below either."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def _header(self, name: str, index: int | None) -> int | None:
        target = f"[[{name}]]" if index is not None else f"[{name}]"
        seen = 0
        for i, line in enumerate(self.lines):
            if line.strip().split("#", 1)[0].strip() == target:
                if index is None or seen == index:
                    return i
                seen += 1
        return None

    def of(self, section: str, index: int | None = None, key: str | None = None) -> int | None:
        start = self._header(section, index)
        if start is None:
            return None
        if key is None:
            return start + 1
        key_re = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for j in range(start + 1, len(self.lines)):
            stripped = self.lines[j].strip()
            if stripped.startswith("["):
                break
            if key_re.match(self.lines[j]):
                return j + 1
        return start + 1


def _where(lines: _Lines, section: str, index: int | None, key: str | None, label: str) -> str:
    line = lines.of(section, index, key)
    return f"line {line}: {label}" if line is not None else label


# ---------------------------------------------------------------------------------------


def shipped_maps() -> list[str]:
    """Ids of the maps that ship with Hearth (the sunspec model table is not a map)."""
    return sorted(p.stem for p in MAPS_DIR.glob("*.toml") if p.stem != "sunspec_models")


def map_path(name: str) -> Path:
    """A shipped map id, or a path to a user's map file."""
    if name.endswith(".toml") or "/" in name:
        return Path(name)
    return MAPS_DIR / f"{name}.toml"


@cache
def _load_cached(path: str, mtime_ns: int) -> DeviceMap:
    return parse_map(Path(path).read_text(encoding="utf-8"), Path(path))


def load_map(name: str) -> DeviceMap:
    """Load and check a map by id or path; raises InputError naming file, line and field."""
    path = map_path(name)
    try:
        st = path.stat()
    except OSError:
        known = ", ".join(shipped_maps())
        raise InputError(str(path), [Problem("", f"no such map (shipped maps: {known})")]) \
            from None
    try:
        return _load_cached(str(path), st.st_mtime_ns)
    except UnicodeDecodeError as err:
        raise InputError(str(path), [Problem("", f"not UTF-8 text ({err.reason})")]) from None


def parse_map(text: str, path: Path) -> DeviceMap:
    source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(source, [Problem("", f"TOML syntax error: {err}")]) from None
    lines = _Lines(text)
    problems: list[Problem] = []

    def bad(section: str, index: int | None, key: str | None, label: str, reason: str) -> None:
        problems.append(Problem(_where(lines, section, index, key, label), reason))

    for top in data:
        if top not in ("map", "register", "measure", "sunspec"):
            bad(top, None, None, top, "unknown section (expected map, register, measure, "
                "sunspec)")
    head = data.get("map")
    if not isinstance(head, dict):
        raise InputError(source, [Problem("map", "required section [map] is missing")])

    for key in head:
        if key not in _MAP_KEYS:
            bad("map", None, key, f"map.{key}", "unknown field (typo?)")

    def get(key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        if key not in head:
            return default
        v = head[key]
        if isinstance(v, bool) and kind is not bool:
            bad("map", None, key, f"map.{key}", f"must be {_kind_name(kind)}, not a boolean")
            return default
        if not isinstance(v, kind):
            bad("map", None, key, f"map.{key}", f"must be {_kind_name(kind)}, got {v!r}")
            return default
        return v

    map_id = get("id", str, "")
    if not map_id:
        bad("map", None, "id", "map.id", "required field is missing")
    elif map_id != path.stem and path.stem != "<string>":
        bad("map", None, "id", "map.id", f"must equal the file name {path.stem!r}")
    kind = get("kind", str, "registers")
    if kind not in ("registers", "sunspec"):
        bad("map", None, "kind", "map.kind", f"must be 'registers' or 'sunspec', got {kind!r}")
        kind = "registers"
    source_doc = get("source", str, "")
    if not source_doc.strip():
        bad("map", None, "source", "map.source", "required: name the vendor document")
    table = get("table", str, "holding")
    if table not in ("holding", "input"):
        bad("map", None, "table", "map.table", f"must be 'holding' or 'input', got {table!r}")
        table = "holding"
    word_order = get("word_order", str, "big")
    if word_order not in ("big", "little"):
        bad("map", None, "word_order", "map.word_order",
            f"must be 'big' or 'little', got {word_order!r}")
        word_order = "big"
    sentinels = get("sentinels", str, "sunspec" if kind == "sunspec" else "none")
    if sentinels not in codec.SENTINELS:
        bad("map", None, "sentinels", "map.sentinels",
            f"must be one of {sorted(codec.SENTINELS)}, got {sentinels!r}")
        sentinels = "none"
    unit_id = get("unit_id", int, 1)
    if not 0 <= unit_id <= 255:
        bad("map", None, "unit_id", "map.unit_id", "must be 0..255")
    port = get("port", int, 502)
    if not 1 <= port <= 65535:
        bad("map", None, "port", "map.port", "must be 1..65535")
    max_read = get("max_registers_per_read", int, MAX_READ_REGISTERS)
    if not 1 <= max_read <= MAX_READ_REGISTERS:
        bad("map", None, "max_registers_per_read", "map.max_registers_per_read",
            f"must be 1..{MAX_READ_REGISTERS}")
        max_read = MAX_READ_REGISTERS
    timing: dict[str, float] = {}
    for key, default in (("timeout_s", 1.0), ("connect_delay_s", 0.0),
                         ("inter_request_delay_s", 0.0)):
        v = get(key, (int, float), default)
        if v < 0 or (key == "timeout_s" and v == 0):
            bad("map", None, key, f"map.{key}", "must be positive" if key == "timeout_s"
                else "must be >= 0")
            v = default
        timing[key] = float(v)

    spans_raw = get("read_spans", list, [])
    read_spans: list[tuple[int, int]] = []
    for span in spans_raw:
        if (not isinstance(span, list) or len(span) != 2
                or not all(isinstance(a, int) and 0 <= a <= 65535 for a in span)
                or span[0] > span[1]):
            bad("map", None, "read_spans", "map.read_spans",
                f"each span must be [first, last] with 0 <= first <= last <= 65535, got {span!r}")
            continue
        read_spans.append((span[0], span[1]))

    bases: tuple[int, ...] = (40000, 0, 50000)
    ss = data.get("sunspec")
    if ss is not None:
        if kind != "sunspec":
            bad("sunspec", None, None, "sunspec", "only allowed with map.kind = 'sunspec'")
        elif not isinstance(ss, dict):
            bad("sunspec", None, None, "sunspec", "must be a table")
        else:
            for key in ss:
                if key not in _SUNSPEC_KEYS:
                    bad("sunspec", None, key, f"sunspec.{key}", "unknown field (typo?)")
            raw_bases = ss.get("bases", list(bases))
            if (not isinstance(raw_bases, list) or not raw_bases
                    or not all(isinstance(b, int) and 0 <= b <= 65535 for b in raw_bases)):
                bad("sunspec", None, "bases", "sunspec.bases",
                    "must be a non-empty list of addresses 0..65535")
            else:
                bases = tuple(raw_bases)

    registers = _parse_registers(data.get("register", []), lines, bad, table, word_order,
                                 sentinels)
    measures = _parse_measures(data.get("measure"), lines, bad, kind, registers)

    if problems:
        raise InputError(source, problems)
    return DeviceMap(
        id=map_id, title=get("title", str, map_id), source=source_doc, kind=kind, path=path,
        unit_id=unit_id, port=port, table=table, word_order=word_order, sentinels=sentinels,
        max_registers_per_read=max_read, timeout_s=timing["timeout_s"],
        connect_delay_s=timing["connect_delay_s"],
        inter_request_delay_s=timing["inter_request_delay_s"],
        single_client=get("single_client", bool, False), notes=get("notes", str, ""),
        sunspec_bases=bases, read_spans=tuple(read_spans), registers=registers, measures=measures,
    )


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _parse_registers(raw: Any, lines: _Lines, bad: Any, table: str, word_order: str,
                     sentinels: str) -> dict[str, RegisterDef]:
    out: dict[str, RegisterDef] = {}
    if not isinstance(raw, list):
        bad("register", 0, None, "register", "must be an array of tables ([[register]])")
        return out
    spans: list[tuple[str, int, int, str, int]] = []  # table, start, end, name, index
    for i, reg in enumerate(raw):
        label = f"register[{i}]"
        if not isinstance(reg, dict):
            bad("register", i, None, label, "must be a table")
            continue
        name = reg.get("name")
        if isinstance(name, str):
            label = f"register[{i}] ({name})"
        ok = True
        for key in reg:
            if key not in _REGISTER_KEYS:
                bad("register", i, key, f"{label}.{key}", "unknown field (typo?)")
                ok = False
        for key in ("name", "address", "type", "unit"):
            if key not in reg:
                bad("register", i, None, f"{label}.{key}", "required field is missing")
                ok = False
        if not ok:
            continue
        if not isinstance(name, str) or not _NAME_RE.match(name):
            bad("register", i, "name", f"{label}.name",
                "must be lowercase letters, digits and _ (starting with a letter)")
            continue
        if name in out:
            bad("register", i, "name", f"{label}.name", "duplicate register name")
            continue
        addr = reg["address"]
        if isinstance(addr, bool) or not isinstance(addr, int) or not 0 <= addr <= 65535:
            bad("register", i, "address", f"{label}.address", f"must be 0..65535, got {addr!r}")
            continue
        rtype = reg["type"]
        if rtype not in codec.TYPE_NAMES:
            bad("register", i, "type", f"{label}.type",
                f"unknown type {rtype!r} (expected one of {', '.join(codec.TYPE_NAMES)})")
            continue
        words = codec.words_of(rtype)
        if addr + words - 1 > 65535:
            bad("register", i, "address", f"{label}.address", "runs past register 65535")
            continue
        unit = reg["unit"]
        if not isinstance(unit, str):
            bad("register", i, "unit", f"{label}.unit", "must be a string")
            continue
        scale = reg.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale == 0:
            bad("register", i, "scale", f"{label}.scale", "must be a non-zero number")
            continue
        sf = reg.get("scale_register")
        if sf is not None and not isinstance(sf, str):
            bad("register", i, "scale_register", f"{label}.scale_register", "must be a name")
            continue
        rtable = reg.get("table", table)
        if rtable not in ("holding", "input"):
            bad("register", i, "table", f"{label}.table", "must be 'holding' or 'input'")
            continue
        rorder = reg.get("word_order", word_order)
        if rorder not in ("big", "little"):
            bad("register", i, "word_order", f"{label}.word_order", "must be 'big' or 'little'")
            continue
        if "missing" in reg:
            miss = reg["missing"]
            if not isinstance(miss, list) or not all(
                isinstance(m, int) and not isinstance(m, bool) for m in miss
            ):
                bad("register", i, "missing", f"{label}.missing", "must be a list of integers")
                continue
            missing = tuple(miss)
        else:
            missing = codec.SENTINELS.get(sentinels, {}).get(rtype, ())
        note = reg.get("note", "")
        out[name] = RegisterDef(name, addr, rtype, unit, float(scale), sf, rtable, rorder,
                                missing, note if isinstance(note, str) else "")
        spans.append((rtable, addr, addr + words - 1, name, i))

    # Overlaps within one table.
    spans.sort()
    for a, b in itertools.pairwise(spans):
        if a[0] == b[0] and b[1] <= a[2]:
            bad("register", b[4], "address", f"register[{b[4]}] ({b[3]}).address",
                f"overlaps register {a[3]!r} ({a[0]} {a[1]}..{a[2]})")
    # Scale registers must exist and be sunssf/s16 in the same map.
    for i, reg in enumerate(raw):
        if not isinstance(reg, dict):
            continue
        sf = reg.get("scale_register")
        name = reg.get("name")
        if sf is None or name not in out:
            continue
        target = out.get(sf)
        if target is None:
            bad("register", i, "scale_register", f"register[{i}] ({name}).scale_register",
                f"no register named {sf!r} in this map")
        elif target.type not in ("sunssf", "s16"):
            bad("register", i, "scale_register", f"register[{i}] ({name}).scale_register",
                f"{sf!r} must have type sunssf or s16, not {target.type}")
    return out


def _parse_terms(value: Any) -> list[tuple[int, str]] | str:
    items = value if isinstance(value, list) else [value]
    if not items:
        return "must name at least one register"
    terms: list[tuple[int, str]] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            return f"terms must be strings like 'name' or '-name', got {item!r}"
        s = item.strip()
        sign = 1
        if s[0] in "+-":
            sign = -1 if s[0] == "-" else 1
            s = s[1:].strip()
        terms.append((sign, s))
    return terms


def _parse_measures(raw: Any, lines: _Lines, bad: Any, kind: str,
                    registers: dict[str, RegisterDef]) -> dict[str, tuple[Term, ...]]:
    out: dict[str, tuple[Term, ...]] = {}
    if raw is None:
        bad("measure", None, None, "measure", "required section [measure] is missing")
        return out
    if not isinstance(raw, dict):
        bad("measure", None, None, "measure", "must be a table")
        return out
    for qty, value in raw.items():
        label = f"measure.{qty}"
        if qty not in QUANTITIES:
            bad("measure", None, qty, label,
                f"unknown quantity (expected one of {', '.join(QUANTITIES)})")
            continue
        parsed = _parse_terms(value)
        if isinstance(parsed, str):
            bad("measure", None, qty, label, parsed)
            continue
        terms: list[Term] = []
        for sign, text in parsed:
            refs = tuple(r.strip() for r in text.split("|"))
            for ref in refs:
                reason = _check_ref(ref, kind, registers, QUANTITIES[qty])
                if reason:
                    bad("measure", None, qty, label, reason)
            if len(refs) > 1 and all(":" not in r for r in refs):
                bad("measure", None, qty, label,
                    "alternatives ('a|b') are for SunSpec model points only")
            terms.append(Term(sign, refs))
        out[qty] = tuple(terms)
    if not out and not any(True for _ in raw):
        bad("measure", None, None, "measure", "must map at least one quantity")
    return out


def _check_ref(ref: str, kind: str, registers: dict[str, RegisterDef], unit: str) -> str | None:
    if ":" in ref:
        if kind != "sunspec":
            return f"{ref!r}: model points need map.kind = 'sunspec'"
        m = _SUNSPEC_REF_RE.match(ref)
        if not m:
            return f"{ref!r}: expected MODEL:POINT, MODEL:N:POINT or MODEL:*:POINT"
        model_id, index, point = int(m.group(1)), m.group(2), m.group(3)
        from controller.devices.sunspec import models

        mdef = models().get(model_id)
        if mdef is None:
            return f"{ref!r}: SunSpec model {model_id} is not in sunspec_models.toml"
        pdef = (mdef.group_points if index is not None else mdef.points).get(point)
        if pdef is None:
            where = "its repeating group" if index is not None else "the model"
            return f"{ref!r}: no point {point!r} in {where}"
        if pdef.unit is not None and pdef.unit != unit:
            return f"{ref!r}: unit {pdef.unit!r} does not match the quantity's {unit!r}"
        return None
    reg = registers.get(ref)
    if reg is None:
        return f"{ref!r}: no register with that name"
    if reg.unit != unit:
        return f"{ref!r}: unit {reg.unit!r} does not match the quantity's {unit!r}"
    return None
