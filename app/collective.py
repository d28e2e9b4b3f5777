"""Collective alerts through the application layer: the form's collective part, bounded; raising one (by
``Application.raise_concern`` with ``collective``, so the directory, the protocol and the audit are as for
any concern); and the escalations for single children that name a collective alert, for its page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.db.record_models import EscalationRecord
from app.access import relation_now
from app.errors import AppError, BadInput
from app.inputs import Label, problems
from app.service import Application, Caller
from schemas.escalation import COLLECTIVE_REF, Collective

COLLECTIVE_FIELDS = {
    "theme": "theme",
    "subjects": "subjects",
    "qa_consulted_with": "consulted_with",
    "qa_consulted_on": "consulted_on",
    "qa_consultation": "consultation",
}
"""The form's fields that describe the collective alert (form name: ``Collective`` field); the rest are a
raise form's (whose ``consulted_*`` fields are a gated stage's consultation)."""
LINKED_SHOWN = 200


def collective_of(fields: Mapping[str, Any], label: Label) -> Collective:
    """The collective part of a form: the children's or carers' references one a line (or a list)."""
    given = {m: fields.get(f) for f, m in COLLECTIVE_FIELDS.items() if fields.get(f) not in ("", None)}
    subjects = given.get("subjects")
    if isinstance(subjects, str):
        given["subjects"] = [line.strip() for line in subjects.splitlines() if line.strip()]
    form_name = {m: f for f, m in COLLECTIVE_FIELDS.items()}
    try:
        return Collective.model_validate(given)
    except ValidationError as exc:
        found = problems(exc, lambda name: label(form_name.get(name, name)))
        return_errors = {form_name.get(k, k): v for k, v in found.items()}
        raise BadInput(return_errors) from None


async def raise_collective(
    app: Application, caller: Caller, fields: Mapping[str, Any], label: Label, *, dry_run: bool = False
) -> str:
    """Raise a collective alert from the form's fields; its escalation id."""
    errors: dict[str, str] = {}
    collective: Collective | None = None
    try:
        collective = collective_of(fields, label)
    except BadInput as exc:
        errors = exc.fields
    rest = {k: v for k, v in fields.items() if k not in COLLECTIVE_FIELDS}
    rest["child_ref"] = COLLECTIVE_REF
    if collective is None:  # say what else is wrong too, in one go
        try:
            await app.raise_concern(caller, rest, label, dry_run=True)
        except BadInput as exc:
            errors = {**exc.fields, **errors}
        except AppError:  # refused or unavailable: the collective part's errors come first
            pass
        raise BadInput(errors)
    return await app.raise_concern(caller, rest, label, dry_run=dry_run, collective=collective)


async def linked_escalations(app: Application, caller: Caller, alert_id: str) -> list[str]:
    """The escalations naming ``alert_id`` as their collective alert that this person may see (one query
    of the record store, then each one's facts from its start)."""
    query = (
        select(EscalationRecord.escalation_id, EscalationRecord.stage)
        .where(EscalationRecord.part_of == alert_id)
        .order_by(EscalationRecord.raised_at)
        .limit(LINKED_SHOWN)
    )

    def read() -> list[tuple[str, str]]:
        with Session(app.audit.engine) as session:
            return [(str(i), str(s)) for i, s in session.execute(query)]

    found = []
    for escalation_id, stage in await asyncio.to_thread(read):
        facts = await app.facts(escalation_id)
        if facts is not None and relation_now(caller.person, facts, stage) is not None:
            found.append(escalation_id)
    return found
