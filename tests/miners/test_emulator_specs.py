"""The emulators' replies, validated against the vendors' own API documents (vendored).

ESP-Miner's `openapi.yaml` and a transcribed slice of the Braiins OS Public REST API 1.7.0
(tests/data/specs, origin in tests/data/SOURCES.md). ESP-Miner: every
response of the AxeOS emulator that the document describes is checked against its schema
(`SystemInfo`, `SystemASIC`, `UpdateSettingsResponse`, `GenericResponse`) with a JSON
Schema 2020-12 validator (OpenAPI 3.1 schemas are JSON Schema), and every path the AxeOS
driver calls must exist in the document with that method. Braiins OS: every path the
driver calls exists with that method, and each emulator reply validates against the
operation's response schema (running, paused, and in thermal pause).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import jsonschema_rs
import pytest
import yaml
from miner_harness import rig

SPECS = Path(__file__).resolve().parent.parent / "data" / "specs"


def _validator(spec: dict[str, Any], schema: str) -> Any:
    """A validator for one component schema, its $refs resolved inside the document."""
    return jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": spec["components"]})


def _errors(validator: Any, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.instance_path))}: {e.message}"
            for e in validator.iter_errors(instance)]


@pytest.fixture(scope="module")
def esp_miner() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((SPECS / "esp-miner-openapi.yaml").read_text())
    return spec


def test_the_validator_catches_a_missing_required_field(esp_miner: dict[str, Any]) -> None:
    # Guard: the check below is only worth something if a thin reply fails it.
    thin = {"ASICModel": "BM1370", "power": 10.0, "hashRate": 500.0, "temp": 50.0}
    errors = _errors(_validator(esp_miner, "SystemInfo"), thin)
    assert any("required" in e for e in errors) and len(errors) > 50


def test_the_driver_calls_only_documented_axeos_paths(esp_miner: dict[str, Any]) -> None:
    paths = esp_miner["paths"]
    for method, path in (("get", "/api/system/info"), ("patch", "/api/system"),
                         ("get", "/api/system/asic"), ("post", "/api/system/pause"),
                         ("post", "/api/system/resume")):
        assert method in paths.get(path, {}), f"{method.upper()} {path} not in openapi.yaml"


async def test_axeos_emulator_replies_match_esp_miners_openapi(
        esp_miner: dict[str, Any]) -> None:
    async with rig("axeos") as rg, aiohttp.ClientSession() as s:
        base = f"http://127.0.0.1:{rg.emulator.port}"
        for path, schema in (("/api/system/info", "SystemInfo"),
                             ("/api/system/asic", "SystemASIC")):
            async with s.get(base + path) as r:
                assert r.status == 200
                assert _errors(_validator(esp_miner, schema), await r.json()) == [], path
        async with s.patch(base + "/api/system", json={"frequency": 525,
                                                       "coreVoltage": 1100}) as r:
            assert r.status == 200
            assert _errors(_validator(esp_miner, "UpdateSettingsResponse"),
                           await r.json()) == []
        for action in ("pause", "resume"):
            async with s.post(f"{base}/api/system/{action}") as r:
                assert r.status == 200
                assert _errors(_validator(esp_miner, "GenericResponse"), await r.json()) == []
        async with s.get(base + "/api/system/info") as r:
            assert (await r.json())["miningPaused"] is False
        async with s.patch(base + "/api/system", json={"frequency": 9999}) as r:
            assert r.status == 400  # documented: "Invalid settings provided"


# -- Braiins OS Public REST API (a transcribed slice of the 1.7.0 document) -----------------

BRAIINS_CALLS = (("post", "/api/v1/auth/login"), ("get", "/api/v1/configuration/constraints"),
                 ("put", "/api/v1/performance/power-target"),
                 ("get", "/api/v1/performance/tuner-state"), ("get", "/api/v1/miner/stats"),
                 ("get", "/api/v1/miner/details"), ("get", "/api/v1/miner/hw/hashboards"),
                 ("put", "/api/v1/actions/pause"), ("put", "/api/v1/actions/resume"))


@pytest.fixture(scope="module")
def braiins() -> dict[str, Any]:
    import json

    spec: dict[str, Any] = json.loads(
        (SPECS / "braiins-os-public-rest-api.slice.json").read_text())
    return spec


def _response_validator(spec: dict[str, Any], method: str, path: str) -> Any:
    schema = spec["x-responses"][f"{method} {path}"]
    if isinstance(schema, str):
        return _validator(spec, schema)
    return jsonschema_rs.Draft202012Validator(schema)


def test_braiins_driver_calls_exist_in_the_document(braiins: dict[str, Any]) -> None:
    from controller.miners import braiins as driver_module

    source = Path(driver_module.__file__).read_text()
    used = {p for _m, p in BRAIINS_CALLS}
    assert all(p in source for p in used)  # the driver really calls these
    for method, path in BRAIINS_CALLS:
        assert method in braiins["x-paths-and-methods"].get(path, []), (method, path)


def test_braiins_slice_catches_a_thin_details_reply(braiins: dict[str, Any]) -> None:
    thin = {"uid": "emu", "hostname": "emu", "status": 2,
            "detailed_status": {"status": {"running": {"reason": {"normal": {}}}}}}
    errors = _errors(_validator(braiins, "GetMinerDetailsResponse"), thin)
    # what the emulator used to answer: 8 of the 11 required fields missing
    assert len(errors) == 8 and all("required" in e for e in errors), errors


async def test_braiins_emulator_replies_match_the_public_rest_api(
        braiins: dict[str, Any]) -> None:
    async with rig("braiins-os") as rg, aiohttp.ClientSession() as s:
        base = f"http://127.0.0.1:{rg.emulator.port}"
        async with s.post(base + "/api/v1/auth/login",
                          json={"username": "root", "password": "secret"}) as r:
            body = await r.json()
            assert _errors(_response_validator(braiins, "post", "/api/v1/auth/login"),
                           body) == []
        auth = {"Authorization": body["token"]}

        async def check(method: str, path: str, json_body: Any = None) -> None:
            async with s.request(method.upper(), base + path, headers=auth,
                                 json=json_body) as r:
                assert r.status == 200, (path, await r.text())
                errors = _errors(_response_validator(braiins, method, path), await r.json())
                assert errors == [], (path, errors)

        await check("put", "/api/v1/performance/power-target", {"watt": 1000})
        for method, path in BRAIINS_CALLS[1:]:
            if method == "get":
                await check(method, path)
        await check("put", "/api/v1/actions/pause")
        await check("get", "/api/v1/miner/details")  # stopped: user_pause
        await check("put", "/api/v1/actions/resume")
        rg.miner.trigger_overheat(cooldown_s=60, reduce_to_w=600)
        await check("get", "/api/v1/miner/details")  # stopped: thermal_pause
