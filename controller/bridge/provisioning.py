"""Installer provisioning: validate a whole site config or a patch, write it atomically,
keep the previous version for rollback, and show the current one with secrets redacted.

The file on disk is the site TOML the service loads at start. A change is:
validate (the same pydantic models as `hearth config check`) -> write `<file>.new`, fsync,
re-read and compare -> keep the current file as `<file>.prev` -> rename into place. An
invalid document changes nothing and every problem is reported with its TOML path.
The file is edited in place with tomlkit (controller/bridge/tomldoc.py): the installer's
comments, key order and layout survive a save, and only changed values are rewritten.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import re
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.bridge import tomldoc
from controller.config.load import load_site, parse_site
from controller.config.models import SiteConfig
from controller.errors import InputError, Problem

log = logging.getLogger(__name__)

REDACTED = "<redacted>"
# Keys whose values are secrets wherever they appear (miner driver settings, ...).
# A key ending in _file/_path names where a secret lives, which is not itself secret.
_SECRET_KEY = re.compile(r"(pass(word|phrase)?|secret|token|api[_-]?key|psk|private[_-]?key)",
                         re.IGNORECASE)
_NOT_SECRET_SUFFIX = ("_file", "_path")


def is_secret_key(key: str) -> bool:
    k = key.lower()
    return bool(_SECRET_KEY.search(k)) and not k.endswith(_NOT_SECRET_SUFFIX)


def redact(doc: Any) -> Any:
    """A copy of `doc` with every secret value replaced by REDACTED."""
    if isinstance(doc, Mapping):
        return {k: (REDACTED if is_secret_key(str(k)) and v is not None else redact(v))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [redact(x) for x in doc]
    return doc


def _align(new: list[Any], old: list[Any]) -> list[Any | None]:
    """For each item of `new`, its counterpart in `old`: by `name` if items have one."""
    old_by_name = {x.get("name"): x for x in old if isinstance(x, Mapping) and "name" in x}
    out: list[Any | None] = []
    for i, item in enumerate(new):
        if isinstance(item, Mapping) and "name" in item:
            out.append(old_by_name.get(item["name"]))
        else:
            out.append(old[i] if i < len(old) else None)
    return out


def restore_secrets(new: Any, old: Any, where: str, problems: list[Problem]) -> Any:
    """Put back current secret values where `new` carries REDACTED (a get -> edit -> push)."""
    if isinstance(new, Mapping):
        old_map = old if isinstance(old, Mapping) else {}
        out: dict[str, Any] = {}
        for k, v in new.items():
            path = f"{where}.{k}" if where else str(k)
            if v == REDACTED and is_secret_key(str(k)):
                if k in old_map and old_map[k] is not None:
                    out[k] = old_map[k]
                else:
                    problems.append(Problem(path, f"is {REDACTED!r} but there is no current "
                                                  "value to keep; send the real value"))
            else:
                out[k] = restore_secrets(v, old_map.get(k), path, problems)
        return out
    if isinstance(new, list):
        olds = _align(new, old) if isinstance(old, list) else [None] * len(new)
        return [restore_secrets(x, o, f"{where}[{i}]", problems)
                for i, (x, o) in enumerate(zip(new, olds, strict=True))]
    return new


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _drop_nulls(doc: Any) -> Any:
    """TOML has no null: a null in a whole document means 'not set', i.e. the default."""
    if isinstance(doc, Mapping):
        return {k: _drop_nulls(v) for k, v in doc.items() if v is not None}
    if isinstance(doc, list):
        return [_drop_nulls(x) for x in doc]
    return doc


def changed_sections(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def version_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class Proposal:
    """A validated document, ready to be committed."""

    raw: dict[str, Any]
    config: SiteConfig
    text: str
    changed: list[str]


# Sections the running process cannot take over without a restart (reported, still saved).
RESTART_SECTIONS = frozenset({"mqtt", "devices", "ledger", "satellite"})


class ConfigStore:
    """The site file, its previous version, and validated changes. Thread-safe."""

    def __init__(self, path: Path | str, *,
                 running: tuple[SiteConfig, dict[str, Any]] | None = None) -> None:
        """`running`: safe mode, where the file does not load: the config the service runs
        (its site id is the one a save must keep) and the document a patch applies to and
        config/get shows (the file's own, or its last good copy when it does not parse)."""
        self.path = Path(path)
        self.prev_path = self.path.with_name(self.path.name + ".prev")
        self._lock = threading.RLock()
        if running is not None:
            self.config, self.raw = running[0], copy.deepcopy(running[1])
            try:
                self.version = version_of(self.path.read_bytes())
            except OSError:
                self.version = version_of(b"")
            return
        self.config = load_site(self.path)
        data = self.path.read_bytes()
        self.raw = tomllib.loads(data.decode("utf-8"))
        self.version = version_of(data)

    # -- reading ---------------------------------------------------------------------------

    def redacted(self) -> dict[str, Any]:
        with self._lock:
            result: dict[str, Any] = redact(self.raw)
            return result

    @property
    def has_previous(self) -> bool:
        return self.prev_path.exists()

    # -- changing ----------------------------------------------------------------------------

    def propose(self, *, document: Any = None, patch: Any = None,
                source: str = "config/set") -> Proposal:
        """Validate a whole document or a merge patch against the current one.

        Raises InputError listing every problem (paths as in the TOML file).
        """
        with self._lock:
            if (document is None) == (patch is None):
                raise InputError(source, [Problem("payload", "give exactly one of 'config' "
                                                  "(a whole site) or 'patch' (a merge patch)")])
            where = "config" if document is not None else "patch"
            body = document if document is not None else patch
            if not isinstance(body, Mapping):
                raise InputError(source, [Problem(where, "must be an object (a TOML document)")])
            problems: list[Problem] = []
            body = restore_secrets(body, self.raw, "", problems)
            if problems:
                raise InputError(source, problems)
            raw = _drop_nulls(body) if document is not None else merge_patch(self.raw, body)
            config = parse_site(raw, source)
            if config.site.id != self.config.site.id:
                raise InputError(source, [Problem(
                    "site.id", f"cannot change over MQTT (from {self.config.site.id!r} to "
                    f"{config.site.id!r}): every topic is named after it; edit the file on the "
                    "controller and restart")])
            try:
                # Edit the installer's file in place (tomlkit): comments and order survive.
                text = tomldoc.update(self._current_text_or_empty(), raw)
                if tomllib.loads(text) != raw:  # a layout the edit cannot keep: write anew
                    text = tomldoc.dumps(raw)
                text.encode("utf-8")
            except tomldoc.TomlWriteError as err:
                raise InputError(source, [Problem(where, str(err))]) from None
            except UnicodeEncodeError:
                raise InputError(source, [Problem(where, "contains text that is not valid "
                                                  "Unicode (a lone surrogate escape)")]) from None
            if tomllib.loads(text) != raw or parse_site(tomllib.loads(text), source) != config:
                raise InputError(source, [Problem(where, "cannot be written as TOML without "
                                                  "changing its meaning")])
            return Proposal(raw, config, text, changed_sections(self.raw, raw))

    def commit(self, proposal: Proposal) -> str:
        """Write atomically, keeping the current file as the previous version."""
        with self._lock:
            data = proposal.text.encode("utf-8")
            self._atomic_swap(data)
            self.raw, self.config = proposal.raw, proposal.config
            self.version = version_of(data)
            log.info("site config written (%s), changed: %s", self.version,
                     ", ".join(proposal.changed) or "nothing")
            return self.version

    def rollback(self, source: str = "config/rollback") -> Proposal:
        """Validate the previous version; commit() it to swap current and previous."""
        with self._lock:
            if not self.prev_path.exists():
                raise InputError(source, [Problem("", "there is no previous version to roll "
                                                  "back to")])
            data = self.prev_path.read_bytes()
            try:
                raw = tomllib.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
                raise InputError(source, [Problem(str(self.prev_path),
                                                  f"unreadable: {err}")]) from None
            config = parse_site(raw, source)
            return Proposal(raw, config, data.decode("utf-8"), changed_sections(self.raw, raw))

    def restore(self, raw: dict[str, Any], config: SiteConfig, text: str) -> None:
        """Undo a commit whose application failed: the old text goes back in place."""
        with self._lock:
            data = text.encode("utf-8", errors="surrogateescape")
            self._atomic_swap(data)
            self.raw, self.config = raw, config
            self.version = version_of(data)

    def _current_text_or_empty(self) -> str:
        """The file to edit in place; empty (a document written anew) when it does not
        parse (safe mode repairs a broken file)."""
        try:
            text = self.path.read_text(encoding="utf-8")
            tomllib.loads(text)
            return text
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return ""

    def current_text(self) -> str:
        """The file as it is (for restore()): bytes kept even if not UTF-8; none: empty."""
        with self._lock:
            try:
                return self.path.read_bytes().decode("utf-8", errors="surrogateescape")
            except FileNotFoundError:
                return ""

    def _atomic_swap(self, data: bytes) -> None:
        tmp = self.path.with_name(self.path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        exists = self.path.exists()  # safe mode may write a site file that was missing
        os.chmod(tmp, self.path.stat().st_mode & 0o777 if exists else 0o660)
        if exists:
            # Keep the current file as the previous version: a hard link is atomic and
            # leaves the current path in place until the rename below replaces it.
            prev_tmp = self.prev_path.with_name(self.prev_path.name + ".new")
            prev_tmp.unlink(missing_ok=True)
            os.link(self.path, prev_tmp)
            os.replace(prev_tmp, self.prev_path)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
