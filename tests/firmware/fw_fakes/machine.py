"""Fake `machine`: pins that remember their history, a watchdog that counts feeds."""

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

cause = PWRON_RESET
pins = {}
watchdogs = []


def reset_fakes():
    global cause
    cause = PWRON_RESET
    pins.clear()
    del watchdogs[:]


def reset_cause():
    return cause


def disable_irq():
    return 1


def enable_irq(state):
    pass


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self.pull = pull
        self.level = 0 if value is None else (1 if value else 0)
        self.history = [self.level]  # every level written, in order
        self.handler = None
        self.trigger = None
        self.hard = False
        pins[id] = self

    def value(self, v=None):
        if v is None:
            return self.level
        level = 1 if v else 0
        if level != self.level:
            self.history.append(level)
        self.level = level
        return None

    def irq(self, trigger=None, handler=None, hard=False):
        self.trigger = trigger
        self.handler = handler
        self.hard = hard

    def fire(self):
        """A falling edge on an input pin: call its IRQ handler like the hardware would."""
        if self.handler is not None and self.trigger == Pin.IRQ_FALLING:
            self.handler(self)


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0
        watchdogs.append(self)

    def feed(self):
        self.feeds += 1
