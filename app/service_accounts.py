"""Service accounts: scripts that act without a person, declared explicitly and limited to what they are for.

A service account is declared (never inferred) in ``ESCALATION_SERVICE_ACCOUNTS_FILE`` (a YAML file) or
``ESCALATION_SERVICE_ACCOUNTS`` (the same YAML inline)::

    service_accounts:
      - name: nightly-report          # its id in the audit log and on the escalations it acts on
        authority: wigan
        roles: [{role: iro, team: team-a}]   # the roles it acts in (team null: authority-wide)
        may: [list, read]             # list, read, raise, and action kinds (respond, add_note, ...)

It is a ``Person`` whose roles come from its declaration, so every rule of visibility and of the protocol
applies to it as to anyone; ``may`` limits it further (``Caller.may``), and every request it makes is
audited with ``via`` ending in ``:service``. Its bearer token for the JSON API is a secret: only in the
environment (``ESCALATION_API_TOKENS``: ``name=token`` pairs, comma-separated) or a secret file
(``ESCALATION_API_TOKENS_FILE``: one ``name=token`` a line), compared in constant time
(``account_for_token``).
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.errors import NotSignedIn
from app.identity import Holding, Person
from app.inputs import ACTION_MODELS
from schemas.bounds import Ref

OPERATIONS = frozenset({"list", "read", "raise", *ACTION_MODELS})
"""What a service account may be declared for: listing, reading one escalation, raising, each action."""
TOKEN_MIN = 32
"""A bearer token shorter than this is refused when the tokens are read: too easy to guess."""


class ServiceAccountError(ValueError):
    """The declarations or the tokens are wrong: the message says where and how to fix it."""


class ServiceAccount(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Ref
    authority: Ref
    roles: tuple[Holding, ...] = ()
    may: frozenset[str] = Field(min_length=1)

    @field_validator("may")
    @classmethod
    def _known(cls, may: frozenset[str]) -> frozenset[str]:
        unknown = sorted(may - OPERATIONS)
        if unknown:
            raise ValueError(f"unknown operation {unknown[0]!r}; one of: {', '.join(sorted(OPERATIONS))}")
        return may

    def person(self) -> Person:
        return Person(
            authority=self.authority,
            id=self.name,
            name=f"service account {self.name}",
            email="",
            holdings=self.roles,
        )


class _Declarations(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_accounts: list[ServiceAccount] = []


def _parse(text: str, where: str) -> dict[str, ServiceAccount]:
    try:
        data: Any = yaml.safe_load(text) or {}
        declared = _Declarations.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, ValidationError):
            err = exc.errors()[0]
            at = ".".join(str(p) for p in err["loc"])
            first = f"{at}: {str(err['msg']).removeprefix('Value error, ')}"
        raise ServiceAccountError(f"the service accounts in {where} cannot be read: {first}") from None
    accounts: dict[str, ServiceAccount] = {}
    for account in declared.service_accounts:
        if account.name in accounts:
            raise ServiceAccountError(f"service account {account.name!r} is declared twice in {where}")
        accounts[account.name] = account
    return accounts


def declared_accounts(env: dict[str, str] | None = None) -> dict[str, ServiceAccount]:
    """Every declared service account by name (none when nothing is declared)."""
    env = dict(os.environ) if env is None else env
    accounts: dict[str, ServiceAccount] = {}
    path = env.get("ESCALATION_SERVICE_ACCOUNTS_FILE")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ServiceAccountError(
                f"ESCALATION_SERVICE_ACCOUNTS_FILE {path}: {exc.strerror or exc}"
            ) from None
        accounts.update(_parse(text, path))
    inline = env.get("ESCALATION_SERVICE_ACCOUNTS")
    if inline:
        for name, account in _parse(inline, "ESCALATION_SERVICE_ACCOUNTS").items():
            if name in accounts:
                raise ServiceAccountError(f"service account {name!r} is declared in both places")
            accounts[name] = account
    return accounts


def account_named(name: str, env: dict[str, str] | None = None) -> ServiceAccount:
    accounts = declared_accounts(env)
    account = accounts.get(name)
    if account is None:
        known = ", ".join(sorted(accounts)) or "none is declared"
        raise NotSignedIn(f"there is no service account {name[:64]!r} (declared: {known})")
    return account


def _tokens(env: dict[str, str]) -> list[tuple[str, str]]:
    pairs: list[str] = []
    path = env.get("ESCALATION_API_TOKENS_FILE")
    if path:
        try:
            pairs += Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ServiceAccountError(f"ESCALATION_API_TOKENS_FILE {path}: {exc.strerror or exc}") from None
    pairs += env.get("ESCALATION_API_TOKENS", "").split(",")
    found: list[tuple[str, str]] = []
    for pair in (p.strip() for p in pairs):
        if not pair or pair.startswith("#"):
            continue
        name, sep, token = pair.partition("=")
        if not sep or len(token.strip()) < TOKEN_MIN:
            raise ServiceAccountError(
                f"an API token entry for {name.strip()[:64]!r} is not name=token with a token of at least "
                f"{TOKEN_MIN} characters"
            )
        found.append((name.strip(), token.strip()))
    return found


def account_for_token(token: str, env: dict[str, str] | None = None) -> ServiceAccount:
    """The declared service account whose bearer token this is; ``NotSignedIn`` otherwise.

    Every configured token is compared (in constant time), so the time taken says nothing about which
    one, or how much of one, matched."""
    env = dict(os.environ) if env is None else env
    given = token.encode()
    matched: str | None = None
    for name, expected in _tokens(env):
        if hmac.compare_digest(given, expected.encode()):
            matched = name
    if matched is None:
        raise NotSignedIn("The bearer token is not one this service knows.")
    accounts = declared_accounts(env)
    if matched not in accounts:
        raise NotSignedIn("The bearer token's service account is not declared.")
    return accounts[matched]
