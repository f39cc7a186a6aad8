"""Write a site document back as TOML (the standard library only reads TOML).

Only what a site file holds is supported: tables, arrays of tables, and strings, numbers,
booleans, arrays and inline tables as values. Top-level tables become `[section]`, top-level
lists of tables `[[section]]`, everything deeper is written inline. `None` means "absent"
(TOML has no null) and is left out. The caller re-reads the output with tomllib and compares,
so a writer bug can never store a file that means something else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}


class TomlWriteError(ValueError):
    """A value TOML cannot hold (e.g. a list mixing tables and values at the top level)."""


def _key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else _string(k)


def _string(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    text = repr(x)
    return text if any(c in text for c in ".en") else text + ".0"


def value(v: Any) -> str:
    """One TOML value, written inline."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _float(v)
    if isinstance(v, Decimal):
        return _string(str(v))  # money stays exact: the models read decimal strings
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, Mapping):
        items = [f"{_key(str(k))} = {value(x)}" for k, x in v.items() if x is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(v, list | tuple):
        if any(x is None for x in v):
            raise TomlWriteError("an array cannot hold null")
        return "[" + ", ".join(value(x) for x in v) + "]"
    raise TomlWriteError(f"cannot write a {type(v).__name__} as TOML")


def _is_table_list(v: Any) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(isinstance(x, Mapping) for x in v)


def dumps(doc: Mapping[str, Any]) -> str:
    """The document as TOML text: scalars first, then tables, then arrays of tables."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, Any]]] = []
    arrays: list[tuple[str, list[Mapping[str, Any]]]] = []
    for k, v in doc.items():
        if v is None:
            continue
        if isinstance(v, Mapping):
            tables.append((str(k), v))
        elif _is_table_list(v):
            arrays.append((str(k), v))
        else:
            lines.append(f"{_key(str(k))} = {value(v)}")
    for name, table in tables:
        lines += ["", f"[{_key(name)}]"]
        lines += [f"{_key(str(k))} = {value(x)}" for k, x in table.items() if x is not None]
    for name, items in arrays:
        for item in items:
            lines += ["", f"[[{_key(name)}]]"]
            lines += [f"{_key(str(k))} = {value(x)}" for k, x in item.items() if x is not None]
    return "\n".join(lines).lstrip("\n") + "\n"
