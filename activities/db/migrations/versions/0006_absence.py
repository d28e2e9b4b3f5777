"""Absence marks in the directory: a person may be marked absent (leave, sickness) from a day, to a day.

Revision ID: 0006_absence
Revises: 0005_audit
Create Date: 2026-12-10

A directory file may mark a person ``absent_from`` a day (and ``absent_until`` a day, inclusive). While
they are, a notice to a role they hold goes to the holder of the role the protocol's ``cover`` names for it.
``directory_people`` keeps both days (NULL: not marked absent). Adding columns leaves the tables' guard
triggers and the application role's grants in place. Written by hand; ``activities/db/mail_models.py``
describes the result.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_absence"
down_revision: str | Sequence[str] | None = "0005_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("absent_from", "absent_until")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("directory_people", sa.Column(name, sa.Date(), nullable=True))


def downgrade() -> None:
    for name in reversed(COLUMNS):
        op.drop_column("directory_people", name)
