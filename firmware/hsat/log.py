"""A print-based log. The ESP32 build has no `logging` module; tests hook the sink."""

try:
    from typing import TYPE_CHECKING
except ImportError:  # MicroPython: annotations are never evaluated there
    TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable


class Log:
    """Lines look like `WARN 12345 trip overtemp: ...` (level, uptime in ms, message)."""

    def __init__(self, sink: "Callable[[str], None] | None" = None) -> None:
        self.sink = sink
        self.now_ms = 0  # set by the main loop each tick, so lines carry the uptime

    def _emit(self, level: str, msg: str) -> None:
        line = "{} {} {}".format(level, self.now_ms, msg)
        if self.sink is not None:
            self.sink(line)
        else:
            print(line)

    def info(self, msg: str) -> None:
        self._emit("INFO", msg)

    def warn(self, msg: str) -> None:
        self._emit("WARN", msg)

    def error(self, msg: str) -> None:
        self._emit("ERROR", msg)
