"""Small JSON records on flash that survive a power cut in the middle of a write.

Each record has two slot files, `<name>.0` and `<name>.1`; a save goes to the slot not
holding the newest copy, as `<json>\n<checksum>`, with a sequence number inside the JSON.
A load takes the valid slot with the highest sequence, so a torn write loses one update,
never the record. No rename is needed, which not every filesystem makes atomic.
"""

import json
import os

try:
    from typing import TYPE_CHECKING
except ImportError:
    TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from hsat.log import Log


def checksum(data: bytes) -> int:
    """Adler-32 (RFC 1950): cheap and catches truncation and flipped bytes."""
    a, b = 1, 0
    for byte in data:
        a = (a + byte) % 65521
        b = (b + a) % 65521
    return (b << 16) | a


def _join(root: str, name: str) -> str:
    return name if not root else root.rstrip("/") + "/" + name


class Store:
    def __init__(self, root: str, log: "Log") -> None:
        self.root = root
        self.log = log
        self._seq: "dict[str, int]" = {}
        self._slot: "dict[str, int]" = {}

    def _read_slot(self, path: str) -> "tuple[int, Any] | None":
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except OSError:
            return None
        cut = blob.rfind(b"\n")
        if cut < 0:
            return None
        body, tail = blob[:cut], blob[cut + 1:]
        try:
            if int(tail.decode(), 16) != checksum(body):
                return None
            record = json.loads(body.decode())
            return int(record["seq"]), record["data"]
        except (ValueError, KeyError, TypeError):
            return None

    def load(self, name: str) -> "Any":
        """The newest intact copy, or None (never written, or both slots damaged)."""
        best: "tuple[int, Any] | None" = None
        best_slot = 1
        bad = 0
        for slot in (0, 1):
            path = _join(self.root, "{}.{}".format(name, slot))
            got = self._read_slot(path)
            if got is None:
                if _exists(path):
                    bad += 1
                continue
            if best is None or got[0] > best[0]:
                best, best_slot = got, slot
        if bad:
            self.log.warn("store {}: {} damaged slot(s) ignored".format(name, bad))
        if best is None:
            self._seq[name] = 0
            self._slot[name] = 1
            return None
        self._seq[name] = best[0]
        self._slot[name] = best_slot
        return best[1]

    def save(self, name: str, data: "Any") -> None:
        if name not in self._seq:
            self.load(name)
        seq = self._seq[name] + 1
        slot = 1 - self._slot[name]
        body = json.dumps({"seq": seq, "data": data}).encode()
        path = _join(self.root, "{}.{}".format(name, slot))
        with open(path, "wb") as f:
            f.write(body)
            f.write(b"\n")
            f.write("{:08x}".format(checksum(body)).encode())
        self._seq[name] = seq
        self._slot[name] = slot


def _exists(path: str) -> bool:
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def read_json(path: str) -> "Any":
    """A whole JSON file (config.json, boards.json). Raises OSError or ValueError."""
    with open(path) as f:
        return json.loads(f.read())

