"""Mail: the staff directory, the sent-mail log and reply tokens.

Revision ID: 0002_mail
Revises: 0001_records
Create Date: 2026-05-21

Written by hand, so it does not depend on the models as they are later: ``activities/db/mail_models.py`` must
describe the same tables (``tests/test_mail.py`` checks).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_mail"
down_revision: str | Sequence[str] | None = "0001_records"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "directory_people",
        sa.Column("authority", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.PrimaryKeyConstraint("authority", "person_id", name=op.f("pk_directory_people")),
    )

    op.create_table(
        "directory_assignments",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("authority", sa.String(64), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("team", sa.String(64), nullable=True),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_assignments")),
        sa.ForeignKeyConstraint(
            ["authority", "person_id"],
            ["directory_people.authority", "directory_people.person_id"],
            name=op.f("fk_directory_assignments_authority_directory_people"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_directory_assignments_lookup", "directory_assignments", ["authority", "role", "team"])

    op.create_table(
        "sent_mail",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("idempotency_key", sa.String(160), nullable=False),
        sa.Column("escalation_id", sa.String(128), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("sent_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_mail")),
        sa.UniqueConstraint("message_id", name=op.f("uq_sent_mail_message_id")),
    )
    op.create_index("ix_sent_mail_idempotency_key", "sent_mail", ["idempotency_key"])

    op.create_table(
        "reply_tokens",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(160), nullable=False),
        sa.Column("escalation_id", sa.String(128), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("used_at", _tz(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reply_tokens")),
        sa.UniqueConstraint("token", name=op.f("uq_reply_tokens_token")),
        sa.UniqueConstraint(
            "idempotency_key", "person_id", name=op.f("uq_reply_tokens_idempotency_key_person_id")
        ),
        sa.CheckConstraint("purpose IN ('reply')", name=op.f("ck_reply_tokens_purpose")),
    )
    op.create_index("ix_reply_tokens_escalation_id", "reply_tokens", ["escalation_id"])


def downgrade() -> None:
    op.drop_index("ix_reply_tokens_escalation_id", table_name="reply_tokens")
    op.drop_table("reply_tokens")
    op.drop_index("ix_sent_mail_idempotency_key", table_name="sent_mail")
    op.drop_table("sent_mail")
    op.drop_index("ix_directory_assignments_lookup", table_name="directory_assignments")
    op.drop_table("directory_assignments")
    op.drop_table("directory_people")
