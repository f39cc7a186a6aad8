"""A serial line on one machine: two pseudo-terminals joined by `socat`.

The RTU emulator opens one end, the controller the other, and bytes cross like on an
RS-485 pair (no baud-rate timing: a pty is as fast as the CPU). socat comes from Debian's
`socat` package (`make system-deps`). Only the socat process this object started is ever
stopped, by its pid.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType


class SocatMissing(RuntimeError):
    pass


class PtyPair:
    def __init__(self, directory: str | Path | None = None) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hearth-pty-")
            directory = self._tmp.name
        self.dir = Path(directory)
        self.device_end = str(self.dir / "device")  # the emulator's side
        self.host_end = str(self.dir / "host")  # the controller's side
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> PtyPair:
        socat = shutil.which("socat")
        if socat is None:
            raise SocatMissing("socat is not installed (Debian package 'socat')")
        self._proc = subprocess.Popen(
            [socat, "-d", "-d",
             f"pty,raw,echo=0,link={self.device_end}",
             f"pty,raw,echo=0,link={self.host_end}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while not (os.path.exists(self.device_end) and os.path.exists(self.host_end)):
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"socat exited: {err.strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("socat did not create the pty pair")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        if self._proc is not None and self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> PtyPair:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
