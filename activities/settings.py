"""Settings of the activities, from the environment (secrets never live in files of this project).

| variable | meaning | default |
| --- | --- | --- |
| ESCALATION_DATABASE_URL | SQLAlchemy URL of the record store | sqlite:///.data/escalations.db |
| ESCALATION_DATA_DIR | local data (file outbox, case-note files) | .data |
| ESCALATION_DIRECTORY_DIR | folder of directory files, one per authority | protocols/directories |
| ESCALATION_SMTP_HOST / _PORT | SMTP server | 127.0.0.1 / 1025 |
| ESCALATION_SMTP_TLS | none, starttls or ssl | none |
| ESCALATION_SMTP_USER / _PASSWORD | SMTP credentials (optional) | |
| ESCALATION_MAIL_FROM | sender address | escalations@localhost |
| ESCALATION_REPLY_LOCAL / _DOMAIN | reply address: <local>+<token>@<domain> | escalations / localhost |
| ESCALATION_REPLY_TOKEN_DAYS | days a reply token stays valid (only its hash is stored) | 60 |

An empty value counts as unset (the default applies), as in an env file with ``NAME=``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from activities.db.base import database_url

PROJECT_ROOT = Path(__file__).resolve().parents[1]


DEFAULT_REPLY_TOKEN_DAYS = 60
"""Long enough for a reply to a stage's notice after extensions and holidays; then the form is the way."""


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


def _int_env(name: str, default: int) -> int:
    value = _env(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} is {value!r}; give a whole number") from None


@dataclass(frozen=True)
class SmtpSettings:
    host: str = field(default_factory=lambda: _env("ESCALATION_SMTP_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: _int_env("ESCALATION_SMTP_PORT", 1025))
    tls: Literal["none", "starttls", "ssl"] = field(
        default_factory=lambda: _env("ESCALATION_SMTP_TLS", "none")  # type: ignore[arg-type,return-value]
    )
    user: str | None = field(default_factory=lambda: os.environ.get("ESCALATION_SMTP_USER"))
    password: str | None = field(default_factory=lambda: os.environ.get("ESCALATION_SMTP_PASSWORD"))
    mail_from: str = field(default_factory=lambda: _env("ESCALATION_MAIL_FROM", "escalations@localhost"))
    reply_local: str = field(default_factory=lambda: _env("ESCALATION_REPLY_LOCAL", "escalations"))
    reply_domain: str = field(default_factory=lambda: _env("ESCALATION_REPLY_DOMAIN", "localhost"))
    reply_token_days: int = field(
        default_factory=lambda: _int_env("ESCALATION_REPLY_TOKEN_DAYS", DEFAULT_REPLY_TOKEN_DAYS)
    )

    def __post_init__(self) -> None:
        if self.tls not in ("none", "starttls", "ssl"):
            raise ValueError(f"ESCALATION_SMTP_TLS is {self.tls!r}; use none, starttls or ssl")
        if not 1 <= self.reply_token_days <= 3650:
            raise ValueError(
                f"ESCALATION_REPLY_TOKEN_DAYS is {self.reply_token_days}; give a number of days, 1 to 3650"
            )


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=database_url)
    data_dir: Path = field(default_factory=lambda: Path(_env("ESCALATION_DATA_DIR", ".data")))
    directory_dir: Path = field(
        default_factory=lambda: Path(
            _env("ESCALATION_DIRECTORY_DIR", str(PROJECT_ROOT / "protocols" / "directories"))
        )
    )
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
