"""Raising a collective alert in pages (seed 001 section 4): the raise form without a child, with the
theme, the children's or carers' references and the consultation on the level; the rules are the
application layer's (``app.collective``) and the protocol's ``collective_alerts`` section."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import RedirectResponse, Response

from app.collective import raise_collective
from app.errors import AppError, BadInput, Refused
from app.identity import Person
from starter.web import forms
from starter.web.api import SignedIn
from starter.web.forms import DATE_HINT, Field
from starter.web.pages import application, caller, failure_page, sign_in_first, typed_form
from starter.web.raising import raise_fields
from starter.web.render import page, person_of

router = APIRouter()
api_router = APIRouter(prefix="/api", tags=["collective alerts"])

LABELS = {
    "theme": "The theme the children or carers share",
    "subjects": "The children's or carers' references",
    "qa_consulted_with": "Who you consulted on the level to raise it at",
    "qa_consulted_on": "Date you consulted them",
    "qa_consultation": "What was agreed: the level, and who leads",
    "start_at_stage": "Level to raise it at",
    "impact_on_child": "Impact on the children",
}
LEFT_OUT = {"child_ref", "child_views", "parents_views", "bypass_reason", "emergency", "discussed_with"}
"""Raise form fields a collective alert does not have: no one child, and its level is not a bypass."""


def label(name: str) -> str:
    return LABELS.get(name) or forms.label(name)


def collective_fields(request: Request, person: Person) -> list[Field]:
    app = application(request)
    protocol = app.protocol_of(person)
    rule = protocol.collective_alerts
    if rule is None:
        return []
    held = {h.role for h in person.holdings}
    if not held & set(rule.raised_by):
        return []
    fields = [
        Field(f.name, LABELS.get(f.name, f.label), f.widget, f.hint, f.optional, f.choices)
        for f in raise_fields(app, person)
        if f.name not in LEFT_OUT and not f.name.startswith("contact_")
    ]
    return [
        Field("theme", label("theme"), "text"),
        Field(
            "subjects",
            label("subjects"),
            hint=f"One a line, like {protocol.child_ref.example}; at least two, at most {rule.max_subjects}. "
            "Never names",
        ),
        Field(
            "qa_consulted_with",
            label("qa_consulted_with"),
            "select",
            choices=tuple((r, protocol.role_name(r)) for r in rule.consult),
        ),
        Field("qa_consulted_on", label("qa_consulted_on"), "date", DATE_HINT),
        Field("qa_consultation", label("qa_consultation")),
        *fields,
    ]


def _form(request: Request, person: Person, values: dict[str, Any], errors: dict[str, str]) -> Response:
    return page(
        request,
        "collective.html",
        title="Raise a collective alert",
        nav="collective",
        fields=collective_fields(request, person),
        values=values,
        errors=errors,
        person=person,
        status_code=400 if errors else 200,
    )


@router.get("/collective")
async def collective_form(request: Request) -> Response:
    person = person_of(request)
    if person is None:
        return sign_in_first()
    return _form(request, person, {"request_id": str(uuid.uuid4())}, {})


@router.post("/collective")
async def collective_submit(request: Request) -> Response:
    person = person_of(request)
    if person is None:
        return sign_in_first()
    typed = typed_form(await request.form())
    values = {k: v for k, v in typed.items() if k != "csrf_token"}
    values.setdefault("request_id", str(uuid.uuid4()))
    fields = dict(values)
    fields["consultation_agreed"] = values.get("consultation_agreed") == "yes"
    try:
        escalation_id = await raise_collective(application(request), caller(request, person), fields, label)
    except BadInput as exc:
        return _form(request, person, values, exc.fields)
    except Refused as exc:
        return _form(request, person, values, {"form": exc.message})
    except AppError as exc:
        return failure_page(request, person, exc, back="/collective")
    request.session["flash"] = f"The collective alert was raised as {escalation_id}."
    return RedirectResponse(f"/escalations/{escalation_id}", status_code=303)


@api_router.post("/collective", status_code=201)
async def collective_api(
    request: Request, fields: Annotated[dict[str, Any], Body()], person: SignedIn
) -> dict[str, str]:
    """Raise a collective alert (fields as the raise form's without ``child_ref``, and ``theme``,
    ``subjects`` (a list), ``qa_consulted_with``, ``qa_consulted_on``, ``qa_consultation``)."""
    escalation_id = await raise_collective(application(request), caller(request, person), fields, str)
    return {"escalation_id": escalation_id}
