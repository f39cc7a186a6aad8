"""What every router needs: the context and the documented error answers."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from hmi.app import HmiContext
from hmi.schemas import ErrorOut


def ctx_of(request: Request) -> HmiContext:
    ctx: HmiContext = request.app.state.hmi
    return ctx


_E = {"model": ErrorOut}
READ_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut,
                                                      "description": "Not logged in "
                                                      "(public_view = false)"}}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {**_E, "description": "Not logged in, or a bad API token"},
    403: {**_E, "description": "Role too low, missing/invalid CSRF token, or cross-origin"},
    422: {**_E, "description": "Invalid input: every problem with its field"},
}
