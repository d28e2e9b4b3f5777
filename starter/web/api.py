"""The JSON API under ``/api/``: what the pages do, with the same authorisation (the application layer's).

Signed in with the session cookie; every unsafe request also carries the session's CSRF token in the
``X-CSRF-Token`` header (``GET /api/me`` gives it). Or, for scripts, ``Authorization: Bearer <token>``: a
token configured for a declared service account (``app.service_accounts``; no cookie, so no CSRF token),
compared in constant time, each request audited as a sign-in, and the account limited to what it is
declared for. Refusals are 4xx with the rule's reason: 401 not
signed in, 403 refused (``message``), 404 not found (the same for an escalation the person may not see),
422 bad input (``fields``: what is wrong with each), 503 unavailable. Nothing internal is ever returned.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from app.errors import AppError, BadInput, NotFound, NotSignedIn, Refused, Unavailable
from app.identity import Person
from app.service import Caller
from app.service_accounts import ServiceAccountError, account_for_token
from schemas.escalation import ActionResult, EscalationView
from starter.web.pages import ESCALATION_ID, application
from starter.web.pages import caller as page_caller
from starter.web.render import person_of
from starter.web.security import CSRF_HEADER, csrf_ok, csrf_token

STATUS = {NotSignedIn: 401, Refused: 403, NotFound: 404, BadInput: 422, Unavailable: 503}


def error_response(exc: AppError) -> JSONResponse:
    body: dict[str, Any] = {"error": type(exc).__name__, "message": exc.message}
    if isinstance(exc, BadInput):
        body["fields"] = exc.fields
    challenge = {"WWW-Authenticate": "Bearer"} if isinstance(exc, NotSignedIn) else None
    return JSONResponse(body, status_code=STATUS.get(type(exc), 400), headers=challenge)


BEARER = "bearer "


def _bearer(request: Request, header: str) -> Person:
    """The declared service account a bearer token is for (audited either way); ``NotSignedIn`` else."""
    app = application(request)
    client = request.client.host if request.client else None
    try:
        account = account_for_token(header[len(BEARER) :].strip())
    except (NotSignedIn, ServiceAccountError) as exc:
        app.sign_in_refused(f"bearer token: {exc}", "api:service", client)
        raise NotSignedIn("The bearer token is not one this service knows.") from None
    person = account.person()
    request.state.api_caller = Caller(person=person, via="api:service", client=client, may=account.may)
    app.signed_in(person, "api:service", client, "bearer token")
    return person


def signed_in(request: Request) -> Person:
    header = request.headers.get("authorization", "")
    if header[: len(BEARER)].lower() == BEARER:
        return _bearer(request, header)
    person = person_of(request)
    if person is None:
        raise NotSignedIn("Sign in first.")
    if request.method not in ("GET", "HEAD", "OPTIONS") and not csrf_ok(
        request, request.headers.get(CSRF_HEADER)
    ):
        raise HTTPException(403, "The CSRF token is missing or wrong: send X-CSRF-Token from GET /api/me.")
    return person


SignedIn = Annotated[Person, Depends(signed_in)]


def caller(request: Request, person: Person) -> Caller:
    """Who the application layer sees: the token's service account, or the signed-in person."""
    found: Caller | None = getattr(request.state, "api_caller", None)
    return found if found is not None else page_caller(request, person)


router = APIRouter(prefix="/api", tags=["escalations"])


@router.get("/me")
async def me(request: Request, person: SignedIn) -> dict[str, Any]:
    """Who you are, your roles from the directory, and the CSRF token for unsafe requests."""
    return {
        "authority": person.authority,
        "id": person.id,
        "name": person.name,
        "roles": [{"role": h.role, "team": h.team} for h in person.holdings],
        "csrf_token": None if getattr(request.state, "api_caller", None) else csrf_token(request),
    }


@router.get("/escalations")
async def escalations(request: Request, person: SignedIn, waiting: bool = False) -> dict[str, Any]:
    """The escalations you may see (``waiting=true``: those waiting for you), soonest deadline first."""
    app = application(request)
    who = caller(request, person)
    listing = await (app.waiting_for(who) if waiting else app.escalations(who))
    return {
        "escalations": [
            {
                **item.row.model_dump(mode="json"),
                "relation": item.relation.value,
                "waiting_for_you": item.waiting,
            }
            for item in listing.items
        ],
        "unreadable": listing.unreadable,
    }


@router.get("/escalations/{escalation_id}")
async def escalation(request: Request, escalation_id: str, person: SignedIn) -> dict[str, Any]:
    """One escalation's state and the actions you may take now."""
    if not ESCALATION_ID.match(escalation_id):
        raise NotFound(escalation_id[:40])
    reading = await application(request).read(caller(request, person), escalation_id)
    view: EscalationView = reading.view
    return {
        "escalation": view.model_dump(mode="json", exclude={"refusals", "problems"}),
        "relation": reading.relation.value,
        "team": reading.facts.team,
        "actions": sorted(reading.allowed),
    }


@router.post("/escalations", status_code=201)
async def raise_concern(
    request: Request, fields: Annotated[dict[str, Any], Body()], person: SignedIn
) -> dict[str, str]:
    """Raise a concern (fields as the raise form's; ``request_id`` makes a retry safe)."""
    escalation_id = await application(request).raise_concern(caller(request, person), fields)
    return {"escalation_id": escalation_id}


@router.post("/escalations/{escalation_id}/actions/{kind}")
async def act(
    request: Request,
    escalation_id: str,
    kind: str,
    fields: Annotated[dict[str, Any], Body(default_factory=dict)],
    person: SignedIn,
) -> ActionResult:
    """Take an action (its fields as in ``schemas.escalation``, without ``actor``: you act as yourself)."""
    if not ESCALATION_ID.match(escalation_id):
        raise NotFound(escalation_id[:40])
    return await application(request).act(caller(request, person), escalation_id, kind, fields)
