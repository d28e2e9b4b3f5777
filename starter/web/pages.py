"""The pages: waiting for me, my escalations, an escalation with the actions this person may take now,
and raising a concern with a check of the answers. Each calls the application layer and presents."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from app.errors import AppError, BadInput, NotFound, NotSignedIn, Refused, Unavailable
from app.identity import Person
from app.inputs import RaiseRequest
from app.service import Application, Caller
from starter.web import views
from starter.web.forms import IRREVERSIBLE, Field, action_fields, action_forms, label
from starter.web.render import page, person_of

router = APIRouter()

ESCALATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,159}$")


def application(request: Request) -> Application:
    app: Application = request.app.state.application
    return app


def caller(request: Request, person: Person) -> Caller:
    return Caller(person=person, via="web", client=request.client.host if request.client else None)


def _sign_in_first() -> Response:
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
        return _sign_in_first()
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
        return _sign_in_first()
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
    return page(
        request,
        "escalation.html",
        title=f"Escalation {escalation_id}",
        view=reading.view,
        status=words,
        status_class=css,
        summary=views.summary(reading),
        concern=views.concern(reading.view),
        timeline=views.timeline(reading),
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
        return _sign_in_first()
    flash = request.session.pop("flash", "")
    return await _escalation_page(
        request, person, escalation_id, flash=flash if isinstance(flash, str) else ""
    )


def _typed(form: FormData) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getlist(key) if isinstance(v, str)]
        typed[key] = values if key == "consulted" else (values[-1] if values else "")
    return typed


@router.post("/escalations/{escalation_id}/{kind}")
async def act(request: Request, escalation_id: str, kind: str) -> Response:
    person = person_of(request)
    if person is None:
        return _sign_in_first()
    if not ESCALATION_ID.match(escalation_id):
        return failure_page(request, person, NotFound(escalation_id[:40]))
    typed = _typed(await request.form())
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
        result = await app.act(who, escalation_id, kind, fields, label)
    except BadInput as exc:
        return await _escalation_page(
            request, person, escalation_id, failed=kind, values=typed, errors=exc.fields
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


# --- raising ------------------------------------------------------------------------------------------


def raise_fields(app: Application, person: Person) -> list[Field]:
    """The raise form for this person: their tracks, its categories, their teams, the stages."""
    tracks = app.raising_roles(person)
    if not tracks:
        return []
    protocol = app.protocol_of(person)
    chosen = [protocol.track(k) for k in tracks]
    roles = {r for rs in tracks.values() for r in rs}
    teams = sorted({h.team for h in person.holdings if h.role in roles and h.team})
    if any(h.team is None for h in person.holdings if h.role in roles):
        teams = sorted(
            {
                t
                for p in app.people.all()
                if p.authority == person.authority
                for h in p.holdings
                if (t := h.team)
            }
        )
    categories = tuple(dict.fromkeys((c, c) for t in chosen for c in t.categories))
    stages = tuple(dict.fromkeys((s.key, s.name) for t in chosen for s in t.stages))
    return [
        Field("track", "Kind of concern", "radios", choices=tuple((t.key, t.name) for t in chosen)),
        Field("category", "Category", "select", choices=categories),
        Field(
            "child_ref",
            "Child's case number",
            "text",
            f"The case number from the case system, like {protocol.child_ref.example}. "
            "Never the child's name.",
        ),
        Field("team", "Team", "select", choices=tuple((t, t) for t in teams)),
        Field("summary", "Summary of the concern"),
        Field("impact_on_child", "Impact on the child"),
        Field("requested_action", "What you are asking for"),
        Field("child_views", "The child's views", optional=True),
        Field("parents_views", "The parents' or carers' views", optional=True),
        Field(
            "start_at_stage",
            "Stage to start at",
            "select",
            "Start at the first stage unless you need to bypass",
            optional=True,
            choices=stages,
        ),
        Field(
            "bypass_reason",
            "Why you are starting at a later stage",
            optional=True,
            hint="Only if you start at a later stage",
        ),
        Field("emergency", "This is an emergency", "checkbox"),
    ]


def _raise_values(typed: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in typed.items() if k not in ("csrf_token", "step")}
    values.setdefault("request_id", str(uuid.uuid4()))
    return values


def _raise_input(values: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in values.items() if k in RaiseRequest.model_fields}
    fields["emergency"] = values.get("emergency") == "yes"
    return fields


@router.get("/raise")
async def raise_form(request: Request) -> Response:
    person = person_of(request)
    if person is None:
        return _sign_in_first()
    fields = raise_fields(application(request), person)
    return page(
        request,
        "raise.html",
        title="Raise a concern",
        nav="raise",
        fields=fields,
        values=_raise_values({}),
        person=person,
    )


@router.post("/raise")
async def raise_submit(request: Request) -> Response:
    person = person_of(request)
    if person is None:
        return _sign_in_first()
    typed = _typed(await request.form())
    values = _raise_values(typed)
    app = application(request)
    fields = raise_fields(app, person)
    step = typed.get("step", "")

    def form_again(errors: dict[str, str]) -> Response:
        return page(
            request,
            "raise.html",
            title="Raise a concern",
            nav="raise",
            fields=fields,
            values=values,
            errors=errors,
            person=person,
            status_code=400 if errors else 200,
        )

    if step == "change":
        return form_again({})
    try:
        if step == "confirm":
            escalation_id = await app.raise_concern(caller(request, person), _raise_input(values), label)
            request.session["flash"] = f"The concern was raised as escalation {escalation_id}."
            return RedirectResponse(f"/escalations/{escalation_id}", status_code=303)
        await app.raise_concern(caller(request, person), _raise_input(values), label, dry_run=True)
    except BadInput as exc:
        return form_again(exc.fields)
    except Refused as exc:
        return form_again({"form": exc.message})
    except AppError as exc:
        return failure_page(request, person, exc, back="/raise")
    names = dict((f.name, f) for f in fields)
    rows = []
    for name, f in names.items():
        value = values.get(name, "")
        if f.widget == "checkbox":
            value = "Yes" if value == "yes" else "No"
        elif f.choices:
            value = dict(f.choices).get(value, value)
        if value or not f.optional:
            rows.append({"key": {"text": f.label}, "value": {"text": value or "Not given"}})
    hidden = [(k, v) for k, v in values.items() if isinstance(v, str)]
    return page(
        request,
        "check.html",
        title="Check your answers",
        nav="raise",
        rows=rows,
        hidden=hidden,
        person=person,
    )
