"""Raising a concern in pages: the form the protocol needs (the child's status and severity, a bypass, the
consultation before a gated start, the holders of external roles, a shorter timescale), then a check of the
answers; errors name the form's fields and keep what was typed. The rules are the application layer's."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from app.errors import AppError, BadInput, Refused
from app.identity import Person
from app.inputs import RaiseRequest, sentence
from app.service import Application, TimescaleRefused
from schemas.escalation import ExternalContact
from schemas.protocol import Protocol, Track
from starter.web.forms import DATE_HINT, Field, label
from starter.web.pages import application, caller, failure_page, sign_in_first, typed_form
from starter.web.render import page, person_of

router = APIRouter()


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
    role = protocol.role_name
    fields = [
        Field("track", "Kind of concern", "radios", choices=tuple((t.key, t.name) for t in chosen)),
        Field("category", "Category", "select", choices=categories),
        Field(
            "child_ref",
            "Child's case number",
            "text",
            f"The case number from the case system, like {protocol.child_ref.example}. "
            "Never the child's name.",
        ),
    ]
    if protocol.child_statuses:
        fields.append(
            Field(
                "child_status",
                label("child_status"),
                "radios",
                choices=tuple(protocol.child_statuses.items()),
            )
        )
    if protocol.severities:
        fields.append(
            Field(
                "severity",
                label("severity"),
                "radios",
                "Some stages are entry points for a severity",
                optional=True,
                choices=tuple(protocol.severities.items()),
            )
        )
    fields += [
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
    discuss = protocol.bypass.prior_discussion_with
    if discuss:
        fields.append(
            Field(
                "discussed_with",
                label("discussed_with"),
                "select",
                "Only if you start at a later stage",
                optional=True,
                choices=tuple((r, role(r)) for r in discuss),
            )
        )
    gate_roles = sorted(
        {r for t in chosen for s in t.stages if s.entry_gate for r in s.entry_gate.with_roles}
    )
    if gate_roles:
        hint = "Only if the stage the concern starts at needs a consultation or agreement first"
        fields += [
            Field(
                "consulted_with",
                label("consulted_with"),
                "select",
                hint,
                optional=True,
                choices=tuple((r, role(r)) for r in gate_roles),
            ),
            Field("consulted_on", label("consulted_on"), "date", DATE_HINT, optional=True),
            Field("consultation", label("consultation"), optional=True),
            Field("consultation_agreed", label("consultation_agreed"), "checkbox"),
        ]
    for r in external_roles(protocol, chosen):
        fields += [
            Field(
                f"contact_{r}_name",
                f"{role(r)}: name",
                "text",
                f"Only for a track that goes to the {role(r)}, who is not in the staff directory",
                optional=True,
            ),
            Field(f"contact_{r}_email", f"{role(r)}: e-mail address", "text", optional=True),
            Field(f"contact_{r}_organisation", f"{role(r)}: organisation", "text", optional=True),
        ]
    if protocol.timescales.officer_may_shorten:
        fields += [
            Field(
                "timescale_working_days",
                label("timescale_working_days"),
                "number",
                "Only if the child's needs call for an answer sooner than the protocol's time",
                optional=True,
            ),
            Field("timescale_reason", label("timescale_reason"), optional=True),
        ]
    if protocol.collective_alerts is not None:
        fields.append(
            Field(
                "part_of",
                label("part_of"),
                "text",
                "Only if this child is one of a collective alert's: its id, like "
                f"{protocol.key}-COLLECTIVE-0123456789",
                optional=True,
            )
        )
    return fields


def external_roles(protocol: Protocol, tracks: list[Track]) -> list[str]:
    """The protocol's external roles that a stage of these tracks addresses."""
    addressed = {
        r
        for t in tracks
        for s in t.stages
        for r in [*s.to, *s.cc, *(x for rt in s.routes for x in [*rt.to, *rt.cc])]
    }
    return [r for r in protocol.external_roles if r in addressed]


def _contacts(protocol: Protocol, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The external contacts typed on the raise form, checked field by field (errors name the form's
    fields); a role with nothing typed is left out."""
    contacts: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for r in protocol.external_roles:
        typed = {
            k: str(values.get(f"contact_{r}_{k}", "")).strip() for k in ("name", "email", "organisation")
        }
        if not any(typed.values()):
            continue
        given = {k: v for k, v in typed.items() if v}
        try:
            contacts.append(ExternalContact(role=r, **given).model_dump())
        except ValidationError as exc:
            for error in exc.errors():
                name = str(error["loc"][0]) if error["loc"] else "name"
                field_name = f"contact_{r}_{name}"
                errors.setdefault(field_name, sentence(error, _contact_label(protocol, r, name)))
    if errors:
        raise BadInput(errors)
    return contacts


def _contact_label(protocol: Protocol, r: str, part: str) -> str:
    words = {"name": "name", "email": "e-mail address", "organisation": "organisation"}
    return f"{protocol.role_name(r)}: {words.get(part, part)}"


def _raise_values(typed: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in typed.items() if k not in ("csrf_token", "step")}
    values.setdefault("request_id", str(uuid.uuid4()))
    return values


def _raise_input(protocol: Protocol, values: dict[str, Any], *, with_contacts: bool = True) -> dict[str, Any]:
    fields = {k: v for k, v in values.items() if k in RaiseRequest.model_fields}
    fields["emergency"] = values.get("emergency") == "yes"
    fields["consultation_agreed"] = values.get("consultation_agreed") == "yes"
    fields["external_contacts"] = _contacts(protocol, values) if with_contacts else []
    return fields


@router.get("/raise")
async def raise_form(request: Request) -> Response:
    person = person_of(request)
    if person is None:
        return sign_in_first()
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
        return sign_in_first()
    typed = typed_form(await request.form())
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
        try:
            given = _raise_input(app.protocol_of(person), values)
        except BadInput as contacts:  # say what else is wrong too, in one go
            rest = {**_raise_input(app.protocol_of(person), values, with_contacts=False)}
            try:
                await app.raise_concern(caller(request, person), rest, label, dry_run=True)
            except BadInput as exc:
                raise BadInput({**exc.fields, **contacts.fields}) from None
            except AppError:
                pass
            raise
        if step == "confirm":
            escalation_id = await app.raise_concern(caller(request, person), given, label)
            request.session["flash"] = f"The concern was raised as escalation {escalation_id}."
            return RedirectResponse(f"/escalations/{escalation_id}", status_code=303)
        await app.raise_concern(caller(request, person), given, label, dry_run=True)
    except BadInput as exc:
        return form_again(exc.fields)
    except TimescaleRefused as exc:
        request.session["flash"] = exc.message
        return RedirectResponse(f"/escalations/{exc.escalation_id}", status_code=303)
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
