"""Output files written piece by piece (a timeline, a schedule) that appear under their
name only once complete: a run that fails leaves no half file behind."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import IO


class PendingFile:
    """Text written to a hidden `.NAME.PID.part` beside `path`; `close` renames it to
    `path`, `abort` deletes it. `compress`: gzip (level 6)."""

    def __init__(self, path: str | Path, compress: bool = False) -> None:
        self.path = Path(path)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        self._f: IO[str] = (
            gzip.open(self._tmp, "wt", encoding="utf-8", compresslevel=6)  # noqa: SIM115
            if compress else self._tmp.open("w", encoding="utf-8"))

    def write(self, text: str) -> None:
        self._f.write(text)

    def close(self) -> None:
        self._f.close()
        self._tmp.replace(self.path)

    def abort(self) -> None:
        self._f.close()
        self._tmp.unlink(missing_ok=True)
