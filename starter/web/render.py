"""Rendering pages: the jinja2 environment (autoescaped, GOV.UK Frontend's macros from
``govuk-frontend-jinja``), and what every page needs (the person, the CSRF token, the error summary)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, PrefixLoader, StrictUndefined

from app.identity import Person
from starter.web import views
from starter.web.forms import label
from starter.web.security import csrf_token

TEMPLATES = Path(__file__).resolve().parent / "templates"

ENV = Environment(
    loader=ChoiceLoader(
        [
            FileSystemLoader(TEMPLATES),
            PrefixLoader({"govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja")}),
        ]
    ),
    autoescape=True,  # every template, whatever its name: typed text is always shown as text
    trim_blocks=True,
    lstrip_blocks=True,
)
_ = StrictUndefined  # templates use defaults for optional values; undefined stays lenient for the macros


def person_of(request: Request) -> Person | None:
    """The signed-in person (the session remembers their directory key), or None."""
    key = request.session.get("person")
    if not isinstance(key, str):
        return None
    person: Person | None = request.app.state.application.people.get(key)
    if person is None:
        request.session.pop("person", None)
    return person


def _error_list(errors: dict[str, str], prefix: str, first_field: str) -> list[dict[str, str]]:
    return [
        {"text": message, "href": f"#{prefix}{first_field if name == 'form' else name}"}
        for name, message in errors.items()
    ]


def page(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the person, the session's CSRF token and an error summary of ``errors``."""
    person: Person | None = context.pop("person", None)
    errors: dict[str, str] = context.get("errors") or {}
    fields = context.get("fields") or []
    first = fields[0].name if fields else "main-content"
    prefix = context.get("error_prefix", "")
    if template == "escalation.html" and "form" in errors:
        failed = context.get("failed", "")
        first, prefix = (f"action-{failed}" if failed else "actions"), ""
    settings = request.app.state.settings
    body = ENV.get_template(template).render(
        request=request,
        person=person,
        csrf=csrf_token(request),
        development=settings.development_sign_in,
        authority_name=views.authority_name(person.authority) if person else "",
        error_list=_error_list(errors, prefix, first),
        label=label,
        **context,
    )
    return HTMLResponse(body, status_code=status_code)
