"""Bring a database to the record store's schema: Alembic, configured in code (no alembic.ini).

    from activities.db import migrate
    migrate.upgrade()                      # ESCALATION_DATABASE_URL (default sqlite:///.data/escalations.db)
    migrate.upgrade("postgresql+psycopg2://...")
    migrate.current(url)                   # "0001_records", or None on an empty database
    migrate.downgrade(url, "base")         # drops the tables again

    migrate.upgrade(url, app_role="escalations_app")  # then grant the worker's role (PostgreSQL)

or from a shell: ``python -m activities.db.migrate [--url URL] upgrade|downgrade|current [REVISION]``, and
``python -m activities.db.migrate [--url URL] grant --app-role NAME`` (or ``upgrade --app-role NAME``) as
the owner of the tables, to give the worker's own role exactly what it needs (``activities/db/roles.py``).

A database already at head is left alone without any DDL, so a worker connecting as the application role
(which may not change the schema) can call ``upgrade`` at start; when it is behind, the error says to run
the migration as the owner.

Migrations live in ``activities/db/migrations/versions/`` as hand-written revisions chained by
``down_revision`` (``0001_records`` first).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import ProgrammingError

from activities.db.base import make_engine
from activities.db.roles import RoleSetupError, grant_app_role

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
HEAD = "0008_collective_links"
"""The newest revision (``tests/test_db_records.py`` checks it is Alembic's head): a database already there
is recognised with one query, without importing Alembic, as every ``escalate`` command's start does."""
_PG_LOCK = 72_026_0001
"""PostgreSQL advisory lock held while migrating, so two workers starting at once migrate one at a time."""


def config() -> Config:
    """An Alembic config for the package's migrations folder."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head() -> str | None:
    """The newest revision the code knows (Alembic's reading of the migrations folder)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config()).get_current_head()


class MigrationRefused(RuntimeError):
    """The connected role may not change the schema; the message says what to run instead."""


def _run(url: str | None, action: str, revision: str | None, app_role: str | None = None) -> None:
    engine = make_engine(url)
    try:
        if action == "upgrade" and revision == "head" and app_role is None and _at_head(engine):
            return  # nothing to do, and nothing of Alembic imported
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
            if revision is not None:
                _migrate(connection, action, revision)
            if app_role is not None:
                grant_app_role(connection, app_role)
    finally:
        engine.dispose()


def _at_head(engine: Engine) -> bool:
    """Whether the database's recorded revision is ``HEAD`` (one query; False when it has no version)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        found = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return found == [HEAD]


def _migrate(connection: Connection, action: str, revision: str) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    at = MigrationContext.configure(connection).get_current_revision()
    if action == "upgrade" and revision == "head" and at == head():
        return  # nothing to do: no DDL, so the application role may call this too
    cfg = config()
    cfg.attributes["connection"] = connection  # no URL in the config: passwords stay out of it
    postgres = connection.dialect.name == "postgresql"
    user = connection.execute(text("SELECT current_user")).scalar() if postgres else None
    try:
        if action == "upgrade":
            command.upgrade(cfg, revision)
        else:
            command.downgrade(cfg, revision)
    except ProgrammingError as exc:
        if getattr(exc.orig, "pgcode", None) != "42501":  # insufficient_privilege
            raise
        raise MigrationRefused(
            f"the database role {user!r} may not change the record store's schema (at {at or 'none'}, "
            f"{action} to {revision}): run `python -m activities.db.migrate {action}` as the owner of the "
            "tables first (docker-compose.yml's migrate job does)"
        ) from exc


def upgrade(url: str | None = None, revision: str = "head", *, app_role: str | None = None) -> None:
    """Migrate the database at ``url`` (default: the setting) up to ``revision``; then, with ``app_role``,
    give that role exactly the application's privileges (PostgreSQL; see ``activities.db.roles``)."""
    _run(url, "upgrade", revision, app_role)


def grant(url: str | None = None, *, app_role: str) -> None:
    """Give ``app_role`` exactly the application's privileges, as the owner at ``url``."""
    _run(url, "grant", None, app_role)


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
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Migrate the escalation record store's database.")
    parser.add_argument("--url", help="SQLAlchemy URL (default ESCALATION_DATABASE_URL)")
    parser.add_argument("action", choices=["upgrade", "downgrade", "current", "grant"])
    parser.add_argument("revision", nargs="?", help="target (default: head up, base down)")
    parser.add_argument(
        "--app-role",
        help="PostgreSQL: after upgrading (or with 'grant'), give this role, which the worker connects as, "
        "exactly what it needs and nothing else",
    )
    args = parser.parse_args(argv)
    if args.app_role is not None and args.action not in ("upgrade", "grant"):
        parser.error("--app-role goes with 'upgrade' or 'grant'")
    if args.action == "grant" and not args.app_role:
        parser.error("grant needs --app-role NAME (the role the worker connects as)")
    try:
        if args.action == "upgrade":
            upgrade(args.url, args.revision or "head", app_role=args.app_role)
        elif args.action == "downgrade":
            downgrade(args.url, args.revision or "base")
        elif args.action == "grant":
            grant(args.url, app_role=args.app_role)
    except (RoleSetupError, MigrationRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.app_role:
        print(f"role {args.app_role} may now do what the worker does, and nothing else")
    print(f"current revision: {current(args.url) or 'none'} (head: {head()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
