"""Opening the ledger database: SQLite (WAL) or PostgreSQL by URL, schema by Alembic.

SQLite is the default on the Pi: one file, no server. It runs in WAL mode with
`synchronous=NORMAL` (a commit is an append to the WAL, fsynced at checkpoints; a killed
process never loses a committed transaction and never leaves a half one), and with
explicit transactions: pysqlite's implicit ones do not cover DDL, and a writer takes the
write lock up front (`BEGIN IMMEDIATE`) so two writers queue instead of deadlocking.

`migrate()` brings any older schema to the current one, in one transaction, and refuses
a database written by a newer Hearth (downgrading would lose what it knows).
"""

from __future__ import annotations

import functools
import logging
import weakref
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from controller.config.ledger import URL_SCHEMES
from controller.errors import InputError, Problem

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x48454152  # "HEAR": serialises concurrent migrations on one server


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@functools.cache
def head_revision() -> str:
    """The newest schema revision this code knows (read once per process)."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def is_sqlite(url: str) -> bool:
    return url.split(":", 1)[0].startswith("sqlite")


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other databases)."""
    if not is_sqlite(url):
        return None
    db = make_url(url).database
    if not db or db == ":memory:":
        raise InputError(url, [Problem("", "an in-memory SQLite ledger would be lost on exit; "
                                           "give a file path (sqlite:///path/ledger.sqlite3)")])
    return Path(db)


_WRITER_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()  # SQLite, BEGIN IMMEDIATE


def make_engine(url: str, writer: bool = False, create: bool = True) -> Engine:
    """An engine for `url`. `create=False` refuses a SQLite file that does not exist."""
    path = sqlite_path(url)
    if path is not None:
        if not path.exists():
            if not create:
                raise InputError(url, [Problem("", f"no ledger database at {path}")])
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        _sqlite_setup(engine, writer)
        if writer:
            _WRITER_ENGINES.add(engine)
        return engine
    if url.split("://", 1)[0] not in URL_SCHEMES:
        raise InputError(url, [Problem("", "not a ledger database URL; use sqlite:///PATH or "
                                           "postgresql+psycopg://USER@HOST/DB")])
    try:
        return create_engine(url, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as err:
        raise InputError(url, [Problem("", f"not a usable database URL: {err}")]) from None


def _sqlite_setup(engine: Engine, writer: bool) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # transactions are begun explicitly below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


def migrate(engine: Engine) -> str:
    """Upgrade the schema to head in one transaction; returns the revision now in force.

    On SQLite the migration always takes the write lock first (BEGIN IMMEDIATE): two
    processes or threads opening a new ledger at once (the writer and a reader such as
    the MQTT "today" figures) then wait for each other instead of one of them reading the
    empty schema, trying to create it too and failing with "database is locked".
    """
    if engine.dialect.name == "sqlite" and engine not in _WRITER_ENGINES:
        locked = make_engine(engine.url.render_as_string(hide_password=False), writer=True)
        try:
            return migrate(locked)
        finally:
            locked.dispose()
    head = head_revision()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return head
        cfg = _alembic_config()
        script = ScriptDirectory.from_config(cfg)
        known = {s.revision for s in script.walk_revisions()}
        if current is not None and current not in known:
            raise InputError(str(engine.url), [Problem(
                "schema", f"database is at revision {current!r}, which this Hearth does not "
                          f"know (newest here: {head!r}); it was written by a newer version — "
                          "upgrade Hearth instead of downgrading the ledger")])
        log.info("ledger schema %s -> %s", current or "empty", head)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    return head
