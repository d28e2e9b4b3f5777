"""Who ``escalate`` acts as, and the application layer it acts through.

A person from the staff directory: ``--as-id`` (or ``ESCALATE_AS_ID``; ``<authority>/<id>`` where an id is
in more than one directory). ``--as-role`` (or ``ESCALATE_AS_ROLE``) only picks among the roles the directory
gives them; without it the rules pick the role that may act. Or, for scripts, a declared service account
(``ESCALATE_SERVICE_ACCOUNT``, see ``app.service_accounts``), audited as one. Anyone else is refused
(exit 2) before anything is sent.
"""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from app.core import ApplicationCore, Caller
from app.errors import AppError, BadInput, NotFound, NotSignedIn, Refused, Unavailable
from app.identity import People, Person
from app.service_accounts import ServiceAccountError, account_named
from starter.cli.common import EXIT_UNAVAILABLE, OPTION_FOR, CliError, name_options, rule_refusal

if TYPE_CHECKING:
    from app.service import Application

Layer = TypeVar("Layer", bound=ApplicationCore)

WHO_ACTS = (
    "say who acts: --as-id (or set ESCALATE_AS_ID) with your staff reference in the directory, or "
    "ESCALATE_SERVICE_ACCOUNT for a declared service account"
)


@dataclass(frozen=True)
class Acting:
    """The caller the application layer sees, and the role ``--as-role`` chose (None: any they hold)."""

    caller: Caller
    role: str | None
    people: People | None = None
    """The directory as read to check the caller (None for a service account), so it is read once."""


def _os_user() -> str | None:
    try:
        return getpass.getuser()[:64]
    except (KeyError, OSError):
        return None


def person_for(people: People, given: str, option: str) -> Person:
    """The directory person ``given`` names (``id`` or ``authority/id``); bad input otherwise."""
    found = [p for p in people.all() if given in (p.id, p.key)]
    if len(found) > 1:
        where = ", ".join(p.key for p in found)
        raise CliError(f"{option}: {given!r} is in more than one directory; give one of {where}")
    if not found:
        raise CliError(
            f"{option}: {given[:64]!r} is not in any authority's staff directory: check the reference, or "
            "ask for them to be added"
        )
    return found[0]


def acting(args: argparse.Namespace, *, raising: bool = False, people: People | None = None) -> Acting:
    """Who the command acts as, checked against the directory (or the service accounts' declarations)."""
    cached: Acting | None = getattr(args, "_acting", None)
    if cached is not None:
        return cached
    id_option, role_option = ("--officer-id", "--officer-role") if raising else ("--as-id", "--as-role")
    given_id = getattr(args, "as_id", None) or os.environ.get("ESCALATE_AS_ID")
    given_role = getattr(args, "as_role", None) or os.environ.get("ESCALATE_AS_ROLE")
    account_name = os.environ.get("ESCALATE_SERVICE_ACCOUNT")
    if account_name and given_id:
        raise CliError(f"ESCALATE_SERVICE_ACCOUNT is set: leave out {id_option} (and ESCALATE_AS_ID)")
    if account_name:
        try:
            account = account_named(account_name)
        except (ServiceAccountError, NotSignedIn) as exc:
            raise CliError(f"ESCALATE_SERVICE_ACCOUNT: {exc}") from None
        person = account.person()
        caller = Caller(person=person, via="cli:service", client=_os_user(), may=account.may)
    elif given_id:
        people = people or People.load()
        person = person_for(people, given_id, id_option)
        caller = Caller(person=person, via="cli", client=_os_user())
    else:
        raise CliError(WHO_ACTS)
    held = list(dict.fromkeys(h.role for h in person.holdings))
    if given_role is not None and given_role not in held:
        raise CliError(
            f"{role_option}: {person.id} does not hold the role {given_role[:64]!r} in the directory; "
            f"theirs: {', '.join(held) or 'none'}"
        )
    found = Acting(caller=caller, role=given_role, people=people)
    args._acting = found
    return found


async def open_app(args: argparse.Namespace, *, lazy: bool = False) -> Application:
    """The whole application layer on a connection to ``--address``, its audit log open (``lazy``:
    connected at its first Temporal call, for commands that may need none)."""
    from app.service import Application

    return await _open(args, Application, lazy=lazy)


async def open_core(args: argparse.Namespace) -> ApplicationCore:
    """The application layer's core (reading and acting on one escalation, and their audit): as
    ``open_app``, without the modules that raise and list."""
    return await _open(args, ApplicationCore, lazy=False)


async def _open(args: argparse.Namespace, layer: type[Layer], *, lazy: bool) -> Layer:
    from starter.cli.service import connect_client

    client = await connect_client(args, lazy=lazy)
    checked: Acting | None = getattr(args, "_acting", None)  # the directory read to check the caller
    try:
        app = await layer.start(client=client, people=checked.people if checked else None)
    except Exception as exc:  # the audit log's database: nothing may be done unaudited
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CliError(
            f"cannot open the audit log's database (ESCALATION_DATABASE_URL): {reason[:200]}",
            EXIT_UNAVAILABLE,
        ) from None
    app.wait_s = args.wait
    return app


def option_label(field: str) -> str:
    """A model field's command-line option, for the application layer's messages."""
    return OPTION_FOR.get(field) or "--" + field.replace("_", "-")


def cli_error(exc: AppError, options: Mapping[str, str] | None = None) -> CliError:
    """The application layer's refusal as the command line says it (exit 1 refused, 2 bad input or not
    found, 3 unavailable)."""
    if isinstance(exc, Refused):
        return rule_refusal(exc.message.rstrip("."), options)
    message = name_options(exc.message, options)
    if isinstance(exc, Unavailable):
        return CliError(message, EXIT_UNAVAILABLE)
    if isinstance(exc, BadInput):
        return CliError("; ".join(name_options(v, options) for v in exc.fields.values()) or message)
    if isinstance(exc, NotFound):
        return CliError(f"unknown escalation {exc.escalation_id!r}: {message}")
    return CliError(message)
