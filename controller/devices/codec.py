"""Register types: how many 16-bit words each takes, and how words become numbers.

Modbus carries 16-bit registers, each big-endian on the wire. Values wider than one
register span consecutive registers; vendors disagree on which word comes first
("word order"): SMA, Huawei, SunSpec and Eastron put the high word first (`big`),
SolarEdge's battery registers put the low word first (`little`).

Decoding never invents a number: a raw value a device uses to say "not available"
(a sentinel) and a float NaN/inf both decode to None.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from typing import Literal

WordOrder = Literal["big", "little"]

# type -> (words, struct format for the big-endian byte string, is float)
_TYPES: dict[str, tuple[int, str]] = {
    "u16": (1, ">H"),
    "s16": (1, ">h"),
    "u32": (2, ">I"),
    "s32": (2, ">i"),
    "u64": (4, ">Q"),
    "s64": (4, ">q"),
    "float32": (2, ">f"),
    "float64": (4, ">d"),
    # SunSpec names, kept so a map can say what the vendor's table says.
    "sunssf": (1, ">h"),
    "enum16": (1, ">H"),
    "acc16": (1, ">H"),
    "acc32": (2, ">I"),
    "acc64": (4, ">Q"),
}

TYPE_NAMES: tuple[str, ...] = tuple(_TYPES)
FLOAT_TYPES = frozenset({"float32", "float64"})

# Sentinel conventions: raw values (as unsigned words reassembled into an int of the type's
# width, or the signed value for signed types) that mean "not available".
SENTINELS: dict[str, dict[str, tuple[int, ...]]] = {
    "none": {},
    # SunSpec Information Model Specification, "unimplemented" values per type.
    "sunspec": {
        "u16": (0xFFFF,), "enum16": (0xFFFF,), "s16": (-0x8000,), "sunssf": (-0x8000,),
        "u32": (0xFFFFFFFF,), "s32": (-0x80000000,), "acc16": (0,), "acc32": (0,),
        "u64": (0xFFFFFFFFFFFFFFFF,), "s64": (-0x8000000000000000,), "acc64": (0,),
    },
    # SMA Modbus interface: NaN = lowest signed / highest unsigned value of the type.
    "sma": {
        "u16": (0xFFFF,), "s16": (-0x8000,), "u32": (0xFFFFFFFF, 0xFFFFFD),
        "s32": (-0x80000000,), "u64": (0xFFFFFFFFFFFFFFFF,),
    },
    # Huawei Solar Inverter Modbus Interface Definitions: invalid = highest value.
    "huawei": {
        "u16": (0xFFFF,), "s16": (0x7FFF,), "u32": (0xFFFFFFFF,), "s32": (0x7FFFFFFF,),
        "u64": (0xFFFFFFFFFFFFFFFF,), "s64": (0x7FFFFFFFFFFFFFFF,),
    },
}


def words_of(type_name: str) -> int:
    return _TYPES[type_name][0]


def is_float(type_name: str) -> bool:
    return type_name in FLOAT_TYPES


def _ordered(words: Sequence[int], order: WordOrder) -> bytes:
    seq = list(words) if order == "big" else list(reversed(words))
    return b"".join(w.to_bytes(2, "big") for w in seq)


def decode_raw(words: Sequence[int], type_name: str, order: WordOrder = "big") -> int | float:
    """Registers -> the raw number (an int, or a float for float types)."""
    n, fmt = _TYPES[type_name]
    if len(words) != n:
        raise ValueError(f"{type_name} needs {n} registers, got {len(words)}")
    value: int | float = struct.unpack(fmt, _ordered(words, order))[0]
    return value


def encode_raw(value: int | float, type_name: str, order: WordOrder = "big") -> list[int]:
    """The raw number -> registers (the emulators' direction). Integers must fit the type."""
    n, fmt = _TYPES[type_name]
    if type_name in FLOAT_TYPES:
        data = struct.pack(fmt, float(value))
    else:
        try:
            data = struct.pack(fmt, int(value))
        except struct.error:
            raise ValueError(f"{value} does not fit {type_name}") from None
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, 2 * n, 2)]
    return words if order == "big" else list(reversed(words))


def int_range(type_name: str) -> tuple[int, int]:
    n, fmt = _TYPES[type_name]
    bits = 16 * n
    if fmt[1].islower():  # signed struct codes are lowercase
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def is_missing(raw: int | float, type_name: str, sentinels: Iterable[int]) -> bool:
    """True if `raw` says "not available" (a sentinel, or a float that is not finite)."""
    if isinstance(raw, float):
        return not math.isfinite(raw)
    return raw in set(sentinels)
