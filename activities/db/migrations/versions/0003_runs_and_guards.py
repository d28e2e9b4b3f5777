"""Runs, guards and hashed reply tokens.

Revision ID: 0003_runs_and_guards
Revises: 0002_mail
Create Date: 2026-05-22

* **Runs.** An escalation id can be used again once Temporal's retention has removed the first
  escalation's history. Every table now names an escalation by (escalation_id, run_id), ``run_id`` being its
  first run id: events are unique on (escalation_id, run_id, seq), the state row's key is (escalation_id,
  run_id), case notes and refusals carry ``run_id`` in their unique keys, sent mail and reply tokens carry
  it. State rows take the run id of their latest event; other rows written before keep ``run_id`` '' (and
  so their old idempotency keys and Message-IDs).
* **Guards.** Rows that must never change or vanish are protected by triggers, as ``escalation_events``
  already was: ``sent_mail`` and ``signal_refusals`` refuse UPDATE and DELETE (and TRUNCATE on
  PostgreSQL); ``case_notes`` refuses DELETE and any change but to its delivery columns (``status``,
  ``attempts``, ``external_ref``, ``delivered_at``, ``last_error``); ``escalations`` refuses DELETE.
* **Reply tokens** are stored as their SHA-256 (``token_hash``) with ``expires_at``; tokens issued before
  are hashed here and expire 60 days after they were issued.

Downgrade: refused while an escalation id has more than one run recorded (the old keys cannot hold them).
The raw reply tokens cannot be recovered: the downgraded ``token`` column holds the hashes, so replies to
any message sent before the downgrade are no longer recognised.

Written by hand; ``activities/db/record_models.py`` and ``mail_models.py`` describe the result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0003_runs_and_guards"
down_revision: str | Sequence[str] | None = "0002_mail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_TOKEN_DAYS = 60
CASE_NOTE_CONTENT: tuple[str, ...] = ("id", "escalation_id", "run_id", "seq", "authority", "child_ref")
CASE_NOTE_CONTENT += ("note_type", "body", "created_at")
"""The columns of a case note that never change once written (only its delivery columns do)."""
APPEND_ONLY_TABLES = ("sent_mail", "signal_refusals")


def _dialect() -> str:
    return op.get_bind().dialect.name


def _run_id() -> sa.Column[str]:
    return sa.Column("run_id", sa.String(64), nullable=False, server_default="")


# --- upgrade ------------------------------------------------------------------------------------------------


def upgrade() -> None:
    sqlite = _dialect() == "sqlite"
    if sqlite:  # the table is rebuilt below, which would take its triggers with it
        _drop_sqlite_event_guard()
    with op.batch_alter_table("escalation_events") as batch:
        batch.drop_constraint("uq_escalation_events_escalation_id", type_="unique")
        batch.create_unique_constraint(
            "uq_escalation_events_escalation_id_run_id_seq", ["escalation_id", "run_id", "seq"]
        )
    if sqlite:
        _create_sqlite_event_guard()

    op.add_column("escalations", _run_id())
    op.execute(
        "UPDATE escalations SET run_id = COALESCE((SELECT e.run_id FROM escalation_events e "
        "WHERE e.escalation_id = escalations.escalation_id AND e.seq = escalations.last_seq "
        "ORDER BY e.id DESC LIMIT 1), '')"
    )
    with op.batch_alter_table("escalations") as batch:
        batch.drop_constraint("pk_escalations", type_="primary")
        batch.create_primary_key("pk_escalations", ["escalation_id", "run_id"])

    op.add_column("case_notes", _run_id())
    with op.batch_alter_table("case_notes") as batch:
        batch.drop_constraint("uq_case_notes_escalation_id", type_="unique")
        batch.create_unique_constraint(
            "uq_case_notes_escalation_id_run_id_seq", ["escalation_id", "run_id", "seq"]
        )

    op.add_column("signal_refusals", _run_id())
    with op.batch_alter_table("signal_refusals") as batch:
        batch.drop_constraint("uq_signal_refusals_escalation_id", type_="unique")
        batch.create_unique_constraint(
            "uq_signal_refusals_escalation_id_run_id_at", ["escalation_id", "run_id", "at", "action"]
        )

    op.add_column("sent_mail", _run_id())
    _hash_reply_tokens()
    _create_guards()


def _hash_reply_tokens() -> None:
    op.add_column("reply_tokens", sa.Column("token_hash", sa.String(64), nullable=True))
    op.add_column("reply_tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("reply_tokens", _run_id())
    tokens = sa.table(
        "reply_tokens",
        sa.column("id", sa.BigInteger()),
        sa.column("token", sa.String()),
        sa.column("token_hash", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    for row in bind.execute(sa.select(tokens.c.id, tokens.c.token, tokens.c.created_at)).all():
        created = row.created_at
        if isinstance(created, str):  # SQLite keeps UTC wall time as text
            created = datetime.fromisoformat(created)
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        expires = created + timedelta(days=OLD_TOKEN_DAYS)
        bind.execute(
            tokens.update()
            .where(tokens.c.id == row.id)
            .values(
                token_hash=hashlib.sha256(row.token.encode()).hexdigest(),
                expires_at=expires.astimezone(UTC).replace(tzinfo=None) if sqlite else expires,
            )
        )
    with op.batch_alter_table("reply_tokens") as batch:
        batch.drop_constraint("uq_reply_tokens_token", type_="unique")
        batch.drop_constraint("uq_reply_tokens_idempotency_key_person_id", type_="unique")
        batch.drop_column("token")
        batch.alter_column("token_hash", existing_type=sa.String(64), nullable=False)
        batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_unique_constraint("uq_reply_tokens_token_hash", ["token_hash"])


# --- downgrade ----------------------------------------------------------------------------------------------


def downgrade() -> None:
    _refuse_if_ids_were_reused()
    _drop_guards()
    sqlite = _dialect() == "sqlite"

    op.add_column("reply_tokens", sa.Column("token", sa.String(64), nullable=True))
    op.execute("UPDATE reply_tokens SET token = token_hash")
    op.execute(  # 0002 allowed one token per message and recipient: keep the first
        "DELETE FROM reply_tokens WHERE id NOT IN (SELECT min(id) FROM reply_tokens "
        "GROUP BY idempotency_key, person_id)"
    )
    with op.batch_alter_table("reply_tokens") as batch:
        batch.drop_constraint("uq_reply_tokens_token_hash", type_="unique")
        batch.drop_column("token_hash")
        batch.drop_column("expires_at")
        batch.drop_column("run_id")
        batch.alter_column("token", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_reply_tokens_token", ["token"])
        batch.create_unique_constraint(
            "uq_reply_tokens_idempotency_key_person_id", ["idempotency_key", "person_id"]
        )

    with op.batch_alter_table("sent_mail") as batch:
        batch.drop_column("run_id")

    with op.batch_alter_table("signal_refusals") as batch:
        batch.drop_constraint("uq_signal_refusals_escalation_id_run_id_at", type_="unique")
        batch.create_unique_constraint("uq_signal_refusals_escalation_id", ["escalation_id", "at", "action"])
        batch.drop_column("run_id")

    with op.batch_alter_table("case_notes") as batch:
        batch.drop_constraint("uq_case_notes_escalation_id_run_id_seq", type_="unique")
        batch.create_unique_constraint("uq_case_notes_escalation_id", ["escalation_id", "seq"])
        batch.drop_column("run_id")

    with op.batch_alter_table("escalations") as batch:
        batch.drop_constraint("pk_escalations", type_="primary")
        batch.create_primary_key("pk_escalations", ["escalation_id"])
        batch.drop_column("run_id")

    if sqlite:
        _drop_sqlite_event_guard()
    with op.batch_alter_table("escalation_events") as batch:
        batch.drop_constraint("uq_escalation_events_escalation_id_run_id_seq", type_="unique")
        batch.create_unique_constraint("uq_escalation_events_escalation_id", ["escalation_id", "seq"])
    if sqlite:
        _create_sqlite_event_guard()


def _refuse_if_ids_were_reused() -> None:
    checks = {
        "escalation_events": "escalation_id, seq",
        "escalations": "escalation_id",
        "case_notes": "escalation_id, seq",
        "signal_refusals": "escalation_id, at, action",
    }
    bind = op.get_bind()
    for table, key in checks.items():
        found = bind.execute(
            sa.text(f"SELECT escalation_id FROM {table} GROUP BY {key} HAVING count(*) > 1 LIMIT 1")
        ).first()
        if found is not None:
            raise RuntimeError(
                f"cannot downgrade below 0003_runs_and_guards: escalation id {found[0]!r} was used by more "
                f"than one escalation and {table} holds both; revision 0002 keys {table} on ({key}) alone"
            )


# --- guards -------------------------------------------------------------------------------------------------


def _create_guards() -> None:
    dialect = _dialect()
    if dialect == "postgresql":
        op.execute(
            """
            CREATE FUNCTION records_refuse_change() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'restrict_violation',
                          HINT = 'these rows are never changed or removed';
            END;
            $$
            """
        )
        changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in CASE_NOTE_CONTENT)
        op.execute(
            f"""
            CREATE FUNCTION case_notes_content_fixed() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF {changed} THEN
                    RAISE EXCEPTION 'case_notes content is fixed: UPDATE refused'
                        USING ERRCODE = 'restrict_violation',
                              HINT = 'only the delivery columns change';
                END IF;
                RETURN NEW;
            END;
            $$
            """
        )
        for table in APPEND_ONLY_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION records_refuse_change()"
            )
        for table in (*APPEND_ONLY_TABLES, "case_notes", "escalations"):
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION records_refuse_change()"
            )
        for table in ("case_notes", "escalations"):
            op.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION records_refuse_change()"
            )
        op.execute(
            "CREATE TRIGGER case_notes_content_fixed BEFORE UPDATE ON case_notes "
            "FOR EACH ROW EXECUTE FUNCTION case_notes_content_fixed()"
        )
    elif dialect == "sqlite":
        for table in APPEND_ONLY_TABLES:
            for operation in ("UPDATE", "DELETE"):
                _sqlite_refusal(f"{table}_no_{operation.lower()}", operation, table)
        for table in ("case_notes", "escalations"):
            _sqlite_refusal(f"{table}_no_delete", "DELETE", table)
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in CASE_NOTE_CONTENT)
        op.execute(
            f"CREATE TRIGGER case_notes_content_fixed BEFORE UPDATE ON case_notes WHEN {changed} "
            "BEGIN SELECT RAISE(ABORT, 'case_notes content is fixed: UPDATE refused'); END"
        )
    else:
        raise NotImplementedError(f"no guards for {dialect}: add them before using it")


def _sqlite_refusal(name: str, operation: str, table: str) -> None:
    op.execute(
        f"CREATE TRIGGER {name} BEFORE {operation} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {operation} refused'); END"
    )


def _drop_guards() -> None:
    dialect = _dialect()
    if dialect == "postgresql":
        for table in APPEND_ONLY_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table}")
        for table in (*APPEND_ONLY_TABLES, "case_notes", "escalations"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        for table in ("case_notes", "escalations"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete ON {table}")
        op.execute("DROP TRIGGER IF EXISTS case_notes_content_fixed ON case_notes")
        op.execute("DROP FUNCTION IF EXISTS case_notes_content_fixed()")
        op.execute("DROP FUNCTION IF EXISTS records_refuse_change()")
    elif dialect == "sqlite":
        names = [f"{t}_no_{o}" for t in APPEND_ONLY_TABLES for o in ("update", "delete")]
        names += ["case_notes_no_delete", "escalations_no_delete", "case_notes_content_fixed"]
        for name in names:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def _create_sqlite_event_guard() -> None:
    """Revision 0001's triggers on ``escalation_events``, put back after SQLite rebuilt the table."""
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER escalation_events_no_{operation.lower()} BEFORE {operation} "
            "ON escalation_events BEGIN SELECT RAISE(ABORT, "
            f"'escalation_events is append-only: {operation} refused'); END"
        )


def _drop_sqlite_event_guard() -> None:
    op.execute("DROP TRIGGER IF EXISTS escalation_events_no_update")
    op.execute("DROP TRIGGER IF EXISTS escalation_events_no_delete")
