"""Alembic environment for the record store, driven from code by ``activities.db.migrate``.

``migrate.upgrade(url)`` hands over an open connection in ``config.attributes["connection"]``; the
``alembic`` command line works too, given ``-x url=...`` or ``ESCALATION_DATABASE_URL``. Migrations are
written by hand (``op.create_table``); ``target_metadata`` is there only for ``alembic check`` and
autogenerate drafts, and takes every ``activities/db/*_models.py`` module.
"""

from __future__ import annotations

import importlib
import pkgutil

from alembic import context
from sqlalchemy import Connection

import activities.db
from activities.db.base import Base, database_url, make_engine

for _module in pkgutil.iter_modules(activities.db.__path__):
    if _module.name.endswith("_models"):
        importlib.import_module(f"activities.db.{_module.name}")

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = make_engine(url or None)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    context.configure(url=url or database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
