"""AxeOS (ESP-Miner) HTTP API emulator, per `main/http_server/openapi.yaml`.

`PATCH /api/system` takes frequency (MHz) and coreVoltage (mV); the board's power follows
the frequency along its curve. Frequencies outside the ASIC's options are refused with 400,
as AxeOS validates settings. Overheat: ESP-Miner's thermal protection drops to the lowest
frequency and sets `overheat_mode = 1` until the user clears it (PATCH overheat_mode 0).
"""

from __future__ import annotations

from aiohttp import web

from controller.miners.axeos import PowerCurve
from hil.miners.core import EmulatedMiner, FirmwareRejected
from hil.miners.servers import HttpEmulator


class AxeOsEmulator(HttpEmulator):
    def __init__(self, miner: EmulatedMiner, curve: PowerCurve) -> None:
        super().__init__(miner)
        self.curve = curve
        self.frequency = curve.settings_for(miner.target_w)[0]
        self.core_voltage = curve.settings_for(miner.target_w)[1]
        self.patches = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/system/info", self.info)
        app.router.add_patch("/api/system", self.patch)

    async def info(self, _r: web.Request) -> web.Response:
        m = self.miner
        power = m.power_w
        if not m.overheated and m.overheated_once and abs(m.target_w - self._freq_power()) > 0.5:
            # back from thermal protection at reduced settings
            self.frequency, self.core_voltage = self.curve.settings_for(m.target_w)
        return web.json_response({
            "ASICModel": "BM1370", "power": round(power, 2), "hashRate": m.hashrate_ths * 1000,
            "temp": round(m.temp_c, 1), "frequency": self.frequency,
            "coreVoltage": self.core_voltage, "overheat_mode": 1 if m.overheated_once else 0,
            "voltage": 5000, "current": power / 5 * 1000, "version": "emulator",
            "hostname": "bitaxe-emu", "uptimeSeconds": 100})

    def _freq_power(self) -> float:
        return self.curve.power_at(self.frequency)

    async def patch(self, request: web.Request) -> web.Response:
        body = await self.body(request)
        if not isinstance(body, dict):
            return web.Response(status=400, text="Invalid settings provided")
        if body.get("overheat_mode") == 0:
            self.miner.overheated_once = False
        freq = body.get("frequency", self.frequency)
        volt = body.get("coreVoltage", self.core_voltage)
        if not isinstance(freq, int) or not isinstance(volt, int) or freq < 1 or volt < 1:
            return web.Response(status=400, text="Invalid settings provided")
        lo, hi = self.curve.points[0].frequency_mhz, self.curve.points[-1].frequency_mhz
        if not lo <= freq <= hi:
            return web.Response(status=400, text=f"frequency {freq} outside {lo:g}..{hi:g} MHz")
        try:
            self.miner.set_target(round(self.curve.power_at(freq), 2))
        except FirmwareRejected as err:
            return web.Response(status=400, text=str(err))
        self.frequency, self.core_voltage = freq, volt
        self.patches += 1
        return web.Response(status=200)
