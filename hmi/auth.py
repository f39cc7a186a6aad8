"""Who may do what on the HMI: installer password, resident PIN, sessions, API tokens.

There is no default password. At first start (no installer password in the store) a
one-time setup code is generated and logged (the console, or the journal under systemd);
whoever can read the Pi's log sets the installer password with it. The code lives in
memory only: a restart makes a new one, setting the password retires it.

Roles: `resident` may change the mode, pause the miners and set the tank target;
`installer` may do everything (config, device tests, tokens, PIN). Viewing is open unless
`[hmi] public_view = false`.

Secrets are stored as argon2id hashes (argon2-cffi, RFC 9106 parameters); session ids and
API tokens are random 256-bit values stored as SHA-256 (they are not guessable, so a slow
hash adds nothing). The store is one JSON file written atomically with mode 0600.
Hashing is slow on purpose (~0.1 s): callers run it off the event loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from controller.errors import InputError, Problem

log = logging.getLogger(__name__)

Role = Literal["resident", "installer"]
RANK: dict[str, int] = {"none": 0, "resident": 1, "installer": 2}
STORE_VERSION = 1
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
MIN_PASSWORD = 10
TOKEN_PREFIX = "hth_"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Session:
    sid_sha256: str
    role: Role
    csrf: str
    created_at: float
    expires_at: float


@dataclass
class ApiToken:
    id: str
    name: str
    role: Role
    sha256: str
    created_at: float
    last_used_at: float | None = None


def password_problems(password: str) -> list[Problem]:
    out = []
    if len(password) < MIN_PASSWORD:
        out.append(Problem("password", f"must be at least {MIN_PASSWORD} characters"))
    elif len(set(password)) < 4:
        out.append(Problem("password", "is too simple (at least 4 different characters)"))
    return out


def pin_problems(pin: str) -> list[Problem]:
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 8):
        return [Problem("pin", "must be 4 to 8 digits")]
    return []


class AuthStore:
    """The auth store file and the sessions, tokens and secrets in it. Thread-safe."""

    def __init__(self, path: Path | str, *, resident_session_s: float = 30 * 86_400,
                 installer_session_s: float = 8 * 3600,
                 clock: Callable[[], float] = time.time,
                 hasher: PasswordHasher | None = None) -> None:
        self.path = Path(path)
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self.lifetime_s: dict[str, float] = {"resident": resident_session_s,
                                             "installer": installer_session_s}
        self._lock = threading.RLock()
        self.password_hash: str | None = None
        self.pin_hash: str | None = None
        self.sessions: dict[str, Session] = {}
        self.tokens: dict[str, ApiToken] = {}
        self._load()
        self.setup_code: str | None = None
        if self.password_hash is None:
            self._new_setup_code()

    # -- the file -------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as err:
            raise InputError(str(self.path), [Problem("", f"cannot read: {err.strerror}")]) \
                from None
        try:
            doc = json.loads(raw)
            if doc.get("version") != STORE_VERSION:
                raise ValueError(f"version {doc.get('version')!r}, expected {STORE_VERSION}")
            self.password_hash = doc.get("password_argon2")
            self.pin_hash = doc.get("pin_argon2")
            now = self.clock()
            for s in doc.get("sessions", []):
                sess = Session(**s)
                if sess.expires_at > now:
                    self.sessions[sess.sid_sha256] = sess
            for t in doc.get("tokens", []):
                tok = ApiToken(**t)
                self.tokens[tok.sha256] = tok
        except (ValueError, TypeError, AttributeError) as err:
            # Refuse rather than start without a password: an unreadable store must not
            # turn into an open HMI. `hearth hmi reset-password` starts it afresh.
            raise InputError(str(self.path), [Problem("", f"not a valid HMI auth store ({err}); "
                                                          "fix or remove it")]) from None

    def _save(self) -> None:
        doc: dict[str, Any] = {
            "version": STORE_VERSION, "password_argon2": self.password_hash,
            "pin_argon2": self.pin_hash,
            "sessions": [asdict(s) for s in self.sessions.values()],
            "tokens": [asdict(t) for t in self.tokens.values()],
        }
        data = (json.dumps(doc, indent=1) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    # -- first start ----------------------------------------------------------------------

    def _new_setup_code(self) -> None:
        raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(10))
        self.setup_code = f"{raw[:5]}-{raw[5:]}"
        log.warning("HMI first start: no installer password is set. One-time setup code: %s "
                    "(open /installer on the HMI and enter it with a new password)",
                    self.setup_code)

    @property
    def setup_required(self) -> bool:
        return self.password_hash is None

    def check_setup_code(self, code: str) -> bool:
        want = self.setup_code
        if want is None:
            return False
        norm = "".join(ch for ch in code.upper() if ch.isalnum())
        return hmac.compare_digest(norm.encode(), want.replace("-", "").encode())

    def setup(self, code: str, password: str) -> tuple[str, Session]:
        """Set the first installer password; returns an installer session."""
        with self._lock:
            if not self.setup_required:
                raise InputError("setup", [Problem("setup_code", "the installer password is "
                                                   "already set; log in instead")])
            if not self.check_setup_code(code):
                raise InputError("setup", [Problem("setup_code", "wrong setup code (see the "
                                                   "log of the Hearth service)")])
            problems = password_problems(password)
            if problems:
                raise InputError("setup", problems)
            self.password_hash = self.hasher.hash(password)
            self.setup_code = None
            log.info("HMI installer password set with the setup code")
            return self.new_session("installer")

    # -- secrets --------------------------------------------------------------------------

    def _verify(self, stored: str | None, given: str) -> bool:
        if stored is None:
            return False
        try:
            return self.hasher.verify(stored, given)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError) as err:
            log.error("HMI auth store holds an unusable hash: %s", err)
            return False

    def login(self, password: str) -> tuple[str, Session] | None:
        with self._lock:
            stored = self.password_hash
        if not self._verify(stored, password):
            return None
        with self._lock:
            if stored is not None and self.hasher.check_needs_rehash(stored):
                self.password_hash = self.hasher.hash(password)
            return self.new_session("installer")

    def pin_login(self, pin: str) -> tuple[str, Session] | None:
        with self._lock:
            stored = self.pin_hash
        if not self._verify(stored, pin):
            return None
        with self._lock:
            return self.new_session("resident")

    def change_password(self, current: str, new: str) -> None:
        if not self._verify(self.password_hash, current):
            raise InputError("password", [Problem("current_password", "is not the current "
                                                                      "password")])
        problems = password_problems(new)
        if problems:
            raise InputError("password", [Problem("new_password", p.reason) for p in problems])
        with self._lock:
            self.password_hash = self.hasher.hash(new)
            # Every other installer login ends: whoever knew the old password is out.
            self.sessions = {k: s for k, s in self.sessions.items() if s.role != "installer"}
            self._save()
        log.info("HMI installer password changed; installer sessions ended")

    def set_pin(self, pin: str | None) -> None:
        if pin is not None:
            problems = pin_problems(pin)
            if problems:
                raise InputError("pin", problems)
        with self._lock:
            self.pin_hash = None if pin is None else self.hasher.hash(pin)
            self.sessions = {k: s for k, s in self.sessions.items() if s.role != "resident"}
            self._save()
        log.info("HMI resident PIN %s; resident sessions ended", "set" if pin else "removed")

    @property
    def pin_configured(self) -> bool:
        return self.pin_hash is not None

    def reset_installer(self) -> None:
        """Forget the installer password and every login (the CLI, with file access; the
        service prints a new setup code when it next starts)."""
        with self._lock:
            self.password_hash = None
            self.sessions.clear()
            self._save()

    # -- sessions -------------------------------------------------------------------------

    def new_session(self, role: Role) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            now = self.clock()
            s = Session(_sha256(sid), role, secrets.token_urlsafe(24), now,
                        now + self.lifetime_s[role])
            self._purge(now)
            self.sessions[s.sid_sha256] = s
            self._save()
        return sid, s

    def _purge(self, now: float) -> None:
        self.sessions = {k: s for k, s in self.sessions.items() if s.expires_at > now}

    def session(self, sid: str) -> Session | None:
        with self._lock:
            s = self.sessions.get(_sha256(sid))
            if s is None:
                return None
            if s.expires_at <= self.clock():
                del self.sessions[s.sid_sha256]
                return None
            return s

    def end_session(self, sid: str) -> None:
        with self._lock:
            if self.sessions.pop(_sha256(sid), None) is not None:
                self._save()

    # -- API tokens -----------------------------------------------------------------------

    def create_token(self, name: str, role: Role) -> tuple[str, ApiToken]:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        t = ApiToken(secrets.token_hex(4), name.strip(), role, _sha256(token), self.clock())
        with self._lock:
            self.tokens[t.sha256] = t
            self._save()
        log.info("HMI API token %s (%r, %s) created", t.id, t.name, role)
        return token, t

    def token(self, token: str) -> ApiToken | None:
        with self._lock:
            t = self.tokens.get(_sha256(token))
            if t is not None:
                t.last_used_at = self.clock()  # in memory; saved with the next change
            return t

    def revoke_token(self, token_id: str) -> bool:
        with self._lock:
            for k, t in list(self.tokens.items()):
                if t.id == token_id:
                    del self.tokens[k]
                    self._save()
                    log.info("HMI API token %s (%r) revoked", t.id, t.name)
                    return True
        return False

    def list_tokens(self) -> list[ApiToken]:
        with self._lock:
            return sorted(self.tokens.values(), key=lambda t: t.created_at)

    def flush(self) -> None:
        """Save what changed in memory only (token last-use times)."""
        with self._lock, contextlib.suppress(OSError):
            self._save()


class LoginLimiter:
    """Failed logins per client address, with exponential back-off; never a global lockout.

    Checked before the (slow) hash is computed, so a client being refused costs nothing.
    A client's first `per_client` failures within `window_s` are free; after that it waits
    `backoff_base_s`, then twice as long after each further failure, at most `window_s`.
    A client that has not failed is never refused, so nobody can lock the others out.
    When more than `total` failures came from all addresses together within the window (a
    PIN guessed from many addresses), a client that has failed waits the whole window
    after its last failure: one guess per address per window, while a new client (the
    installer with the setup code) still gets its try. A client's count starts afresh
    after two quiet windows; a success clears it at once.
    """

    MAX_CLIENTS = 4096

    def __init__(self, per_client: int = 5, total: int = 20, window_s: float = 900.0,
                 clock: Callable[[], float] = time.monotonic, backoff_base_s: float = 1.0
                 ) -> None:
        self.per_client = per_client
        self.total = total
        self.window_s = window_s
        self.backoff_base_s = backoff_base_s
        self.clock = clock
        # client -> (failures since it was last quiet for two windows, last failure)
        self._by_client: dict[str, tuple[int, float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def _failures(self, client: str, now: float) -> tuple[int, float]:
        n, last = self._by_client.get(client, (0, -math.inf))
        if now - last >= 2 * self.window_s:  # quiet well beyond the longest wait: afresh
            self._by_client.pop(client, None)
            return 0, last
        return n, last

    def retry_after(self, client: str) -> float | None:
        """Seconds to wait if this client must be refused now, else None."""
        with self._lock:
            now = self.clock()
            while self._all and self._all[0] <= now - self.window_s:
                self._all.popleft()
            n, last = self._failures(client, now)
            if n == 0:
                return None
            if len(self._all) >= self.total:
                wait = self.window_s
            elif n >= self.per_client:
                wait = min(self.backoff_base_s * 2.0 ** (n - self.per_client), self.window_s)
            else:
                return None
            left = last + wait - now
            return left if left > 0 else None

    def failed(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            n, _ = self._failures(client, now)
            if client not in self._by_client and len(self._by_client) >= self.MAX_CLIENTS:
                self._by_client.pop(next(iter(self._by_client)))
            self._by_client[client] = (n + 1, now)
            self._all.append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._by_client.pop(client, None)
