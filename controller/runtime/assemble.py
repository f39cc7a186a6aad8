"""Build the service from a site file: devices, satellite, miners, ledger, MQTT.

Entry points stay thin: `hearth run` loads the site file and calls `build_service`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from controller.config.models import SiteConfig
from controller.devices.acquisition import Acquisition
from controller.miners.factory import build_drivers
from controller.runtime.fleet import DriverFleet
from controller.runtime.ledger_publisher import LedgerPublisher
from controller.runtime.ports import MeasurementSource, Publisher
from controller.runtime.service import Service

log = logging.getLogger(__name__)


def _satellite(cfg: SiteConfig, site_path: str) -> MeasurementSource:
    from controller.bridge.connection import BrokerSettings
    from controller.satellite.link import SatelliteLink, SatelliteSource

    assert cfg.satellite is not None and cfg.mqtt is not None  # checked by the config
    broker = BrokerSettings.from_section(cfg.mqtt, Path(site_path).parent, cfg.site.id)
    link = SatelliteLink(cfg.site.id, cfg.satellite, broker,
                         tank_max_c=cfg.tank.max_c if cfg.tank else None)
    # The controller runs the miners: contactor and circulation pump on. When the service
    # stops, its heartbeat stops and the board puts them in its configured safe state.
    link.set_relays(True, True)
    return SatelliteSource(link)


def build_service(cfg: SiteConfig, site_path: str = "<config>", *, ledger: bool = True
                  ) -> Service:
    """Everything the site file describes. Invalid settings raise InputError here, before
    anything is started."""
    sources: list[MeasurementSource] = []
    if cfg.devices:
        sources.append(Acquisition(cfg.devices, source=site_path))
    else:
        log.warning("no [[devices]] configured: no grid meter, miners will stay off")
    if cfg.satellite is not None:
        sources.append(_satellite(cfg, site_path))
    fleet = DriverFleet(build_drivers(cfg))
    publishers: list[Publisher] = []
    if ledger and cfg.ledger.enabled:
        publishers.append(LedgerPublisher(cfg))
    hooks = []
    if cfg.mqtt is not None:
        from controller.runtime.mqtt_wiring import wire_mqtt

        _bridge, commands, bridge_publisher = wire_mqtt(cfg, site_path)
        publishers.append(bridge_publisher)
        hooks.append(commands)
    service = Service(cfg, sources, fleet, publishers)
    service.command_hooks.extend(hooks)
    return service


async def serve(cfg: SiteConfig, site_path: str, *, ledger: bool = True, hmi: bool = True
                ) -> None:
    """`hearth run`: the service, and the HMI in the same event loop when enabled."""
    service = build_service(cfg, site_path, ledger=ledger)
    runtime = None
    if hmi and cfg.hmi.enabled:
        from hmi.runtime import HmiRuntime

        runtime = HmiRuntime(cfg, config_path=site_path)
        service.publishers.append(runtime.publisher)
        server = await runtime.start(service)
        log.info("HMI on http://%s:%d/ (installer pages at /installer)", server.host,
                 server.port)
    try:
        await service.run()
    finally:
        if runtime is not None:
            await runtime.stop()
