"""The pages: waiting for me, my escalations, an escalation with the actions this person may take now,
and raising a concern with a check of the answers. Each calls the application layer and presents."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from app.collective import linked_escalations
from app.errors import AppError, BadInput, NotFound, NotSignedIn, Refused, Unavailable
from app.identity import Person
from app.service import Application, Caller
from starter.web import views
from starter.web.forms import (
    IRREVERSIBLE,
    action_fields,
    action_forms,
    form_errors,
    form_label,
)
from starter.web.render import page, person_of

router = APIRouter()

ESCALATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,159}$")


def application(request: Request) -> Application:
    app: Application = request.app.state.application
    return app


def caller(request: Request, person: Person) -> Caller:
    return Caller(person=person, via="web", client=request.client.host if request.client else None)


def sign_in_first() -> Response:
    return RedirectResponse("/sign-in", status_code=303)


def failure_page(request: Request, person: Person | None, exc: AppError, back: str = "") -> Response:
    status, title = {
        NotFound: (404, "Page not found"),
        Refused: (403, "You cannot do that"),
        Unavailable: (503, "Sorry, there is a problem with the service"),
        NotSignedIn: (401, "You need to sign in"),
        BadInput: (400, "There is a problem"),
    }.get(type(exc), (400, "There is a problem"))
    return page(
        request, "error.html", title=title, message=exc.message, back=back, person=person, status_code=status
    )


@router.get("/")
async def home(request: Request) -> Response:
    return RedirectResponse("/waiting" if person_of(request) else "/sign-in", status_code=303)


@router.get("/waiting")
async def waiting(request: Request) -> Response:
    person = person_of(request)
    if person is None:
        return sign_in_first()
    try:
        listing = await application(request).waiting_for(caller(request, person))
    except AppError as exc:
        return failure_page(request, person, exc)
    return page(
        request,
        "list.html",
        title="Waiting for me",
        nav="waiting",
        rows=views.list_rows(listing.items),
        unreadable=listing.unreadable,
        empty="Nothing is waiting for you.",
        person=person,
    )


@router.get("/escalations")
async def mine(request: Request) -> Response:
    person = person_of(request)
    if person is None:
        return sign_in_first()
    try:
        listing = await application(request).escalations(caller(request, person))
    except AppError as exc:
        return failure_page(request, person, exc)
    return page(
        request,
        "list.html",
        title="My escalations",
        nav="mine",
        rows=views.list_rows(listing.items),
        unreadable=listing.unreadable,
        empty="You have no escalations.",
        person=person,
    )


async def _escalation_page(
    request: Request,
    person: Person,
    escalation_id: str,
    *,
    failed: str = "",
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    flash: str = "",
) -> Response:
    if not ESCALATION_ID.match(escalation_id):
        return failure_page(request, person, NotFound(escalation_id[:40]))
    try:
        reading = await application(request).read(caller(request, person), escalation_id)
    except AppError as exc:
        return failure_page(request, person, exc)
    forms = action_forms(reading.view, reading.facts)
    offered = [forms[k] for k in forms if k in reading.allowed]
    if failed and errors and failed not in reading.allowed:
        # A forced action this person is not offered has no form on the page to point into: the error
        # summary points at "What you can do now" instead.
        errors = {"form": " ".join(dict.fromkeys(errors.values()))}
        failed = ""
    words, css = views.STATUS_WORDS[reading.view.status]
    summary = views.summary(reading)
    if reading.view.collective is not None:  # the escalations for single children that belong to it
        linked = await linked_escalations(application(request), caller(request, person), escalation_id)
        summary.append(views.row("Escalations for single children", ", ".join(linked) or "None yet"))
    return page(
        request,
        "escalation.html",
        title=f"Escalation {escalation_id}",
        view=reading.view,
        status=words,
        status_class=css,
        summary=summary,
        concern=views.concern(reading.view),
        timeline=views.timeline(reading),
        duties=views.duties(reading),
        covers=views.covers(reading),
        verdicts=views.verdicts(reading),
        replies=reading.replies,
        forms=offered,
        failed=failed,
        values=values or {},
        errors=errors or {},
        error_prefix=f"{failed}-",
        flash=flash,
        person=person,
        status_code=400 if errors else 200,
        authority=reading.facts.protocol.key,
    )


@router.get("/escalations/{escalation_id}")
async def escalation(request: Request, escalation_id: str) -> Response:
    person = person_of(request)
    if person is None:
        return sign_in_first()
    flash = request.session.pop("flash", "")
    return await _escalation_page(
        request, person, escalation_id, flash=flash if isinstance(flash, str) else ""
    )


def typed_form(form: FormData) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        typed[key] = values if key in ("consulted", "told") else (values[-1] if values else "")
    return typed


@router.post("/escalations/{escalation_id}/{kind}")
async def act(request: Request, escalation_id: str, kind: str) -> Response:
    person = person_of(request)
    if person is None:
        return sign_in_first()
    if not ESCALATION_ID.match(escalation_id):
        return failure_page(request, person, NotFound(escalation_id[:40]))
    typed = typed_form(await request.form())
    app = application(request)
    who = caller(request, person)
    try:
        reading = await app.read(who, escalation_id)
    except AppError as exc:
        return failure_page(request, person, exc)
    forms = action_forms(reading.view, reading.facts)
    form = forms.get(kind)
    if form is None:
        return failure_page(request, person, NotFound(escalation_id))
    fields = action_fields(form, typed)
    if kind in IRREVERSIBLE and typed.get("confirmed") != "yes":
        return _confirm(request, person, escalation_id, form, typed)
    try:
        result = await app.act(who, escalation_id, kind, fields, form_label(form))
    except BadInput as exc:
        return await _escalation_page(
            request, person, escalation_id, failed=kind, values=typed, errors=form_errors(kind, exc.fields)
        )
    except Refused as exc:
        return await _escalation_page(
            request, person, escalation_id, failed=kind, values=typed, errors={"form": exc.message}
        )
    except AppError as exc:
        return failure_page(request, person, exc, back=f"/escalations/{escalation_id}")
    request.session["flash"] = (
        f"{form.title}: done. The escalation is now {result.status.value.replace('_', ' ')}."
    )
    return RedirectResponse(f"/escalations/{escalation_id}", status_code=303)


def _confirm(
    request: Request, person: Person, escalation_id: str, form: Any, typed: dict[str, Any]
) -> Response:
    rows = []
    hidden: list[tuple[str, str]] = []
    for f in form.fields:
        value = typed.get(f.name, "")
        for v in value if isinstance(value, list) else [value]:
            hidden.append((f.name, v))
        shown = ", ".join(value) if isinstance(value, list) else value
        rows.append({"key": {"text": f.label}, "value": {"text": shown or "Not given"}})
    return page(
        request,
        "confirm.html",
        title=f"Are you sure? {form.title}",
        form=form,
        rows=rows,
        hidden=hidden,
        escalation_id=escalation_id,
        person=person,
    )
