"""The base of every config model: unknown keys are errors, values are immutable, types are
strict (`"1"` is not a number, `1` is not `true`) and strings are bounded and free of NUL.

A site file arrives from a person (TOML), from MQTT provisioning and from the HMI (JSON): a
value of the wrong type is an error that names the field, never silently converted and
written back to the file as something else. Money (`Decimal`) and names of choices (enums)
are the exceptions: they are read from TOML strings or numbers on purpose, with
`Field(strict=False)` at the field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Strict as StrictType

# Money in a site file: a TOML string ("0.30", exact) or a number, never a bool.
Money = Annotated[Decimal, StrictType(False)]

MAX_STR_CHARS = 1024  # names, hosts, paths, URLs: a 200 KB site name is not a name


class Strict(BaseModel):
    """A typo in a site file must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True,
                              str_max_length=MAX_STR_CHARS)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, v: Any) -> Any:
        """A NUL cannot be written to TOML and cuts C strings (hosts, paths) short."""
        if isinstance(v, str) and "\x00" in v:
            raise ValueError("must not contain a NUL character")
        return v
