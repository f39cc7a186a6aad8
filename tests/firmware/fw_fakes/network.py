"""Fake `network`: a station interface whose link the test switches on and off."""

STA_IF = 0
AP_IF = 1

state = {"up": True, "connects": 0}


def reset_fakes():
    state["up"] = True
    state["connects"] = 0


class WLAN:
    def __init__(self, interface=STA_IF):
        self.interface = interface
        self._active = False

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        return None

    def isconnected(self):
        return self._active and state["up"]

    def disconnect(self):
        pass

    def connect(self, ssid, password):
        state["connects"] += 1
