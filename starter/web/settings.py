"""The web app's settings, from the environment (secrets never live in files of this project).

| variable | meaning | default |
| --- | --- | --- |
| ESCALATE_ENV | ``production`` refuses the development sign-in and needs the secrets below | development |
| ESCALATE_SESSION_SECRET | signs the session cookie (32+ random characters) | dev: ``.data/session-secret`` |
| ESCALATE_OIDC_ISSUER | the identity provider's issuer URL (Entra ID: ``.../<tenant>/v2.0``) | |
| ESCALATE_OIDC_CLIENT_ID, ESCALATE_OIDC_CLIENT_SECRET | this app's registration with it | |
| ESCALATE_WEB_SIGN_IN_PER_MINUTE | sign-in attempts allowed per client address per minute | 10 |
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from activities.settings import Settings

SECRET_FILE = "session-secret"
MIN_SECRET = 32


class WebSettingsError(ValueError):
    """A setting is missing or wrong; the message names the variable and the fix."""


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str

    @property
    def metadata_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class WebSettings:
    production: bool = field(default_factory=lambda: _env("ESCALATE_ENV").lower() == "production")
    session_secret: str = ""
    oidc: OidcSettings | None = None
    sign_in_per_minute: int = 10
    secure_cookies: bool = True
    """Secure cookies (HTTPS only); ``escalate up`` serves plain HTTP on 127.0.0.1 and turns it off."""

    @property
    def development_sign_in(self) -> bool:
        return not self.production


def load(data_dir: Path | None = None, *, secure_cookies: bool = True) -> WebSettings:
    """The settings from the environment; in development a session secret is made in the data folder."""
    production = _env("ESCALATE_ENV").lower() == "production"
    secret = _env("ESCALATE_SESSION_SECRET")
    if not secret:
        if production:
            raise WebSettingsError(
                "ESCALATE_SESSION_SECRET is not set: give 32 or more random characters "
                "(openssl rand -base64 48) in production"
            )
        secret = development_secret(data_dir or Settings().data_dir)
    if len(secret) < MIN_SECRET:
        raise WebSettingsError(f"ESCALATE_SESSION_SECRET is too short: give at least {MIN_SECRET} characters")
    issuer, client_id, client_secret = (
        _env(n) for n in ("ESCALATE_OIDC_ISSUER", "ESCALATE_OIDC_CLIENT_ID", "ESCALATE_OIDC_CLIENT_SECRET")
    )
    given = [bool(issuer), bool(client_id), bool(client_secret)]
    if any(given) and not all(given):
        raise WebSettingsError(
            "OpenID Connect needs all of ESCALATE_OIDC_ISSUER, ESCALATE_OIDC_CLIENT_ID and "
            "ESCALATE_OIDC_CLIENT_SECRET (or none of them)"
        )
    oidc = OidcSettings(issuer, client_id, client_secret) if all(given) else None
    per_minute = _env("ESCALATE_WEB_SIGN_IN_PER_MINUTE") or "10"
    if not per_minute.isdigit() or not 1 <= int(per_minute) <= 1000:
        raise WebSettingsError("ESCALATE_WEB_SIGN_IN_PER_MINUTE must be a whole number from 1 to 1000")
    return WebSettings(
        production=production,
        session_secret=secret,
        oidc=oidc,
        sign_in_per_minute=int(per_minute),
        secure_cookies=secure_cookies or production,
    )


def development_secret(data_dir: Path) -> str:
    """The development session secret in ``<data dir>/session-secret`` (0600), made on first use."""
    path = data_dir / SECRET_FILE
    if path.is_file():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return value
