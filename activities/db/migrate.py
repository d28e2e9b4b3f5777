"""Bring a database to the record store's schema: Alembic, configured in code (no alembic.ini).

    from activities.db import migrate
    migrate.upgrade()                      # ESCALATION_DATABASE_URL (default sqlite:///.data/escalations.db)
    migrate.upgrade("postgresql+psycopg2://...")
    migrate.current(url)                   # "0001_records", or None on an empty database
    migrate.downgrade(url, "base")         # drops the tables again

or from a shell: ``python -m activities.db.migrate [--url URL] upgrade|downgrade|current [REVISION]``.

Migrations live in ``activities/db/migrations/versions/`` as hand-written revisions chained by
``down_revision`` (``0001_records`` first).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from activities.db.base import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_LOCK = 72_026_0001
"""PostgreSQL advisory lock held while migrating, so two workers starting at once migrate one at a time."""


def config() -> Config:
    """An Alembic config for the package's migrations folder."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(config()).get_current_head()


def _run(url: str | None, action: str, revision: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
            cfg = config()
            cfg.attributes["connection"] = connection  # no URL in the config: passwords stay out of it
            if action == "upgrade":
                command.upgrade(cfg, revision)
            else:
                command.downgrade(cfg, revision)
    finally:
        engine.dispose()


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Migrate the database at ``url`` (default: the setting) up to ``revision``."""
    _run(url, "upgrade", revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    """Migrate the database at ``url`` down to ``revision`` (``base``: no tables at all)."""
    _run(url, "downgrade", revision)


def current(url: str | None = None) -> str | None:
    """The database's revision, or None when it was never migrated (or is at base)."""
    engine = make_engine(url)
    try:
        return current_for(engine)
    finally:
        engine.dispose()


def current_for(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Migrate the escalation record store's database.")
    parser.add_argument("--url", help="SQLAlchemy URL (default ESCALATION_DATABASE_URL)")
    parser.add_argument("action", choices=["upgrade", "downgrade", "current"])
    parser.add_argument("revision", nargs="?", help="target (default: head up, base down)")
    args = parser.parse_args(argv)
    if args.action == "upgrade":
        upgrade(args.url, args.revision or "head")
    elif args.action == "downgrade":
        downgrade(args.url, args.revision or "base")
    print(f"current revision: {current(args.url) or 'none'} (head: {head()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
