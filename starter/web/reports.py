"""The period report page (``/reports``): a month, quarter or year of the supervisor's authority (their
teams when they supervise teams), as HTML with accessible charts, or downloaded as CSV or PDF. Same
authorisation and audit as the dashboard (``starter.web.dashboard``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.audit import Outcome
from app.reporting.figures import now_period_default, report_for
from app.reporting.render import report_body, report_csv, report_pdf
from starter.web.dashboard import audit, guard, period_of, scope_of
from starter.web.pages import application
from starter.web.render import page

router = APIRouter()


@router.get("/reports")
async def report_page(request: Request) -> Response:
    guarded = guard(request, "report")
    if isinstance(guarded, Response):
        return guarded
    person, seen = guarded
    period, typed, error = period_of(request, now_period_default(datetime.now(UTC)))
    fmt = request.query_params.get("format", "html")
    if period is None:
        audit(request, person, "report", Outcome.BAD_INPUT, error)
        return page(
            request,
            "report.html",
            title="Reports",
            nav="reports",
            typed=typed,
            errors={"period": error},
            report=None,
            body="",
            person=person,
            status_code=400,
        )
    engine = application(request).audit.engine
    report = await asyncio.to_thread(report_for, engine, scope_of(seen), period)
    audit(request, person, "report", Outcome.OK, f"{period.key} {fmt}")
    name = f"report-{seen.authority}-{period.key}"
    if fmt == "csv":
        return Response(
            report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}.csv"',
                "Cache-Control": "no-store",
            },
        )
    if fmt == "pdf":
        content = await asyncio.to_thread(report_pdf, report)
        return Response(
            content,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="{name}.pdf"',
                "Cache-Control": "no-store",
            },
        )
    return page(
        request,
        "report.html",
        title="Reports",
        nav="reports",
        typed=typed,
        errors={},
        report=report,
        body=report_body(report),
        person=person,
    )
