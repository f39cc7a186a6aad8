"""What `hearth run` starts from: the site file, or safe mode when the file is unusable.

1. The site file loads and validates: the service runs normally, and a copy of the bytes
   it started from is kept as `<site>.last-good` beside the file.
2. The file parses but does not validate: safe mode (miners held off, the reason shown)
   with the sections that validate on their own (controller/config/salvage.py): the MQTT
   bridge and the HMI stay reachable so the file can be fixed remotely.
3. The file does not parse (TOML syntax, not UTF-8, unreadable, missing): safe mode from
   the last good copy's sections, else from `<site>.prev` (the version provisioning kept);
   the installer reads that version with config/get and saves a whole document.
4. Nothing to be reached through (no usable `[mqtt]` and no HMI, or no site id anywhere):
   exit 2 with every problem; systemd does not restart it (RestartPreventExitStatus=2).

A config saved in safe mode ends the process with status 75 and systemd starts it again
on the new file (controller/runtime/assemble.py).
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.config.load import load_site
from controller.config.models import SiteConfig
from controller.config.salvage import salvage_site
from controller.errors import InputError, Problem

log = logging.getLogger(__name__)

LAST_GOOD_SUFFIX = ".last-good"


def last_good_path(site_path: str | Path) -> Path:
    p = Path(site_path)
    return p.with_name(p.name + LAST_GOOD_SUFFIX)


@dataclass(frozen=True)
class Start:
    """The config to run; `safe_reason` set: safe mode, and `document` is what the config
    store edits (the file's own document, or the last good one when the file does not
    parse)."""

    config: SiteConfig
    safe_reason: str | None = None
    document: dict[str, Any] = field(default_factory=dict)
    data: bytes | None = None  # the bytes of a valid site file (kept as the last good copy)


def _parse(path: Path) -> dict[str, Any] | None:
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def read_start(site_path: str | Path) -> Start:
    """The site file, or the safe mode it allows. Raises InputError (exit 2) only when
    safe mode could not be reached either, with the reason added."""
    path = Path(site_path)
    try:
        data = path.read_bytes()
    except OSError:
        data = None
    try:
        return Start(load_site(path), data=data)
    except InputError as err:
        failure = err
    reason = "; ".join(str(p) for p in failure.problems)
    document = _parse(path)
    origin = str(path)
    if document is None:
        for candidate in (last_good_path(path), path.with_name(path.name + ".prev")):
            document = _parse(candidate)
            if document is not None:
                origin = str(candidate)
                break
    salvaged = salvage_site(document) if document is not None else None
    if salvaged is None or not salvaged.reachable:
        why = ("no site id" if document is not None and salvaged is None else
               "no usable [mqtt] or [hmi] to be reached through" if salvaged is not None else
               f"it does not parse and there is no last good copy ({last_good_path(path).name})"
               " or previous version (.prev) to take [mqtt] and [hmi] from")
        raise InputError(failure.source, [*failure.problems,
                                          Problem("", f"safe mode cannot start: {why}")])
    if origin != str(path):
        reason += f" (safe mode reached through the sections of {Path(origin).name})"
    if salvaged.left_out:
        log.warning("safe mode runs without: %s", ", ".join(salvaged.left_out))
    assert document is not None
    return Start(salvaged.config, reason, document)


def keep_last_good(site_path: str | Path, data: bytes) -> None:
    """Keep the bytes of a site file the service started with (same mode as the file),
    written only when they changed. A failure is logged, never fatal."""
    path = Path(site_path)
    dest = last_good_path(path)
    try:
        if dest.exists() and dest.read_bytes() == data:
            return
        tmp = dest.with_name(dest.name + ".new")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, dest)
    except OSError as err:
        log.warning("cannot keep the last good site config as %s: %s", dest, err)
