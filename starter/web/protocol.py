"""An authority's protocol in words: its ladders stage by stage (who receives, who is copied, timescales,
gates, who escalates and judges) and its rules (total limit, bypass, CAFCASS, extensions, timescales).

``/protocol`` shows the signed-in person's own authority; ``/protocols/{key}`` any authority's (protocols
are the councils' published procedures, not case data). The JSON API gives the validated protocol at
``/api/protocols/{key}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from app.errors import NotSignedIn
from app.identity import Person
from protocols import ProtocolError, available_protocols, load_protocol
from schemas.protocol import RAISING_OFFICER, Protocol, Stage, Track
from starter.web.render import page, person_of

router = APIRouter()
api_router = APIRouter(prefix="/api", tags=["protocols"])

KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


@dataclass
class StageView:
    number: int
    key: str
    heading: str
    name: str
    tags: list[str]
    rows: list[dict[str, Any]]
    note: str


@dataclass
class TrackView:
    key: str
    name: str
    raised_by: str
    categories: list[str]
    stages: list[StageView] = field(default_factory=list)


def _row(key: str, value: str) -> dict[str, Any]:
    return {"key": {"text": key}, "value": {"text": value}}


def _names(protocol: Protocol, roles: list[str], none: str = "Nobody") -> str:
    return protocol.role_names(roles) if roles else none


def _who(protocol: Protocol, role: str) -> str:
    return "The raising officer" if role == RAISING_OFFICER else protocol.role_name(role)


def _days(days: int | None) -> str:
    if days is None:
        return "No time is set"
    return f"{days} working day{'s' if days != 1 else ''}"


def stage_view(protocol: Protocol, number: int, stage: Stage) -> StageView:
    rows = [
        _row("Receives it and answers", _names(protocol, stage.to)),
        _row("Copied in", _names(protocol, stage.cc)),
    ]
    if stage.told_in_advance:
        rows.append(_row("Told before it is sent", _names(protocol, stage.told_in_advance)))
    for route in stage.routes:
        area = protocol.service_areas.get(route.service_area, route.service_area)
        to = _names(protocol, route.to)
        cc = f", copied to {_names(protocol, route.cc)}" if route.cc else ""
        rows.append(_row(f"Concerns about {area}", f"Go to {to}{cc}"))
    rows += [
        _row("Time to answer", _days(stage.response_working_days)),
        _row("Escalated into this stage by", ", ".join(_who(protocol, r) for r in stage.escalated_by)),
        _row("Decides whether an answer resolves it", _who(protocol, stage.judged_by)),
    ]
    if stage.entry_gate:
        gate = stage.entry_gate
        what = "Agreement of" if gate.kind.value == "agreement" else "A consultation with"
        rows.append(
            _row(
                "Needed before it starts",
                f"{what} {protocol.role_names(gate.with_roles).replace(', ', ' or ')}"
                + (f". {gate.note}" if gate.note else ""),
            )
        )
    if stage.meeting:
        rows.append(_row("Meeting", "Managed through a meeting, whose outcome is recorded"))
    if stage.exceptional:
        rows.append(_row("When", "Only in exceptional circumstances"))
    tags = ["Formal" if stage.formal else "Informal"]
    if stage.exceptional:
        tags.append("Exceptional")
    label = stage.label or stage.name
    heading = stage.name if stage.name.startswith(label) else f"{label}: {stage.name}"
    return StageView(number, stage.key, heading, stage.name, tags, rows, stage.note)


def track_view(protocol: Protocol, track: Track) -> TrackView:
    view = TrackView(
        key=track.key,
        name=track.name,
        raised_by=_names(protocol, track.officer_roles),
        categories=list(track.categories),
    )
    view.stages = [stage_view(protocol, i, s) for i, s in enumerate(track.stages, start=1)]
    return view


def _reminder(lead: int) -> str:
    if lead == 0:
        return "No reminders"
    if lead == 1:
        return "At 09:00 on the last working day to answer"
    return f"At 09:00, {lead - 1} working day{'s' if lead != 2 else ''} before the last working day to answer"


def _yes(value: bool) -> str:
    return "Yes" if value else "No"


def rules(protocol: Protocol) -> list[dict[str, Any]]:
    """The authority-wide rules as summary list rows."""
    bypass = protocol.bypass
    if bypass.allowed:
        before = (
            f"Yes, after discussing it with {protocol.role_names(bypass.prior_discussion_with)}"
            + (" (not needed in an emergency)" if bypass.emergency_exempt else "")
            if bypass.prior_discussion_with
            else "Yes"
        )
        bypass_text = before + (f". {bypass.condition}" if bypass.condition else "")
    else:
        bypass_text = "No: every stage is followed in order"
    cafcass = protocol.cafcass
    cafcass_text = f"Referred by {_names(protocol, cafcass.officer_roles)}"
    if cafcass.consult:
        cafcass_text += f", after consulting {protocol.role_names(cafcass.consult)}"
    if cafcass.inform:
        cafcass_text += f"; they then inform {protocol.role_names(cafcass.inform)}"
    if cafcass.note:
        cafcass_text += f". {cafcass.note}"
    extensions = f"Approved by {_who(protocol, protocol.extensions.approved_by).lower()}"
    if protocol.extensions.note:
        extensions += f". {protocol.extensions.note}"
    rows = [
        _row("Total time limit of the formal process", _days(protocol.total_formal_working_days)),
        _row("Told when the total time limit passes", _names(protocol, protocol.breach_notify)),
        _row("Reminder to answer", _reminder(protocol.reminder_lead_working_days)),
        _row("Bypassing stages", bypass_text),
        _row("Referral to CAFCASS", cafcass_text),
        _row("More time", extensions),
        _row("The officer may set a shorter timescale", _yes(protocol.timescales.officer_may_shorten)),
        _row(
            "The informal stage may run to a timescale agreed with the officer",
            _yes(protocol.timescales.informal_may_agree_longer),
        ),
    ]
    if protocol.closure_days:
        rows.append(
            _row(
                "Closure days (not working days)", ", ".join(f"{d:%-d %B %Y}" for d in protocol.closure_days)
            )
        )
    return rows


def protocol_named(key: str) -> Protocol | None:
    """The protocol ``key`` names, or None (an ill-formed or unknown key, or a file that does not load)."""
    if not KEY.match(key) or key not in available_protocols():
        return None
    try:
        return load_protocol(key)
    except ProtocolError:
        return None


def no_such_protocol(request: Request, person: Person) -> Response:
    return page(
        request,
        "error.html",
        title="Page not found",
        message="There is no such protocol.",
        person=person,
        status_code=404,
    )


@router.get("/protocol")
async def own_protocol(request: Request) -> Response:
    person = person_of(request)
    if person is None:
        return RedirectResponse("/sign-in", status_code=303)
    return RedirectResponse(f"/protocols/{person.authority}", status_code=303)


@router.get("/protocols/{key}")
async def protocol_page(request: Request, key: str) -> Response:
    person = person_of(request)
    if person is None:
        return RedirectResponse("/sign-in", status_code=303)
    protocol = protocol_named(key)
    if protocol is None:
        return no_such_protocol(request, person)
    return page(
        request,
        "protocol.html",
        title=f"{protocol.authority}: escalation protocol",
        nav="protocol" if key == person.authority else "",
        protocol=protocol,
        tracks=[track_view(protocol, t) for t in protocol.tracks],
        rules=rules(protocol),
        person=person,
    )


@api_router.get("/protocols/{key}", response_model=None)
async def protocol_json(request: Request, key: str) -> dict[str, Any] | JSONResponse:
    """An authority's validated protocol (every field, as ``escalate protocol show KEY --json``)."""
    if person_of(request) is None:
        raise NotSignedIn("Sign in first.")
    protocol = protocol_named(key)
    if protocol is None:
        return JSONResponse({"error": "NotFound", "message": "There is no such protocol."}, status_code=404)
    return protocol.model_dump(mode="json")
