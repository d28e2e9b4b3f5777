"""The supervisors' dashboard (``/dashboard``) and the alert log download (CSV or XLSX); the period report
is ``starter.web.reports``.

Same sign-in and authorisation as every page: a person sees these only if they supervise escalations in
their authority (``app.reporting.access``), and only their teams' when their role is held for teams.
They read the record store's read model (the application's database, ``ESCALATION_DATABASE_URL``) in a
few set-based queries; every view and download is audited (event ``dashboard``, ``alert_log``,
``report``) with its outcome. Database work runs in a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from app.audit import Outcome
from app.errors import BadInput, Refused
from app.identity import Person
from app.reporting.access import Supervision, supervision
from app.reporting.alert_log import alert_log, alert_log_csv, alert_log_xlsx
from app.reporting.dashboard import dashboard
from app.reporting.days import protocol_of
from app.reporting.periods import BadPeriod, Period
from app.reporting.queries import Filters, Scope
from starter.web.pages import application, failure_page, sign_in_first
from starter.web.render import ENV, page, person_of

router = APIRouter()

FILTER_NAMES = ("team", "track", "stage", "status", "category", "flag")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REFUSED = (
    "The dashboard and reports are for supervisors and quality assurance managers. Ask your service "
    "manager if you need them."
)


def supervises(person: Person | None) -> bool:
    """Whether the navigation shows the dashboard and reports to ``person``."""
    if person is None:
        return False
    protocol = protocol_of(person.authority)
    return protocol is not None and supervision(person, protocol) is not None


ENV.globals["supervises"] = supervises


def _supervision(person: Person) -> Supervision:
    protocol = protocol_of(person.authority)
    found = supervision(person, protocol) if protocol is not None else None
    if found is None:
        raise Refused(REFUSED)
    return found


def scope_of(s: Supervision) -> Scope:
    return Scope(authorities=(s.authority,), teams=s.teams)


def audit(request: Request, person: Person, event: str, outcome: Outcome, reason: str = "") -> None:
    application(request).audit.record(
        event,
        outcome,
        via="web",
        person=person,
        reason=reason,
        client=request.client.host if request.client else None,
    )


def _filters(request: Request) -> Filters:
    given = {n: request.query_params.get(n, "").strip()[:200] or None for n in FILTER_NAMES}
    return Filters(**given)


def period_of(request: Request, default: str) -> tuple[Period | None, str, str]:
    """The period asked for, what was typed, and the error naming the field (or '')."""
    typed = request.query_params.get("period", "").strip()[:20] or default
    try:
        return Period.parse(typed), typed, ""
    except BadPeriod:
        return None, typed, "Enter the period as a month (2026-07), a quarter (2026-Q3) or a year (2026)"


def guard(request: Request, event: str) -> tuple[Person, Supervision] | Response:
    person = person_of(request)
    if person is None:
        return sign_in_first()
    try:
        return person, _supervision(person)
    except Refused as exc:
        audit(request, person, event, Outcome.REFUSED, exc.message)
        return failure_page(request, person, exc)


@router.get("/dashboard")
async def dashboard_page(request: Request) -> Response:
    guarded = guard(request, "dashboard")
    if isinstance(guarded, Response):
        return guarded
    person, seen = guarded
    filters = _filters(request)
    try:
        number = max(1, min(int(request.query_params.get("page", "1")), 100_000))
    except ValueError:
        number = 1
    now = datetime.now(UTC)
    app = application(request)
    board = await asyncio.to_thread(
        dashboard, app.audit.engine, scope_of(seen), filters, now, app.people.all(), number
    )
    audit(request, person, "dashboard", Outcome.OK)
    query = "&".join(f"{n}={v}" for n, v in filters.model_dump().items() if v)
    return page(
        request,
        "dashboard.html",
        title="Dashboard",
        nav="dashboard",
        board=board,
        filters=filters,
        filter_query=query,
        log_period=str(now.year),
        teams=sorted(seen.teams) if seen.teams is not None else None,
        person=person,
    )


@router.get("/dashboard/alert-log.{extension}")
async def alert_log_download(request: Request, extension: str) -> Response:
    guarded = guard(request, "alert_log")
    if isinstance(guarded, Response):
        return guarded
    person, seen = guarded
    if extension not in ("csv", "xlsx"):
        return failure_page(
            request, person, BadInput({"format": "The alert log downloads as .csv or .xlsx."})
        )
    now = datetime.now(UTC)
    period, typed, error = period_of(request, str(now.year))
    if period is None:
        audit(request, person, "alert_log", Outcome.BAD_INPUT, error)
        return failure_page(
            request, person, BadInput({"period": f"Period {typed!r}: {error}."}), back="/dashboard"
        )
    try:
        filters = _filters(request)
    except ValidationError:
        filters = Filters()
    app = application(request)
    log = await asyncio.to_thread(
        alert_log, app.audit.engine, scope_of(seen), period, app.people.all(), now.date(), filters
    )
    audit(request, person, "alert_log", Outcome.OK, f"{period.key} {extension}")
    name = f"alert-log-{seen.authority}-{period.key}.{extension}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    if extension == "csv":
        return Response(alert_log_csv(log), media_type="text/csv; charset=utf-8", headers=headers)
    return Response(alert_log_xlsx(log), media_type=XLSX, headers=headers)
