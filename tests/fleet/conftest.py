"""Fleet fixtures: one PostgreSQL for the session (a fresh database per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fleetkit import Postgres, pg_unavailable


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Postgres]:
    why = pg_unavailable()
    if why:
        pytest.skip(why)
    pg = Postgres.start()
    try:
        yield pg
    finally:
        pg.stop()


@pytest.fixture
def pg_url(pg_server: Postgres) -> str:
    return pg_server.create_db()
