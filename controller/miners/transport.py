"""The three wire formats the miner APIs use, as small async helpers.

- HTTP+JSON (Braiins OS REST, AxeOS, Vnish, Shelly Gen2 RPC): one aiohttp session per driver.
- cgminer API on TCP 4028 (cgminer/bmminer, LuxOS, Avalon): one JSON request per
  connection, the reply is JSON terminated by a NUL byte (or by closing the connection).
- Whatsminer API v3 on TCP 4433: 4-byte little-endian length, then JSON, both ways.

Timeouts are applied by the caller (`MinerDriver._call`); these helpers only parse strictly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from typing import Any

import aiohttp

from controller.miners.base import AuthExpired, DriverError

MAX_REPLY_BYTES = 4 * 1024 * 1024


class HttpJson:
    """A tiny JSON-over-HTTP client with status mapping (401 -> AuthExpired)."""

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.base = f"http://{host}:{port}"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def request(self, method: str, path: str, body: Any = None,
                      headers: dict[str, str] | None = None, ok: tuple[int, ...] = (200,),
                      ) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if body is not None:
            kwargs["json"] = body
        async with self._session.request(method, self.base + path, **kwargs) as resp:
            text = await resp.text()
            if resp.status == 401:
                raise AuthExpired(f"{method} {path}: 401 unauthorized")
            if resp.status not in ok:
                raise_for_reply(method, path, resp.status, text)
            if not text.strip():
                return None
            return json.loads(text)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def raise_for_reply(method: str, path: str, status: int, text: str) -> None:
    """4xx: the firmware said no (its message kept); 5xx and others: unavailable."""
    msg = text.strip()[:300]
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict):
            msg = str(parsed.get("err") or parsed.get("message") or parsed.get("error") or msg)
    except ValueError:
        pass
    from controller.miners.base import FirmwareRefused

    if 400 <= status < 500:
        raise FirmwareRefused(f"{method} {path}: HTTP {status}: {msg}")
    raise DriverError(f"{method} {path}: HTTP {status}: {msg}")


async def cgminer_request(host: str, port: int, command: str,
                          parameter: str | None = None) -> dict[str, Any]:
    """One cgminer-API command; returns the decoded reply (STATUS checked by the caller)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        req: dict[str, str] = {"command": command}
        if parameter is not None:
            req["parameter"] = parameter
        writer.write(json.dumps(req).encode())
        await writer.drain()
        buf = bytearray()
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            buf += chunk
            if b"\x00" in chunk or len(buf) > MAX_REPLY_BYTES:
                break
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    text = bytes(buf).split(b"\x00", 1)[0].decode("utf-8", "replace").strip()
    if not text:
        raise DriverError(f"{command}: empty reply")
    reply = json.loads(text)
    if not isinstance(reply, dict):
        raise DriverError(f"{command}: reply is not a JSON object")
    return reply


def cgminer_status(reply: dict[str, Any]) -> tuple[str, int, str]:
    """(STATUS letter, Code, Msg) of a cgminer reply."""
    st = reply["STATUS"]
    st0 = st[0] if isinstance(st, list) else st
    return str(st0.get("STATUS", "")), int(st0.get("Code", -1)), str(st0.get("Msg", ""))


async def whatsminer_request(host: str, port: int, obj: dict[str, Any]) -> dict[str, Any]:
    """One Whatsminer API v3 exchange: length-prefixed JSON both ways."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        data = json.dumps(obj, separators=(",", ":")).encode()
        writer.write(struct.pack("<I", len(data)) + data)
        await writer.drain()
        (n,) = struct.unpack("<I", await reader.readexactly(4))
        if n > MAX_REPLY_BYTES:
            raise DriverError(f"reply length {n} is implausible")
        body = await reader.readexactly(n)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    reply = json.loads(body.decode("utf-8"))
    if not isinstance(reply, dict):
        raise DriverError("reply is not a JSON object")
    return reply
