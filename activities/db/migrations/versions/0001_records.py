"""Records: the append-only event log, escalation state, the case-note outbox and refused signals.

Revision ID: 0001_records
Revises:
Create Date: 2026-05-20

Written by hand, so it does not depend on the models as they are later: ``activities/db/record_models.py``
must describe the same tables (``tests/test_db_records.py`` checks). The event log is append-only in the
database itself: triggers refuse UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) on ``escalation_events``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_records"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = "escalation_events is append-only"

_json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "escalation_events",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("escalation_id", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("authority", sa.String(64), nullable=False),
        sa.Column("child_ref", sa.String(64), nullable=False),
        sa.Column("track", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("at", _tz(), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("actor_role", sa.String(64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False, server_default=""),
        sa.Column("data", _json, nullable=False),
        sa.Column("recorded_at", _tz(), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalation_events")),
        sa.UniqueConstraint("escalation_id", "seq", name=op.f("uq_escalation_events_escalation_id")),
    )
    op.create_index("ix_escalation_events_authority_at", "escalation_events", ["authority", "at"])

    op.create_table(
        "escalations",
        sa.Column("escalation_id", sa.String(128), nullable=False),
        sa.Column("authority", sa.String(64), nullable=False),
        sa.Column("track", sa.String(64), nullable=False),
        sa.Column("category", sa.String(200), nullable=False),
        sa.Column("service_area", sa.String(64), nullable=True),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("stage_name", sa.String(200), nullable=False),
        sa.Column("stage_number", sa.Integer(), nullable=False),
        sa.Column("formal", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("deadline", _tz(), nullable=True),
        sa.Column("deadline_date", sa.Date(), nullable=True),
        sa.Column("total_deadline_date", sa.Date(), nullable=True),
        sa.Column("held_by", _json, nullable=False),
        sa.Column("raised_by_id", sa.String(64), nullable=False),
        sa.Column("raised_by_role", sa.String(64), nullable=False),
        sa.Column("raised_at", _tz(), nullable=False),
        sa.Column("child_ref", sa.String(64), nullable=False),
        sa.Column("team", sa.String(200), nullable=True),
        sa.Column("flags", _json, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("escalation_id", name=op.f("pk_escalations")),
    )
    op.create_index("ix_escalations_authority_status", "escalations", ["authority", "status"])
    op.create_index("ix_escalations_child_ref", "escalations", ["child_ref"])

    op.create_table(
        "case_notes",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("escalation_id", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("authority", sa.String(64), nullable=False),
        sa.Column("child_ref", sa.String(64), nullable=False),
        sa.Column("note_type", sa.String(120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("external_ref", sa.String(200), nullable=True),
        sa.Column("delivered_at", _tz(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _tz(), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_notes")),
        sa.UniqueConstraint("escalation_id", "seq", name=op.f("uq_case_notes_escalation_id")),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name=op.f("ck_case_notes_status")),
    )
    op.create_index("ix_case_notes_status", "case_notes", ["status"])

    op.create_table(
        "signal_refusals",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("escalation_id", sa.String(128), nullable=False),
        sa.Column("authority", sa.String(64), nullable=False),
        sa.Column("at", _tz(), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("actor_role", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_at", _tz(), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_refusals")),
        sa.UniqueConstraint("escalation_id", "at", "action", name=op.f("uq_signal_refusals_escalation_id")),
    )

    _create_append_only_guard()


def downgrade() -> None:
    _drop_append_only_guard()
    op.drop_table("signal_refusals")
    op.drop_index("ix_case_notes_status", table_name="case_notes")
    op.drop_table("case_notes")
    op.drop_index("ix_escalations_child_ref", table_name="escalations")
    op.drop_index("ix_escalations_authority_status", table_name="escalations")
    op.drop_table("escalations")
    op.drop_index("ix_escalation_events_authority_at", table_name="escalation_events")
    op.drop_table("escalation_events")


# --- the append-only guard --------------------------------------------------------------------------------


def _create_append_only_guard() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION escalation_events_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{APPEND_ONLY}: % refused', TG_OP
                    USING ERRCODE = 'restrict_violation',
                          HINT = 'events are never changed; record a new event instead';
            END;
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER escalation_events_no_update_delete BEFORE UPDATE OR DELETE ON escalation_events "
            "FOR EACH ROW EXECUTE FUNCTION escalation_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER escalation_events_no_truncate BEFORE TRUNCATE ON escalation_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION escalation_events_append_only()"
        )
    elif dialect == "sqlite":
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER escalation_events_no_{operation.lower()} BEFORE {operation} "
                f"ON escalation_events BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}: {operation} refused'); END"
            )
    else:
        raise NotImplementedError(f"no append-only guard for {dialect}: add one before using it")


def _drop_append_only_guard() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS escalation_events_no_truncate ON escalation_events")
        op.execute("DROP TRIGGER IF EXISTS escalation_events_no_update_delete ON escalation_events")
        op.execute("DROP FUNCTION IF EXISTS escalation_events_append_only()")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS escalation_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS escalation_events_no_delete")
