"""The emulators' replies, validated against the vendors' own API documents (vendored).

ESP-Miner's `openapi.yaml` (tests/data/specs, origin in tests/data/SOURCES.md): every
response of the AxeOS emulator that the document describes is checked against its schema
(`SystemInfo`, `SystemASIC`, `UpdateSettingsResponse`, `GenericResponse`) with a JSON
Schema 2020-12 validator (OpenAPI 3.1 schemas are JSON Schema), and every path the AxeOS
driver calls must exist in the document with that method.
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
