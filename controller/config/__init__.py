"""Site configuration: pydantic models and the TOML loader."""

from controller.config.load import config_json_schema, load_site, parse_site
from controller.config.models import (
    Actuation,
    BatterySection,
    MinerConfig,
    Mode,
    SiteConfig,
    TankSection,
)

__all__ = [
    "Actuation",
    "BatterySection",
    "MinerConfig",
    "Mode",
    "SiteConfig",
    "TankSection",
    "config_json_schema",
    "load_site",
    "parse_site",
]
