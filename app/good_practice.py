"""Noting good practice through the application layer: the signed-in person, checked against the
directory and the protocol's ``good_practice`` section, bounded input, audited.

The person writes in the first role the directory gives them (for any team) that the protocol lets write a
note about the person noted; the note is started through ``starter.good_practice``
(idempotent on the form's request id).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.service import RPCError

from app.errors import AppError, BadInput, Refused, Unavailable
from app.inputs import Label, problems
from app.service import Application, Caller
from protocols import ProtocolError
from schemas.bounds import OptionalText, ShortText, Text
from schemas.escalation import Actor
from schemas.good_practice import GoodPracticeNote, GoodPracticeRequest
from starter.escalations import BadInput as StartBadInput
from starter.good_practice import Noted, note_once, prepare_note
from workflows import rules


class GoodPracticeForm(BaseModel):
    """The good practice form's fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    about_id: str = Field(min_length=1, max_length=64)
    team: str | None = Field(default=None, max_length=64)
    child_ref: str | None = Field(default=None, max_length=64)
    category: ShortText | None = None
    what: Text
    impact: OptionalText = ""
    request_id: str = Field(min_length=1, max_length=64)


def writable_about(app: Application, caller: Caller) -> list[tuple[str, str, str]]:
    """(person id, role, their name and role) of the people this person may note the good practice of."""
    person = caller.person
    try:
        protocol = app.protocol_of(person)
    except ProtocolError:
        return []
    section = protocol.good_practice
    if section is None:
        return []
    held = {h.role for h in person.holdings}
    roles: list[str] = list(section.about) if held & set(section.noted_by) else []
    officers = section.about_officers
    if officers is not None and (not officers.noted_by or held & set(officers.noted_by)):
        roles += [r for r in officers.officer_roles if r not in roles]
    found = []
    for other in app.people.all():
        if other.authority != person.authority or other.id == person.id:
            continue
        for role in dict.fromkeys(h.role for h in other.holdings):
            if role in roles:
                found.append((other.id, role, f"{other.name} ({protocol.role_name(role)})"))
    return found


async def note_good_practice(
    app: Application, caller: Caller, fields: Mapping[str, Any], label: Label = str
) -> GoodPracticeNote:
    """Note good practice from the form's fields; the note (its id the same on a retry)."""
    note, _ = await start_good_practice(app, caller, fields, label)
    return note


async def start_good_practice(
    app: Application, caller: Caller, fields: Mapping[str, Any], label: Label = str
) -> tuple[GoodPracticeNote, Noted]:
    """``note_good_practice``, with the note's workflow (and whether an earlier attempt started it)."""
    try:
        given = {k: v for k, v in fields.items() if v not in ("", None)}
        unknown = sorted(k for k in given if k not in GoodPracticeForm.model_fields)
        if unknown:
            raise BadInput({k: f"{label(k)} is not part of a good practice note" for k in unknown})
        try:
            form = GoodPracticeForm(**given)
        except ValidationError as exc:
            raise BadInput(problems(exc, label)) from None
        protocol = app.protocol_of(caller.person)
        if protocol.good_practice is None:
            raise Refused(
                f"The {protocol.authority} protocol has no good practice notes (its 'good_practice' section)."
            )
        about = next(((i, r) for i, r, _ in writable_about(app, caller) if i == form.about_id), None)
        if about is None:
            raise BadInput({"about_id": f"Select {label('about_id')[:1].lower()}{label('about_id')[1:]}"})
        note = _note(caller, form, Actor(id=about[0], role=about[1]), label)
        noted = await note_once(app.client, note, app.task_queue)
    except StartBadInput as exc:
        failure: AppError = BadInput({"form": exc.reason[:1].upper() + exc.reason[1:]})
        app.audit_outcome(caller, "good_practice", None, failure)
        raise failure from None
    except RPCError:
        failure = Unavailable("The escalation service did not answer: try again in a minute.")
        app.audit_outcome(caller, "good_practice", None, failure)
        raise failure from None
    except AppError as exc:
        app.audit_outcome(caller, "good_practice", None, exc)
        raise
    app.audit_outcome(caller, "good_practice", note.note_id, role=note.request.by.role)
    return note, noted


def _note(caller: Caller, form: GoodPracticeForm, about: Actor, label: Label) -> GoodPracticeNote:
    """The note in the first role of the person's that the protocol lets write it; the protocol's reason
    for the last role tried if none may."""
    person = caller.person
    reason = "The staff directory gives you no role that notes good practice."
    for role in dict.fromkeys(h.role for h in person.holdings):  # the team is the noted person's
        try:
            request = GoodPracticeRequest(
                authority=person.authority,
                by=Actor(id=person.id, role=role),
                about=about,
                team=form.team,
                child_ref=form.child_ref,
                category=form.category,
                what=form.what,
                impact=form.impact,
            )
        except ValidationError as exc:
            raise BadInput(problems(exc, label)) from None
        try:
            return prepare_note(request, form.request_id)
        except StartBadInput:
            raise
        except rules.Refused as exc:
            reason = exc.reason[:1].upper() + exc.reason[1:] + "."
    raise Refused(reason)
