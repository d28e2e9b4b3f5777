"""PostgreSQL roles: the owner migrates, the application (worker) owns nothing and may only do its job.

A table's owner can always change it: ``ALTER TABLE ... DISABLE TRIGGER``, ``DROP TRIGGER``, ``TRUNCATE``. So
the append-only guards only hold if the role the worker connects as owns nothing. Two login roles:

* the **owner** (``ESCALATION_DB_OWNER`` in docker-compose.yml) owns the database and runs the migrations;
  its password is given to the one-shot migration job only;
* the **application role** (``ESCALATION_DB_APP_USER``) is what the worker connects as. ``grant_app_role``
  (run by the owner, after migrating: ``python -m activities.db.migrate upgrade --app-role NAME``) checks
  that it owns nothing and cannot act as the owner, revokes whatever it had, and grants exactly
  ``APP_PRIVILEGES``: INSERT and SELECT on the append-only tables, UPDATE only of the columns that must
  change, DELETE only on the directory (replaced whole when synced), and nothing else.

SQLite has no roles: a process that can write the file can change anything in it (see docs/deploy.md).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from activities.db.base import Base

CASE_NOTE_DELIVERY = ("status", "attempts", "external_ref", "delivered_at", "last_error")
"""The only columns of ``case_notes`` that change once written (a trigger refuses the rest too)."""
STATE_IDENTITY = ("escalation_id", "run_id", "authority", "track", "child_ref")
"""The columns of an ``escalations`` state row that never change."""


def _update_of(table: str, excluded: tuple[str, ...] = (), present: set[str] | None = None) -> str:
    columns = [
        c.name
        for c in Base.metadata.tables[table].columns
        if c.name not in excluded and (present is None or c.name in present)
    ]
    return f"UPDATE ({', '.join(columns)})"


def app_privileges(columns: dict[str, set[str]] | None = None) -> dict[str, tuple[str, ...]]:
    """What the application role may do, per table. A table not listed gets nothing.

    ``columns``: the columns each table has in the database, when it is not at the newest revision (a
    grant made part-way through the migrations names only the columns that exist then)."""
    state_columns = None if columns is None else columns.get("escalations", set())
    return {
        "escalation_events": ("SELECT", "INSERT"),
        "escalations": ("SELECT", "INSERT", _update_of("escalations", STATE_IDENTITY, state_columns)),
        "case_notes": ("SELECT", "INSERT", f"UPDATE ({', '.join(CASE_NOTE_DELIVERY)})"),
        "signal_refusals": ("SELECT", "INSERT"),
        "directory_people": ("SELECT", "INSERT", "DELETE"),
        "directory_assignments": ("SELECT", "INSERT", "DELETE"),
        "sent_mail": ("SELECT", "INSERT"),
        "reply_tokens": ("SELECT", "INSERT", "UPDATE (used_at)"),
        "audit_log": ("SELECT", "INSERT"),  # the web app's audit: appended to, never changed
        "inbound_mail": ("SELECT", "INSERT"),  # replies read by the ingester: appended to, never changed
        "alembic_version": ("SELECT",),  # the worker checks the schema is at head
    }


class RoleSetupError(RuntimeError):
    """The application role cannot be set up safely; the message says why and how to fix it."""


def _quote(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


def _one(connection: Connection, sql: str, **params: object) -> object:
    return connection.execute(text(sql), params).scalar()


def _check_app_role(connection: Connection, app_role: str) -> None:
    owner = str(_one(connection, "SELECT current_user"))
    row = connection.execute(
        text("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = :r"), {"r": app_role}
    ).first()
    if row is None:
        raise RoleSetupError(
            f"--app-role {app_role!r}: no such role. Create it (as a superuser): "
            f"CREATE ROLE {app_role} LOGIN PASSWORD '...'; docker-compose.yml's first start does this"
        )
    if app_role == owner:
        raise RoleSetupError(
            f"--app-role {app_role!r} is the role running the migration, which owns the tables: the worker "
            "needs a role of its own that owns nothing"
        )
    if row.rolsuper or row.rolcreaterole:
        raise RoleSetupError(
            f"--app-role {app_role!r} is a superuser or may create roles, so no guard would hold against it: "
            f"ALTER ROLE {app_role} NOSUPERUSER NOCREATEROLE"
        )
    owned = connection.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND pg_get_userbyid(c.relowner) = :r "
            "UNION ALL SELECT n.nspname FROM pg_namespace n "
            "WHERE n.nspname = current_schema() AND pg_get_userbyid(n.nspowner) = :r "
            "UNION ALL SELECT d.datname FROM pg_database d "
            "WHERE d.datname = current_database() AND pg_get_userbyid(d.datdba) = :r"
        ),
        {"r": app_role},
    ).scalars()
    found = sorted(owned)
    if found:
        raise RoleSetupError(
            f"--app-role {app_role!r} owns {', '.join(found)}: an owner can disable or drop the guards. "
            f"As a superuser: REASSIGN OWNED BY {app_role} TO {owner} (and ALTER DATABASE ... OWNER TO "
            f"{owner} for the database), then run this again"
        )
    owners = connection.execute(
        text(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"
        )
    ).scalars()
    for table_owner in sorted(set(owners) | {owner}):
        if _one(connection, "SELECT pg_has_role(:a, :o, 'MEMBER')", a=app_role, o=table_owner):
            raise RoleSetupError(
                f"--app-role {app_role!r} is a member of {table_owner!r}, which owns tables here, so it can "
                f"act as their owner: REVOKE {table_owner} FROM {app_role}"
            )


def grant_app_role(connection: Connection, app_role: str) -> list[str]:
    """Give ``app_role`` exactly ``app_privileges()`` on the current schema; return what was granted.

    Run as the owner of the tables, in the caller's transaction. Raises ``RoleSetupError`` when the role is
    missing, owns anything here, is a superuser or may act as the owner.
    """
    if connection.dialect.name != "postgresql":
        raise RoleSetupError(
            f"--app-role: roles exist on PostgreSQL only, not on {connection.dialect.name} (on SQLite, "
            "whoever can write the file can change it: see docs/deploy.md)"
        )
    _check_app_role(connection, app_role)
    role = _quote(connection, app_role)
    schema = _quote(connection, str(_one(connection, "SELECT current_schema()")))
    database = _quote(connection, str(_one(connection, "SELECT current_database()")))
    done: list[str] = []

    def run(statement: str) -> None:
        connection.execute(text(statement))
        done.append(statement)

    run(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}")
    run(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}")
    run(f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {schema} FROM {role}")
    run(f"REVOKE CREATE ON SCHEMA {schema} FROM {role}")
    owns_schema = "SELECT pg_has_role(nspowner, 'MEMBER') FROM pg_namespace WHERE nspname = current_schema()"
    if _one(connection, owns_schema):
        run(f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC")
    if not _one(connection, "SELECT has_database_privilege(:r, current_database(), 'CONNECT')", r=app_role):
        run(f"GRANT CONNECT ON DATABASE {database} TO {role}")
    run(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
    tables = text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    present = set(connection.execute(tables).scalars())
    columns: dict[str, set[str]] = {}
    listed = text(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
    )
    for table, column in connection.execute(listed):
        columns.setdefault(str(table), set()).add(str(column))
    for table, privileges in app_privileges(columns).items():
        if table in present:
            run(f"GRANT {', '.join(privileges)} ON {schema}.{_quote(connection, table)} TO {role}")
    # nextval() for the id columns; not setval().
    run(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
    if _one(connection, "SELECT has_schema_privilege(:r, current_schema(), 'CREATE')", r=app_role):
        raise RoleSetupError(
            f"--app-role {app_role!r} may still create tables in {schema} (granted to PUBLIC by a schema "
            f"owner other than this role): as that owner, REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC"
        )
    return done
