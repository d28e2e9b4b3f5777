"""The record store's database roles on a real PostgreSQL: the worker's role owns nothing and cannot get
round the guards; the migration's owner role grants it exactly what the worker does.

The roles and the database are made by docker-compose.yml's own init script (``postgres-init-roles``),
run with psql against the test server, so the test also checks that script.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError

from activities.case_notes import FileCaseNoteAdapter, deliver_pending
from activities.db import migrate
from activities.db.base import make_engine
from activities.db.roles import app_privileges
from activities.db_records import DbRecordStore
from activities.directory import sync_directories
from activities.mail import find_reply_token
from tests.databases import DIRECTORIES
from tests.postgres_server import find_postgres_bin
from tests.smtp_server import Capture
from tests.test_db_records import ESC, RUN, event, raised, refusal
from tests.test_docker_compose import COMPOSE_FILE
from tests.test_mail import notifier, stage_sent, token_of

INSUFFICIENT_PRIVILEGE = "42501"


@dataclass(frozen=True)
class Roles:
    owner: str
    app: str
    owner_url: str
    app_url: str
    superuser_url: str


def _superuser(url: str, *statements: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def _init_script() -> str:
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return str(compose["configs"]["postgres-init-roles"]["content"]).replace("$$", "$")


@pytest.fixture
def roles(postgres_url: str) -> Iterator[Roles]:
    """A database made by docker-compose.yml's init script, with its owner and application roles."""
    tag = uuid.uuid4().hex[:10]
    names = {
        "ESCALATION_DB_NAME": f"records_{tag}",
        "ESCALATION_DB_OWNER": f"owner_{tag}",
        "ESCALATION_DB_APP_USER": f"app_{tag}",
        "TEMPORAL_DB_USER": f"temporal_{tag}",
    }
    server = make_url(postgres_url)
    bindir = find_postgres_bin()
    env = {
        **os.environ,
        **names,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}" if bindir else os.environ.get("PATH", ""),
        "PGHOST": str(server.host),
        "PGPORT": str(server.port),
        "POSTGRES_USER": str(server.username),
        # Quotes and a dollar: the script must pass passwords through untouched.
        "TEMPORAL_DB_PASSWORD": "t'\"$x",
        "ESCALATION_DB_OWNER_PASSWORD": "o'wner\"$pw",
        "ESCALATION_DB_APP_PASSWORD": "a'pp\"$pw",
    }
    superuser_url = server.set(database="postgres").render_as_string(hide_password=False)
    done = subprocess.run(
        ["bash", "-euc", _init_script()], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    try:
        assert done.returncode == 0, f"the init script failed: {done.stderr}"
        database = server.set(database=names["ESCALATION_DB_NAME"])
        yield Roles(
            owner=names["ESCALATION_DB_OWNER"],
            app=names["ESCALATION_DB_APP_USER"],
            owner_url=database.set(username=names["ESCALATION_DB_OWNER"]).render_as_string(False),
            app_url=database.set(username=names["ESCALATION_DB_APP_USER"]).render_as_string(False),
            superuser_url=database.render_as_string(hide_password=False),
        )
    finally:
        _superuser(
            superuser_url,
            f'DROP DATABASE IF EXISTS "{names["ESCALATION_DB_NAME"]}" WITH (FORCE)',
            *(
                f'DROP ROLE IF EXISTS "{names[key]}"'
                for key in ("ESCALATION_DB_APP_USER", "TEMPORAL_DB_USER")
            ),
            f'DROP ROLE IF EXISTS "{names["ESCALATION_DB_OWNER"]}"',
        )


@pytest.fixture
def app_engine(roles: Roles) -> Iterator[Engine]:
    migrate.upgrade(roles.owner_url, app_role=roles.app)
    engine = make_engine(roles.app_url)
    try:
        yield engine
    finally:
        engine.dispose()


FORBIDDEN = [
    "UPDATE escalation_events SET text = 'rewritten'",
    "DELETE FROM escalation_events",
    "TRUNCATE escalation_events",
    "ALTER TABLE escalation_events DISABLE TRIGGER ALL",
    "ALTER TABLE escalation_events DISABLE TRIGGER escalation_events_no_update_delete",
    "DROP TRIGGER escalation_events_no_update_delete ON escalation_events",
    "DROP FUNCTION escalation_events_append_only() CASCADE",
    "DROP TABLE escalation_events",
    "ALTER TABLE escalation_events OWNER TO CURRENT_USER",
    "CREATE TABLE shadow (id int)",
    "SET session_replication_role = replica",  # would skip every trigger
    "UPDATE sent_mail SET subject = 'rewritten'",
    "DELETE FROM sent_mail",
    "DELETE FROM signal_refusals",
    "UPDATE signal_refusals SET reason = 'rewritten'",
    "DELETE FROM case_notes",
    "UPDATE case_notes SET body = 'rewritten'",
    "DELETE FROM escalations",
    "UPDATE escalations SET child_ref = 'C999'",
    "UPDATE reply_tokens SET token_hash = 'x'",
    "DELETE FROM reply_tokens",
    "DELETE FROM alembic_version",
    "UPDATE audit_log SET outcome = 'rewritten'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
    "UPDATE inbound_mail SET outcome = 'respond'",
    "DELETE FROM inbound_mail",
    "SELECT setval(pg_get_serial_sequence('escalation_events', 'id'), 1)",
]


def test_the_worker_role_does_the_workers_writes_and_nothing_else(
    roles: Roles, app_engine: Engine, smtp_server: tuple[Capture, int], tmp_path: Path
) -> None:
    # What the worker does at start: check the schema is at head (no DDL), sync the directory.
    migrate.upgrade(roles.app_url)
    assert migrate.current(roles.app_url) == migrate.head()
    sync_directories(app_engine, DIRECTORIES)

    # Recording, retried recording, refusals, case-note delivery: the record store's own write paths.
    store = DbRecordStore(app_engine)
    assert store.append_event(raised()) is True
    assert store.append_event(event(2, text="a second\x00note")) is True
    assert store.append_event(raised()) is False
    assert store.append_refusal(refusal()) is True
    assert store.append_refusal(refusal()) is False
    assert deliver_pending(app_engine, FileCaseNoteAdapter(tmp_path / "notes")) == 2
    assert [n.status for n in store.case_notes()] == ["delivered", "delivered"]

    # Mail: tokens, the sent-mail log, looking a token up.
    capture, port = smtp_server
    assert notifier(app_engine, port).send(stage_sent()) is True
    assert notifier(app_engine, port).send(stage_sent()) is False
    assert len(capture.deliveries) == 3
    assert find_reply_token(app_engine, token_of(capture.deliveries[0].message)[1]) is not None

    for statement in FORBIDDEN:
        with pytest.raises(ProgrammingError) as info, app_engine.begin() as conn:
            conn.execute(text(statement))
        assert getattr(info.value.orig, "pgcode", None) == INSUFFICIENT_PRIVILEGE, (statement, info.value)

    assert [e.seq for e in store.events(ESC, RUN)] == [1, 2]
    assert store.events(ESC)[0].text == "The care plan has not been updated since the review."
    assert len(store.refusals(ESC)) == 1


def test_the_owner_could_disable_the_guards_which_is_why_the_worker_is_not_the_owner(
    roles: Roles, app_engine: Engine
) -> None:
    DbRecordStore(app_engine).append_event(raised())
    owner = make_engine(roles.owner_url)
    try:
        with owner.connect() as conn:
            trans = conn.begin()
            conn.execute(text("ALTER TABLE escalation_events DISABLE TRIGGER ALL"))
            assert conn.execute(text("DELETE FROM escalation_events")).rowcount == 1
            trans.rollback()
        # With the triggers in place, even the owner's UPDATE is refused.
        with pytest.raises(DBAPIError, match="escalation_events is append-only"), owner.begin() as conn:
            conn.execute(text("UPDATE escalation_events SET text = 'rewritten'"))
    finally:
        owner.dispose()
    assert len(DbRecordStore(app_engine).events(ESC)) == 1


def test_the_worker_role_cannot_migrate_and_says_to_run_the_migration_as_the_owner(roles: Roles) -> None:
    migrate.upgrade(roles.owner_url, "0002_mail", app_role=roles.app)
    with pytest.raises(migrate.MigrationRefused, match=rf"{roles.app}.*as the owner of the tables"):
        migrate.upgrade(roles.app_url)
    assert migrate.current(roles.owner_url) == "0002_mail"
    assert migrate.main(["--url", roles.owner_url, "upgrade", "--app-role", roles.app]) == 0
    assert migrate.current(roles.app_url) == migrate.head()


def test_grant_gives_exactly_the_listed_privileges(roles: Roles, app_engine: Engine) -> None:
    with app_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT table_name, privilege_type FROM information_schema.table_privileges "
                "WHERE grantee = current_user"
            )
        ).all()
        columns = conn.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.column_privileges "
                "WHERE grantee = current_user AND privilege_type = 'UPDATE'"
            )
        ).all()
    granted: dict[str, set[str]] = {}
    for table, privilege in rows:
        granted.setdefault(table, set()).add(privilege)
    expected = {
        table: {p.split(" ")[0] for p in privileges if not p.startswith("UPDATE")}
        for table, privileges in app_privileges().items()
    }
    assert granted == expected, "table-wide privileges: no UPDATE, DELETE only on the directory"
    updatable: dict[str, set[str]] = {}
    for table, column in columns:
        updatable.setdefault(table, set()).add(column)
    assert updatable["case_notes"] == {"status", "attempts", "external_ref", "delivered_at", "last_error"}
    assert updatable["reply_tokens"] == {"used_at"}
    assert {"escalation_id", "run_id", "authority", "child_ref"}.isdisjoint(updatable["escalations"])
    assert set(updatable) == {"case_notes", "reply_tokens", "escalations"}


