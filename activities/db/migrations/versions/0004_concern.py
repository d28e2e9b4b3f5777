"""The concern on the escalation's state row: impact on the child, what is asked, and views.

Revision ID: 0004_concern
Revises: 0003_runs_and_guards
Create Date: 2026-11-30

The officer raises a concern with a summary, its impact on the child and what is asked, and may give the
child's and the parents' views. The record store kept none of it but the raise event's text (the summary);
``escalations`` now keeps all five (``concern_summary``, ``impact_on_child``, ``requested_action``,
``child_views``, ``parents_views``), NULL for escalations recorded before and for views not given. They are
filled from the first event recorded after the upgrade that carries the concern.

Adding and dropping columns leaves the tables' guard triggers in place (SQLite 3.35 and later drop a column
without rebuilding the table). Written by hand; ``activities/db/record_models.py`` describes the result.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_concern"
down_revision: str | Sequence[str] | None = "0003_runs_and_guards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("concern_summary", "impact_on_child", "requested_action", "child_views", "parents_views")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("escalations", sa.Column(name, sa.Text(), nullable=True))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("escalations", name)
