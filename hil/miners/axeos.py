"""AxeOS (ESP-Miner) HTTP API emulator, per `main/http_server/openapi.yaml`.

The vendored copy of that document (tests/data/specs/esp-miner-openapi.yaml) validates
these replies in the suite: `GET /api/system/info` serves every field its `SystemInfo`
schema requires, `GET /api/system/asic` the `SystemASIC` one, and the web root the AxeOS
page (what pyasic identifies a Bitaxe by). `PATCH /api/system` takes frequency (MHz) and
coreVoltage (mV); the board's power follows the frequency along its curve. Frequencies
outside the ASIC's options are refused with 400, as AxeOS validates settings.
`POST /api/system/pause` / `resume` (in the current document; `miningPaused` reports it).
Overheat: ESP-Miner's thermal protection drops to the lowest frequency and sets
`overheat_mode = 1` until the user clears it (PATCH overheat_mode 0).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from controller.miners.axeos import PowerCurve
from hil.miners.core import EmulatedMiner, FirmwareRejected
from hil.miners.servers import HttpEmulator

# (ASICModel, boardVersion, deviceModel, asicCount, smallCoreCount) per emulated board
BOARDS = {"bitaxe-gamma": ("BM1370", "601", "Gamma", 1, 2040),
          "nerdqaxe-plus-plus": ("BM1370", "NerdQAxe++", "NerdQAxe++", 4, 2040)}


class AxeOsEmulator(HttpEmulator):
    def __init__(self, miner: EmulatedMiner, curve: PowerCurve,
                 board: str = "bitaxe-gamma", has_pause: bool = True) -> None:
        super().__init__(miner)
        self.has_pause = has_pause  # False: an older AxeOS build (no pause, no miningPaused)
        self.curve = curve
        self.board = BOARDS[board]
        self.frequency = curve.settings_for(miner.target_w)[0]
        self.core_voltage = curve.settings_for(miner.target_w)[1]
        self.patches = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.root)
        app.router.add_get("/api/system/info", self.info)
        app.router.add_get("/api/system/asic", self.asic)
        app.router.add_patch("/api/system", self.patch)
        if self.has_pause:
            app.router.add_post("/api/system/pause", self.pause)
            app.router.add_post("/api/system/resume", self.resume)

    async def root(self, _r: web.Request) -> web.Response:
        return web.Response(text="<!doctype html><html><head><title>AxeOS</title></head>"
                                 "<body><app-root></app-root></body></html>",
                            content_type="text/html")

    async def asic(self, _r: web.Request) -> web.Response:
        model, _board, device, count, _cores = self.board
        return web.json_response({
            "ASICModel": model, "swarmColor": "purple", "asicCount": count,
            "deviceModel": device,
            "defaultFrequency": self.curve.points[len(self.curve.points) // 2].frequency_mhz,
            "frequencyOptions": [p.frequency_mhz for p in self.curve.points],
            "defaultVoltage": self.curve.points[len(self.curve.points) // 2].core_voltage_mv,
            "voltageOptions": sorted({p.core_voltage_mv for p in self.curve.points})})

    def system_info(self) -> dict[str, Any]:
        m = self.miner
        power = m.power_w
        if not m.overheated and m.overheated_once and abs(m.target_w - self._freq_power()) > 0.5:
            # back from thermal protection at reduced settings
            self.frequency, self.core_voltage = self.curve.settings_for(m.target_w)
        ghs = m.hashrate_ths * 1000
        model, board, _device, count, cores = self.board
        temp = round(m.temp_c, 1)
        info: dict[str, Any] = {
            "ASICModel": model, "apEnabled": 0, "autofanspeed": 1, "bestDiff": 1.2e9,
            "bestSessionDiff": 3.4e7, "boardVersion": board, "coreVoltage": self.core_voltage,
            "coreVoltageActual": self.core_voltage - 8, "current": round(power / 5 * 1000, 1),
            "display": "SSD1306 (128x32)", "fallbackStratumExtranonceSubscribe": False,
            "fallbackStratumPort": 3333, "fallbackStratumSuggestedDifficulty": 1000,
            "fallbackStratumURL": "", "fallbackStratumUser": "", "fallbackStratumTLS": False,
            "fallbackStratumCert": "", "fallbackStratumDecodeCoinbase": False,
            "fanrpm": 4200, "fan2rpm": 0, "fanspeed": 60, "temptarget": 60, "rotation": 0,
            "cpuUsage": 12, "freeHeap": 8_000_000, "freeHeapInternal": 90_000,
            "freeHeapSpiram": 7_900_000, "minFreeHeap": 7_000_000, "maxAllocHeap": 4_000_000,
            "frequency": self.frequency, "actualFrequency": self.frequency,
            "hashRate": ghs, "hashRate_1m": ghs, "hashRate_10m": ghs, "hashRate_1h": ghs,
            "expectedHashrate": round(self.frequency * cores * count / 1000, 1),
            "errorPercentage": 0.2, "hostname": "bitaxe-emu", "idfVersion": "v5.5.1",
            "invertscreen": 0, "isPSRAMAvailable": 1, "isUsingFallbackStratum": 0,
            "macAddr": "02:00:00:00:00:0B", "manualFanSpeed": 100,
            "maxPower": round(self.curve.max_power_w), "minFanSpeed": 25,
            "nominalVoltage": 5, "overheat_mode": 1 if m.overheated_once else 0,
            "overclockEnabled": 0, "primaryPoolIndex": 0, "secondaryPoolIndex": 1,
            "pools": [{"stratumURL": "public-pool.io", "stratumPort": 21496,
                       "stratumUser": "bc1qemulator.bitaxe"}],
            "poolConnectionInfo": "IPv4", "poolDifficulty": 1000, "power": round(power, 2),
            "resetReason": "Power on reset", "responseTime": 25.0,
            "runningPartition": "ota_0", "sharesAccepted": 100, "sharesRejected": 1,
            "sharesRejectedReasons": [{"message": "Job not found", "count": 1}],
            "smallCoreCount": cores, "ssid": "home", "ipv4": "127.0.0.1", "ipv6": "",
            "stratumExtranonceSubscribe": False, "stratumPort": 21496,
            "stratumProtocol": "SV1", "stratumV2AuthorityPubkey": "",
            "stratumSuggestedDifficulty": 1000, "stratumURL": "public-pool.io",
            "stratumUser": "bc1qemulator.bitaxe", "stratumTLS": False, "stratumCert": "",
            "stratumDecodeCoinbase": False, "temp": temp, "temp2": -1,
            "uptimeSeconds": 100, "version": "v2.12.0", "axeOSVersion": "v2.12.0",
            "voltage": 5000, "vrTemp": round(temp + 5, 1), "wifiStatus": "Connected!",
            "wifiRSSI": -55, "displayTimeout": -1, "statsFrequency": 0, "blockHeight": 900000,
            "scriptsig": "", "networkDifficulty": 1.2e14, "blockSignals": [],
            "blockFound": 0, "coinbaseValueTotalSatoshis": 312500000,
            "coinbaseValueUserSatoshis": 312500000, "miningPaused": m.paused,
            "statsLimit": 360, "partitions": [], "useCustomWWW": 0}
        if not self.has_pause:
            del info["miningPaused"]
        return info

    async def info(self, _r: web.Request) -> web.Response:
        return web.json_response(self.system_info())

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
        return web.json_response({"status": "success"})

    async def pause(self, _r: web.Request) -> web.Response:
        self.miner.pause()
        return web.json_response({"message": "Mining paused"})

    async def resume(self, _r: web.Request) -> web.Response:
        self.miner.resume()
        return web.json_response({"message": "Mining resumed"})
