"""Shelly Gen2/Gen3 plug or relay over its HTTP RPC: a miner with no API, switched on/off.

Source: Shelly Gen2 API docs, Switch component (shelly-api-docs.shelly.cloud/gen2/
ComponentsAndServices/Switch) and the RPC protocol page:
- `POST /rpc` {"id": n, "method": "Switch.Set", "params": {"id": 0, "on": true}}
  -> {"id": n, "result": {"was_on": false}} or {"id": n, "error": {"code", "message"}}.
- `Switch.GetStatus` {"id": 0} -> result {output, apower (W, PM models), temperature.tC}.
Devices with authentication enabled (digest) are not supported yet.
"""

from __future__ import annotations

import itertools
from typing import Any

from controller.miners.base import FirmwareRefused
from controller.miners.relay import RelayDriver
from controller.miners.transport import HttpJson


class ShellyDriver(RelayDriver):
    api = "shelly"
    document = "Shelly Gen2 API: Switch component (RPC over HTTP)"

    def __init__(self, cfg: Any, *, host: str, port: int, switch_id: int = 0,
                 **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.http = HttpJson(host, port, self.timeout_s)
        self.switch_id = switch_id
        self._ids = itertools.count(1)

    async def _rpc(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        rid = next(self._ids)
        reply = await self.http.request("POST", "/rpc",
                                        {"id": rid, "method": method, "params": params})
        if "error" in reply:
            e = reply["error"]
            raise FirmwareRefused(f"{method}: {e.get('message')} (code {e.get('code')})")
        if reply.get("id") != rid:
            raise ValueError(f"{method}: reply id {reply.get('id')} != request id {rid}")
        result: dict[str, Any] = reply["result"]
        return result

    async def _relay_get(self) -> tuple[bool, float | None, float | None]:
        r = await self._rpc("Switch.GetStatus", {"id": self.switch_id})
        out = r["output"]
        if not isinstance(out, bool):
            raise ValueError(f"output is {out!r}, not a boolean")
        power = float(r["apower"]) if "apower" in r else None
        temp = (r.get("temperature") or {}).get("tC")
        return out, power, float(temp) if temp is not None else None

    async def _relay_set(self, on: bool) -> None:
        await self._rpc("Switch.Set", {"id": self.switch_id, "on": on})

    async def close(self) -> None:
        await self.http.close()
