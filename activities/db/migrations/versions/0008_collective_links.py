"""Links from an escalation to the collective alert it belongs to.

Revision ID: 0008_collective_links
Revises: 0007_inbound_mail
Create Date: 2026-12-20

A collective alert (one theme across several children, seed 001 section 4) is an escalation of its own; an
officer may still escalate for one of its children and name the collective alert that escalation belongs
to. ``escalations.part_of`` keeps that id (NULL: none), written when the escalation's state row is created,
and indexed so that the collective alert's page lists its escalations in one query. Adding a column leaves
the table's guard trigger and the application role's grants in place. Written by hand;
``activities/db/record_models.py`` describes the result.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_collective_links"
down_revision: str | Sequence[str] | None = "0007_inbound_mail"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("escalations", sa.Column("part_of", sa.String(128), nullable=True))
    op.create_index("ix_escalations_part_of", "escalations", ["part_of"])


def downgrade() -> None:
    op.drop_index("ix_escalations_part_of", table_name="escalations")
    op.drop_column("escalations", "part_of")