def test_grant_refuses_a_role_that_owns_something_or_can_act_as_the_owner(
    roles: Roles, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(roles.owner_url)

    def grant(role: str) -> str:
        assert migrate.main(["--url", roles.owner_url, "grant", "--app-role", role]) == 2
        return capsys.readouterr().err

    assert "no such role" in grant("nobody_here")
    assert "is the role running the migration" in grant(roles.owner)

    _superuser(
        roles.superuser_url, "CREATE TABLE stray (id int)", f'ALTER TABLE stray OWNER TO "{roles.app}"'
    )
    assert f"{roles.app!r} owns stray" in grant(roles.app)
    _superuser(roles.superuser_url, "DROP TABLE stray", f'GRANT "{roles.owner}" TO "{roles.app}"')
    assert f"is a member of {roles.owner!r}" in grant(roles.app)
    _superuser(roles.superuser_url, f'REVOKE "{roles.owner}" FROM "{roles.app}"')
    _superuser(roles.superuser_url, f'ALTER ROLE "{roles.app}" CREATEROLE')
    assert "may create roles" in grant(roles.app)
    _superuser(roles.superuser_url, f'ALTER ROLE "{roles.app}" NOCREATEROLE')
    assert migrate.main(["--url", roles.owner_url, "grant", "--app-role", roles.app]) == 0


def test_grant_on_sqlite_says_roles_are_postgresql_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'records.db'}"
    assert migrate.main(["--url", url, "upgrade", "--app-role", "worker"]) == 2
    assert "roles exist on PostgreSQL only" in capsys.readouterr().err
