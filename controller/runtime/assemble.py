"""Build the service from a site file: devices, miners, publishers. Entry points stay thin."""

from __future__ import annotations

import logging

from controller.config.models import SiteConfig
from controller.devices.acquisition import Acquisition
from controller.miners.factory import build_drivers
from controller.runtime.fleet import DriverFleet
from controller.runtime.ledger_publisher import LedgerPublisher
from controller.runtime.ports import MeasurementSource, Publisher
from controller.runtime.service import Service

log = logging.getLogger(__name__)


def build_service(cfg: SiteConfig, source: str = "<config>", *, ledger: bool = True) -> Service:
    """Everything the site file describes. Invalid driver settings raise InputError here,
    before anything is started."""
    sources: list[MeasurementSource] = []
    if cfg.devices:
        sources.append(Acquisition(cfg.devices, source=source))
    else:
        log.warning("no [[devices]] configured: no grid meter, miners will stay off")
    fleet = DriverFleet(build_drivers(cfg))
    publishers: list[Publisher] = []
    if ledger and cfg.ledger.enabled:
        publishers.append(LedgerPublisher(cfg))
    return Service(cfg, sources, fleet, publishers)
