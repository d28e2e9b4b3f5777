"""Noting good practice in pages: one form (whose practice, the child, what and how it helped), then the
note is recorded and sent; errors name the form's fields and keep what was typed. The rules are the
application layer's (``app.good_practice``) and the protocol's ``good_practice`` section."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import RedirectResponse, Response

from app.errors import AppError, BadInput, Refused
from app.good_practice import note_good_practice, writable_about
from app.identity import Person
from starter.web.api import SignedIn
from starter.web.forms import Field
from starter.web.pages import application, caller, failure_page, sign_in_first, typed_form
from starter.web.render import page, person_of

router = APIRouter()
api_router = APIRouter(prefix="/api", tags=["good practice"])

LABELS = {
    "about_id": "Whose good practice",
    "team": "Their team",
    "child_ref": "Child's case number",
    "category": "Category",
    "what": "The good practice",
    "impact": "How it made a difference to the child and family",
    "request_id": "Request reference",
    "form": "Your note",
}


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def note_fields(request: Request, person: Person) -> list[Field]:
    app = application(request)
    about = writable_about(app, caller(request, person))
    if not about:
        return []
    protocol = app.protocol_of(person)
    teams = sorted(
        {h.team for p in app.people.all() if p.authority == person.authority for h in p.holdings if h.team}
    )
    categories = tuple(dict.fromkeys((c, c) for t in protocol.tracks for c in t.categories))
    return [
        Field("about_id", label("about_id"), "select", choices=tuple((i, text) for i, _, text in about)),
        Field(
            "team",
            label("team"),
            "select",
            "Their managers are copied in",
            optional=True,
            choices=tuple((t, t) for t in teams),
        ),
        Field(
            "child_ref",
            label("child_ref"),
            "text",
            f"Like {protocol.child_ref.example}; never the child's name. The note goes on the child's file",
            optional=True,
        ),
        Field("category", label("category"), "select", optional=True, choices=categories),
        Field("what", label("what")),
        Field("impact", label("impact"), optional=True),
    ]


def _form(
    request: Request, person: Person, values: dict[str, Any], errors: dict[str, str], flash: str = ""
) -> Response:
    return page(
        request,
        "good_practice.html",
        title="Note good practice",
        nav="good_practice",
        fields=note_fields(request, person),
        values=values,
        errors=errors,
        flash=flash,
        person=person,
        status_code=400 if errors else 200,
    )


@router.get("/good-practice")
async def good_practice_form(request: Request) -> Response:
    person = person_of(request)
    if person is None:
        return sign_in_first()
    flash = request.session.pop("flash", "")
    return _form(
        request, person, {"request_id": str(uuid.uuid4())}, {}, flash if isinstance(flash, str) else ""
    )


@router.post("/good-practice")
async def good_practice_submit(request: Request) -> Response:
    person = person_of(request)
    if person is None:
        return sign_in_first()
    typed = typed_form(await request.form())
    values = {k: v for k, v in typed.items() if k != "csrf_token"}
    values.setdefault("request_id", str(uuid.uuid4()))
    try:
        note = await note_good_practice(application(request), caller(request, person), values, label)
    except BadInput as exc:
        return _form(request, person, values, exc.fields)
    except Refused as exc:
        return _form(request, person, values, {"form": exc.message})
    except AppError as exc:
        return failure_page(request, person, exc, back="/good-practice")
    where = f" It goes on the child's file as “{note.case_note_type}”." if note.case_note_type else ""
    request.session["flash"] = f"Your {note.label.lower()} was recorded as {note.note_id} and sent.{where}"
    return RedirectResponse("/good-practice", status_code=303)


@api_router.post("/good-practice", status_code=201)
async def note_api(
    request: Request, fields: Annotated[dict[str, Any], Body()], person: SignedIn
) -> dict[str, str | None]:
    """Note good practice (fields as the form's: ``about_id``, ``what``, ``impact``, ``team``,
    ``child_ref``, ``category``; ``request_id`` makes a retry safe)."""
    note = await note_good_practice(application(request), caller(request, person), fields)
    return {"note_id": note.note_id, "case_note_type": note.case_note_type}
