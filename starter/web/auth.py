"""Signing in and out: the development sign-in (the directory's sample people; refused in production) and
OpenID Connect (authlib) when configured, mapping the token's claims to a directory person."""

from __future__ import annotations

from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.errors import NotSignedIn
from app.identity import Person
from starter.web.pages import application
from starter.web.render import page, person_of
from starter.web.settings import WebSettings

router = APIRouter()
PROVIDER = "council"


def oauth_for(settings: WebSettings) -> OAuth | None:
    if settings.oidc is None:
        return None
    oauth = OAuth()
    oauth.register(
        PROVIDER,
        client_id=settings.oidc.client_id,
        client_secret=settings.oidc.client_secret,
        server_metadata_url=settings.oidc.metadata_url,
        client_kwargs={"scope": "openid email profile"},
    )
    return oauth


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _too_many(request: Request) -> Response | None:
    if request.app.state.sign_in_limit.allow(_client(request)):
        return None
    application(request).sign_in_refused("too many attempts", "web", _client(request))
    return page(
        request,
        "error.html",
        title="Too many attempts to sign in",
        message="Wait a minute, then try again.",
        status_code=429,
    )


def _people(request: Request) -> list[dict[str, Any]]:
    people = application(request).people.all()
    return [
        {
            "key": p.key,
            "name": p.name,
            "id": p.id,
            "authority": p.authority,
            "roles": ", ".join(f"{h.role}" + (f" ({h.team})" if h.team else "") for h in p.holdings)
            or "no role",
        }
        for p in people
    ]


def _sign_in_page(request: Request, errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    settings: WebSettings = request.app.state.settings
    return page(
        request,
        "sign_in.html",
        title="Sign in",
        people=_people(request) if settings.development_sign_in else [],
        oidc=request.app.state.oauth is not None,
        errors=errors or {},
        chosen="",
        error_prefix="",
        fields=[type("F", (), {"name": "person"})()],
        status_code=status_code,
    )


def _start_session(request: Request, person: Person, how: str) -> Response:
    request.session.clear()  # a new session on sign-in: nothing carried over from before
    request.session["person"] = person.key
    application(request).signed_in(person, "web", _client(request), how)
    return RedirectResponse("/waiting", status_code=303)


@router.get("/sign-in")
async def sign_in(request: Request) -> Response:
    return _sign_in_page(request)


@router.post("/sign-in/development")
async def sign_in_development(request: Request) -> Response:
    settings: WebSettings = request.app.state.settings
    if not settings.development_sign_in:
        application(request).sign_in_refused("development sign-in in production", "web", _client(request))
        return page(
            request, "error.html", title="Page not found", message="There is no such page.", status_code=404
        )
    limited = _too_many(request)
    if limited:
        return limited
    key = (await request.form()).get("person")
    person = application(request).people.get(key) if isinstance(key, str) else None
    if person is None:
        application(request).sign_in_refused("no such person", "web", _client(request))
        return _sign_in_page(request, {"person": "Select who you are"}, status_code=400)
    return _start_session(request, person, "development")


@router.get("/sign-in/oidc")
async def sign_in_oidc(request: Request) -> Response:
    oauth: OAuth | None = request.app.state.oauth
    if oauth is None:
        return page(
            request, "error.html", title="Page not found", message="There is no such page.", status_code=404
        )
    limited = _too_many(request)
    if limited:
        return limited
    client = oauth.create_client(PROVIDER)
    response: Response = await client.authorize_redirect(request, str(request.url_for("oidc_callback")))
    return response


@router.get("/auth/callback", name="oidc_callback")
async def oidc_callback(request: Request) -> Response:
    oauth: OAuth | None = request.app.state.oauth
    if oauth is None:
        return page(
            request, "error.html", title="Page not found", message="There is no such page.", status_code=404
        )
    try:
        token = await oauth.create_client(PROVIDER).authorize_access_token(request)
        claims = dict(token.get("userinfo") or {})
        person = application(request).people.person_for_claims(claims)
    except OAuthError:
        application(request).sign_in_refused("identity provider refused", "web", _client(request))
        return page(
            request,
            "error.html",
            title="You could not be signed in",
            message="Sign-in did not complete. Try again.",
            back="/sign-in",
            status_code=401,
        )
    except NotSignedIn as exc:
        application(request).sign_in_refused(exc.message, "web", _client(request))
        return page(
            request, "error.html", title="You could not be signed in", message=exc.message, status_code=403
        )
    return _start_session(request, person, "openid connect")


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    person = person_of(request)
    if person is not None:
        application(request).signed_out(person, "web", _client(request))
    request.session.clear()
    return RedirectResponse("/sign-in", status_code=303)
