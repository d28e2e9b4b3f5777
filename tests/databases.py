"""The record database for tests: every test asking for ``db_url`` runs on SQLite and on PostgreSQL.

Fixture (made available to every test by ``tests/conftest.py``):

* ``db_url``: an empty database, parametrized ``sqlite`` (a file in ``tmp_path``) and ``postgresql`` (a new
  database on the session's PostgreSQL server, see ``tests/postgres_server.py``).

``migrated_engine(url)`` migrates a database to head and gives an engine on it, disposed afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from activities.db import migrate
from activities.db.base import make_engine
from activities.directory import sync_directories
from activities.settings import PROJECT_ROOT
from tests.postgres_server import fresh_database

__all__ = ["DIRECTORIES", "db_url", "migrated_engine"]

DIRECTORIES = PROJECT_ROOT / "protocols" / "directories"
"""The sample directories of people (one file per authority) that ship with the project."""


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a new database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'records.db'}"
        return
    with fresh_database(request.getfixturevalue("postgres_url")) as url:
        yield url


@contextlib.contextmanager
def migrated_engine(url: str, *, directories: Path | None = None) -> Iterator[Engine]:
    """An engine on ``url`` migrated to head, with the people of ``directories`` synced in if given."""
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        if directories is not None:
            sync_directories(engine, directories)
        yield engine
    finally:
        engine.dispose()
