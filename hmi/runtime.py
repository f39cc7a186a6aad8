"""The HMI inside `hearth run`: one object the CLI creates before the service (its
publisher goes in the service's list) and starts once the service exists.

    hmi = HmiRuntime(cfg, config_path=args.config)          # None if [hmi] enabled = false
    service = Service(cfg, sources, fleet, [*publishers, hmi.publisher])
    await hmi.start(service)                                  # listens on [hmi] host:port
    try:
        await service.run()                                   # closes hmi.publisher on stop
    finally:
        await hmi.stop()

The HMI shares the service's event loop (a command lands between two ticks, never in the
middle of one) and never blocks it: hashing, ledger queries and device tests run in
threads or as awaited I/O.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from controller.bridge.provisioning import ConfigStore
from controller.config.models import SiteConfig
from hmi.app import HmiContext, create_app, hmi_settings
from hmi.commands import ServiceOverrides
from hmi.publisher import HmiPublisher
from hmi.revenue import Unavailable
from hmi.server import HmiServer

log = logging.getLogger(__name__)


class HmiRuntime:
    def __init__(self, cfg: SiteConfig, *, config_path: str | Path | None = None,
                 config_store: ConfigStore | None = None) -> None:
        self.cfg = cfg
        self.settings = hmi_settings(cfg)
        self.config_path = config_path
        self.config_store = config_store  # safe mode: the file as it edits it
        self.publisher = HmiPublisher(cfg, history_step_s=self.settings.history_step_s)
        self.context: HmiContext | None = None
        self.server: HmiServer | None = None

    async def start(self, service: Any, *, host: str | None = None,
                    port: int | None = None) -> HmiServer:
        """Build the app around `service` and listen (the setup code is logged here)."""
        self.publisher.dr = getattr(service, "dr", None)  # grid requests on the wall page
        ctx = HmiContext.build(self.cfg, self.publisher, ServiceOverrides(service),
                               config_path=self.config_path,
                               config_store=self.config_store)
        self.context = ctx
        now = time.time()
        with contextlib.suppress(Unavailable):  # a new site has no ledger history yet
            n = self.publisher.backfill(ctx.ledger.telemetry(int(now - 86_400), int(now)))
            log.info("HMI chart: %d points of history from the ledger", n)
        self.server = HmiServer(create_app(ctx), host or self.settings.listen_host,
                                port or self.settings.listen_port,
                                tls_cert_file=self.settings.tls_cert_file,
                                tls_key_file=self.settings.tls_key_file)
        await self.server.start()
        return self.server

    async def stop(self) -> None:
        await self.publisher.close()  # idempotent: the service closes it first
        if self.server is not None:
            await self.server.stop()
        if self.context is not None:
            self.context.auth.flush()
            self.context.commands.close()
            close = getattr(self.context.ledger, "close", None)
            if close is not None:
                close()
