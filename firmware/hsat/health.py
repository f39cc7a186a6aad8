"""Decides whether the main loop has earned a watchdog feed.

The hardware watchdog resets the board (which boots into the safe state) unless it is fed.
Feeding it on a timer would hide a stuck sensor bus or a broken safety path, so it is fed
only when every critical task has reported success recently: the safety rules ran and
drove the relays this tick, and the sensor cycle has completed within its deadline.
"""


class Health:
    def __init__(self, limits_ms: "dict[str, int]", now_ms: int = 0) -> None:
        self.limits_ms = limits_ms
        self.last_ok: "dict[str, int]" = {}
        for name in limits_ms:
            self.last_ok[name] = now_ms  # a grace period from boot
        self.last_problem = ""

    def ok(self, name: str, now_ms: int) -> None:
        self.last_ok[name] = now_ms

    def healthy(self, now_ms: int) -> bool:
        for name, limit in self.limits_ms.items():
            age = now_ms - self.last_ok[name]
            if age > limit:
                self.last_problem = "{} last succeeded {} ms ago (limit {} ms)".format(
                    name, age, limit)
                return False
        return True
