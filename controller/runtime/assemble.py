"""Build the service from a site file: devices, satellite, miners, ledger, MQTT.

Entry points stay thin: `hearth run` loads the site file and calls `build_service`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.config.models import SiteConfig
from controller.control.overrides import Overrides
from controller.devices.acquisition import Acquisition
from controller.errors import InputError
from controller.miners.factory import build_drivers
from controller.runtime.dr import DrHook, DrSchedule
from controller.runtime.fleet import DriverFleet
from controller.runtime.ledger_publisher import LedgerPublisher
from controller.runtime.market import BitcoinTermsFeed
from controller.runtime.ports import MeasurementSource, Publisher
from controller.runtime.prices import PriceFeed
from controller.runtime.service import Service
from controller.runtime.startup import Start, keep_last_good

if TYPE_CHECKING:
    from controller.bridge.provisioning import ConfigStore

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
    fleet = DriverFleet(build_drivers(cfg))  # first: nothing is started if it fails
    sources: list[MeasurementSource] = []
    if cfg.devices:
        sources.append(Acquisition(cfg.devices, source=site_path))
    else:
        log.warning("no [[devices]] configured: no grid meter, miners will stay off")
    if cfg.satellite is not None:
        sources.append(_satellite(cfg, site_path))
    publishers: list[Publisher] = []
    hooks = []
    dr = DrSchedule()  # demand response from MQTT and OpenADR, one schedule (docs/dr.md)
    dr_hook = DrHook(dr)
    if ledger and cfg.ledger.enabled:
        ledger_publisher = LedgerPublisher(cfg)
        ledger_publisher.dr_events = dr_hook.event_ids
        publishers.append(ledger_publisher)
    mqtt_commands = None
    if cfg.mqtt is not None:
        from controller.runtime.mqtt_wiring import DrStatePublisher, wire_mqtt

        bridge, mqtt_commands, bridge_publisher = wire_mqtt(cfg, site_path, dr)
        publishers.append(bridge_publisher)
        publishers.append(DrStatePublisher(bridge, dr_hook))
        hooks.append(mqtt_commands)
    ven = None
    if cfg.openadr is not None and cfg.openadr.enabled:
        from controller.runtime.openadr import Ven

        try:
            ven = Ven(cfg, dr, Path(site_path).parent)
        except BaseException:
            if cfg.mqtt is not None:  # started above: stop it before safe mode starts one
                bridge.stop()
            raise
        sources.append(ven)  # started and stopped with the sources; it measures nothing
    prices = PriceFeed(cfg, Path(site_path).parent)  # prices_file is relative to the site
    bitcoin = BitcoinTermsFeed(cfg)  # [bitcoin.feed], cmd/bitcoin_terms; cache in data_dir
    if mqtt_commands is not None:  # cmd/prices, cmd/bitcoin_terms go to their feeds
        from controller.runtime.price_commands import PriceCommandTap

        mqtt_commands.queue = PriceCommandTap(mqtt_commands.queue, prices.set_series,
                                              bitcoin.accept)
    service = Service(cfg, sources, fleet, publishers, prices=prices, bitcoin=bitcoin)
    service.command_hooks.extend(hooks)
    service.dr = dr  # the HMI shows its events (hmi/state.py)
    if cfg.plan.enabled:  # after the command hooks: the plan owns its two override fields
        from controller.runtime.planner import RuntimePlanner, mqtt_plan_listener

        planner = RuntimePlanner(cfg, prices, bitcoin.terms_at)  # the controller's terms
        service.planner = planner
        service.publishers.append(planner)
        service.command_hooks.append(planner)
        if cfg.mqtt is not None:
            planner.listeners.append(mqtt_plan_listener(bridge))
    _wire_dr(service, dr, dr_hook, mqtt_commands, ven)
    return service


def _wire_dr(service: Service, dr: DrSchedule, hook: DrHook, mqtt_commands: Any,
             ven: Any) -> None:
    """A DR signal wakes the tick loop at once (the cap must reach the miners within 1 s),
    and so does every MQTT command; the hook runs after the other command sources."""
    service.command_hooks.append(hook)
    hook.wake = service.wake
    dr.on_change.append(service.wake)
    if mqtt_commands is not None:
        mqtt_commands.wake = service.wake
    if ven is not None:
        def miner_power_w() -> float | None:
            last = service.last
            if last is None or not last.measurements.miners:
                return None
            return sum(r.power_w for r in last.measurements.miners.values())

        ven.miner_power_w = miner_power_w


SAFE_MODE_RESTART_EXIT = 75  # EX_TEMPFAIL: a config was saved in safe mode; systemd restarts


def build_safe_service(cfg: SiteConfig, site_path: str, reason: str,
                       store: ConfigStore | None = None) -> Service:
    """Safe mode, for a site file the service cannot run: every miner Hearth can reach is
    held off, no devices, ledger, plan or DR; the MQTT bridge (and the HMI, added by
    `serve`) stay up with the reason shown, so an installer can fix the config remotely.
    A config saved over MQTT or the HMI then stops the service with exit status 75, and
    systemd (Restart=on-failure) starts it again on the new file. `store`: the site file
    as safe mode edits it when the file itself does not load (controller/runtime/startup.py)."""
    from controller.bridge.service_glue import SAFE_MODE_PREFIX
    from controller.miners.factory import build_valid_drivers

    log.error("SAFE MODE: the miners are held off until the site config is fixed: %s", reason)
    fleet = DriverFleet(build_valid_drivers(cfg))
    service = Service(cfg, [], fleet, [])
    hold = f"{SAFE_MODE_PREFIX}{reason}"

    def safe_mode(ov: Overrides, now_s: float) -> Overrides:
        return ov._replace(hold_reason=hold)

    def saved() -> None:
        log.warning("safe mode: a new site config was saved; restarting to apply it")
        service.stop_soon(SAFE_MODE_RESTART_EXIT)

    service.on_config_saved = saved
    if cfg.mqtt is not None:
        from controller.runtime.mqtt_wiring import wire_mqtt

        _bridge, commands, publisher = wire_mqtt(cfg, site_path, on_saved=saved,
                                                 ledger_today=False, store=store)
        # No price or bitcoin terms feed runs in safe mode: say so rather than answer ok.
        from controller.runtime.price_commands import PriceCommandTap, refuse_in_safe_mode

        commands.queue = PriceCommandTap(commands.queue, refuse_in_safe_mode,
                                         refuse_in_safe_mode)
        service.publishers.append(publisher)
        service.command_hooks.append(commands)
    service.command_hooks.append(safe_mode)  # last: nothing lifts it
    return service


def _reason(err: Exception) -> str:
    if isinstance(err, InputError):
        return "; ".join(str(p) for p in err.problems)
    return f"{type(err).__name__}: {err}"


async def serve(start: Start, site_path: str, *, ledger: bool = True, hmi: bool = True
                ) -> int:
    """`hearth run`: the service, and the HMI in the same event loop when enabled. A config
    the service cannot start with (`start.safe_reason`, or drivers, devices or files that
    fail here) brings it up in safe mode instead of ending it. Returns the exit status."""
    cfg, store = start.config, None
    if start.safe_reason is not None:
        from controller.bridge.provisioning import ConfigStore

        store = ConfigStore(site_path, running=(cfg, start.document))
        service = build_safe_service(cfg, site_path, start.safe_reason, store)
    else:
        try:
            service = build_service(cfg, site_path, ledger=ledger)
        except (InputError, OSError, ValueError) as err:
            service = build_safe_service(cfg, site_path, _reason(err))
        else:
            if start.data is not None:
                keep_last_good(site_path, start.data)
    runtime = None
    if hmi and cfg.hmi.enabled:
        from hmi.runtime import HmiRuntime

        runtime = HmiRuntime(cfg, config_path=site_path, config_store=store)
        service.publishers.append(runtime.publisher)
        server = await runtime.start(service)
        if runtime.context is not None:
            runtime.context.on_config_saved = service.on_config_saved
        log.info("HMI on %s://%s:%d/ (installer pages at /installer)",
                 "https" if server.tls else "http", server.host, server.port)
    try:
        await service.run()
    finally:
        if runtime is not None:
            await runtime.stop()
    return service.exit_code
