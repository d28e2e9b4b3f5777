"""The web app: ``create_app(application, settings)`` gives the ASGI app (FastAPI) of the pages, the JSON
API under ``/api/`` (OpenAPI at ``/api/openapi.json``), sign-in, and GOV.UK Frontend's assets.

Security by default: signed, HTTP-only, SameSite=Lax session cookies (Secure unless ``escalate up``
serves plain HTTP on 127.0.0.1); a CSRF token checked on every form and unsafe API request; a content
security policy with a per-request nonce; templates autoescaped; sign-in rate-limited per client address;
every sign-in and action audited by the application layer.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from app.errors import AppError
from app.service import Application
from starter.web import (
    api,
    assets,
    auth,
    collective,
    dashboard,
    diagram,
    good_practice,
    pages,
    protocol,
    raising,
    reports,
)
from starter.web.render import page, person_of
from starter.web.security import CSRF_FIELD, RateLimit, SecurityHeaders, csrf_ok
from starter.web.settings import WebSettings

SESSION_COOKIE = "escalations_session"
SESSION_HOURS = 8


async def form_csrf(request: Request) -> None:
    """Every form posted to a page carries the session's CSRF token."""
    if request.method == "POST":
        given = (await request.form()).get(CSRF_FIELD)
        if not csrf_ok(request, given):
            raise HTTPException(403, "csrf")


def create_app(application: Application, settings: WebSettings) -> FastAPI:
    web = FastAPI(
        title="Escalations",
        description="Escalations for children's services: the JSON API (same authorisation as the pages).",
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    web.state.application = application
    web.state.settings = settings
    web.state.oauth = auth.oauth_for(settings)
    web.state.sign_in_limit = RateLimit(settings.sign_in_per_minute)

    web.include_router(auth.router, dependencies=[Depends(form_csrf)])
    web.include_router(pages.router, dependencies=[Depends(form_csrf)])
    web.include_router(raising.router, dependencies=[Depends(form_csrf)])
    web.include_router(good_practice.router, dependencies=[Depends(form_csrf)])
    web.include_router(collective.router, dependencies=[Depends(form_csrf)])
    web.include_router(protocol.router)
    web.include_router(diagram.router)
    web.include_router(dashboard.router)
    web.include_router(reports.router)
    web.include_router(api.router)
    web.include_router(protocol.api_router)
    web.include_router(good_practice.api_router)
    web.include_router(collective.api_router)
    web.mount("/static", StaticFiles(directory=str(pages_static())), name="static")

    @web.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        """The process serves (for a container's health check); touches neither Temporal nor the database."""
        return Response("ok\n", media_type="text/plain")

    @web.get("/assets/govuk-frontend.css", include_in_schema=False)
    async def stylesheet() -> Response:
        return Response(assets.stylesheet(), media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    @web.get("/assets/govuk-frontend.js", include_in_schema=False)
    async def script() -> Response:
        return Response(
            assets.script(), media_type="text/javascript", headers={"Cache-Control": "max-age=3600"}
        )

    @web.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        if request.url.path.startswith("/api/"):
            return api.error_response(exc)
        return pages.failure_page(request, person_of(request), exc)

    @web.exception_handler(StarletteHTTPException)  # also the router's own 404 and 405: pages, not JSON
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        csrf = exc.detail == "csrf"
        if request.url.path.startswith("/api/"):
            message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
            return JSONResponse({"error": "Refused", "message": message}, status_code=exc.status_code)
        title, message = (
            (
                "Your form could not be sent",
                "The form had expired or did not come from this service. Go back, reload the page "
                "and try again.",
            )
            if csrf
            else ("Page not found", "There is no such page.")
            if exc.status_code == 404
            else ("There is a problem", "The request could not be handled.")
        )
        return page(
            request,
            "error.html",
            title=title,
            message=message,
            person=person_of(request),
            status_code=exc.status_code,
        )

    @web.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse(
            {
                "error": "BadInput",
                "message": "The request body must be a JSON object of the action's fields.",
            },
            status_code=422,
        )

    web.add_middleware(SecurityHeaders)
    web.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_HOURS * 3600,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    return web


def pages_static() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parent / "static")
