"""Write site documents as TOML with tomlkit, a round-trip TOML library: a save from MQTT or
the HMI edits the installer's file in place, so comments, key order and layout survive and
only the values that changed are rewritten.

`update(text, new)` applies the new document onto the current text: keys that are gone are
removed, changed values replaced, new ones added at the end of their table. `dumps(doc)`
writes a document from scratch (`hearth installer get`, tests). The caller re-reads the
result with tomllib and compares, so the text can never mean something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, InlineTable, Item, Table


class TomlWriteError(ValueError):
    """A value TOML cannot hold (null in an array, a mixed array of tables, ...)."""


def _same(a: Any, b: Any) -> bool:
    """Equal in value and type (1, 1.0 and true are different values in TOML)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _is_table_list(v: Any) -> bool:
    return isinstance(v, list) and len(v) > 0 and all(isinstance(x, Mapping) for x in v)


def _fresh(v: Any, top: bool) -> Any:
    """A new tomlkit item: tables and arrays of tables at the top level, inline deeper."""
    if isinstance(v, Mapping):
        if top:
            t = tomlkit.table()
            for k, x in v.items():
                t[str(k)] = _fresh(x, top=_is_table_list(x) or False)
            return t
        it = tomlkit.inline_table()
        for k, x in v.items():
            it[str(k)] = _fresh(x, top=False)
        return it
    if top and _is_table_list(v):
        aot = tomlkit.aot()
        for x in v:
            aot.append(_fresh(x, top=True))
        return aot
    if isinstance(v, list):
        if any(x is None for x in v):
            raise TomlWriteError("an array cannot hold null")
        arr = tomlkit.array()
        for x in v:
            arr.append(_fresh(x, top=False))
        return arr
    if v is None:
        raise TomlWriteError("TOML has no null")
    return v


def _merge(box: Container | Table | InlineTable, new: Mapping[str, Any], top: bool) -> None:
    """Make `box` hold `new`, keeping whatever is unchanged as it was written."""
    for k in [k for k in box if k not in new]:
        del box[k]
    for k, v in new.items():
        old = box.get(k)
        plain = old.unwrap() if isinstance(old, Item) else old
        if k not in box:
            box[k] = _fresh(v, top=top or isinstance(box, Table))
        elif _same(plain, v):
            continue
        elif isinstance(v, Mapping) and isinstance(old, Table | InlineTable):
            _merge(old, v, top=False)
        elif _is_table_list(v) and isinstance(old, AoT):
            tables = old.body
            for i, item in enumerate(v):
                if i < len(tables):
                    _merge(tables[i], item, top=False)
                else:
                    old.append(_fresh(item, top=True))
            while len(old.body) > len(v):
                del old[len(old.body) - 1]
        else:
            box[k] = _fresh(v, top=top and (isinstance(v, Mapping) or _is_table_list(v)))


def update(text: str, new: Mapping[str, Any]) -> str:
    """`text` (the current file) edited to hold `new`, comments and layout kept."""
    try:
        doc = tomlkit.parse(text)
        _merge(doc, new, top=True)
        return tomlkit.dumps(doc)
    except (TOMLKitError, TypeError, KeyError) as err:
        raise TomlWriteError(str(err)) from None


def dumps(doc: Mapping[str, Any]) -> str:
    """A document written from scratch."""
    try:
        return update("", doc)
    except TomlWriteError:
        raise
