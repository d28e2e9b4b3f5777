"""``escalate good-practice note``: note a practitioner's (or an officer's) good practice.

    escalate good-practice note --authority gloucestershire --as-id glo-iro-a --as-role iro \\
        --about-id glo-social-worker-a --about-role social_worker --team team-a --child-ref C4F2A9 \\
        --what "..." [--impact "..."] [--category "..."] [--request-id ID]

The protocol's ``good_practice`` section says who may write one about whom, who is copied and whether it
goes on the child's file. Exit status as every ``escalate`` command: 0 noted (and sent), 1 refused by the
protocol, 2 bad input (nothing noted), 3 the service or a worker unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from temporalio.service import RPCError

from protocols import ProtocolError
from schemas.escalation import Actor
from schemas.good_practice import GoodPracticeRequest, GoodPracticeResult
from starter.cli.common import (
    EXIT_UNAVAILABLE,
    CliError,
    CliParser,
    describe_validation,
    free_text,
    key,
    refused,
)
from starter.cli.service import actor_of, connect_client, no_worker
from starter.escalations import BadInput
from starter.good_practice import note_once, prepare_note
from workflows.rules import Refused

OPTIONS = {
    "by.id": "--as-id",
    "by.role": "--as-role",
    "about.id": "--about-id",
    "about.role": "--about-role",
    "child_ref": "--child-ref",
    "what": "--what",
    "impact": "--impact",
    "category": "--category",
    "team": "--team",
}


def add_commands(
    sub: Any, command: Callable[..., argparse.ArgumentParser], conn: CliParser, actor: CliParser
) -> None:
    """``escalate good-practice note`` on the main parser's subcommands (``command``: ``build_parser``'s)."""
    group = command("good-practice", _needs_command, "note good practice (the protocol's good_practice)")
    gsub = group.add_subparsers(
        dest="good_practice_command", metavar="note", required=True, parser_class=CliParser
    )
    helptext = "note a practitioner's or an officer's good practice: recorded, and sent to them"
    p = gsub.add_parser("note", help=helptext, description=helptext, parents=[actor, conn])
    p.set_defaults(run=cmd_note)
    p.add_argument("--authority", required=True, help="protocol key, e.g. gloucestershire", type=key)
    p.add_argument("--about-id", required=True, help="whose good practice: their staff reference", type=key)
    p.add_argument("--about-role", required=True, help="their role, e.g. social_worker", type=key)
    p.add_argument("--what", required=True, type=free_text, help="the good practice")
    p.add_argument("--impact", type=free_text, help="how it made a difference to the child and family")
    p.add_argument("--team", type=key, help="their team (whose managers are copied)")
    p.add_argument("--child-ref", type=key, help="the child whose file it goes on (never a name)")
    p.add_argument("--category", type=free_text, help="one of the protocol's categories")
    p.add_argument(
        "--request-id", type=key, help="this request's id: the same id again returns the same note"
    )


async def _needs_command(args: argparse.Namespace) -> int:  # argparse requires a subcommand first
    raise CliError("give a command (see --help)")


async def cmd_note(args: argparse.Namespace) -> int:
    request_id = args.request_id or str(uuid.uuid4())
    by = actor_of(args)
    try:
        request = GoodPracticeRequest(
            authority=args.authority,
            by=by,
            about=Actor.model_validate({"id": args.about_id, "role": args.about_role}),
            team=args.team,
            child_ref=args.child_ref,
            category=args.category,
            what=args.what,
            impact=args.impact or "",
        )
        note = prepare_note(request, request_id)
    except ValidationError as exc:
        raise CliError(describe_validation(exc, OPTIONS)) from None
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    except BadInput as exc:  # not in the directory, a bad request id
        raise CliError(exc.reason) from None
    except Refused as exc:
        raise refused(exc.reason) from None
    client = await connect_client(args)
    try:
        noted = await note_once(client, note)
    except BadInput as exc:
        raise CliError(exc.reason) from None
    except RPCError as exc:
        raise CliError(
            f"cannot note {note.note_id}: {exc.message}; retry with --request-id {request_id}",
            EXIT_UNAVAILABLE,
        ) from None
    try:
        result: GoodPracticeResult = await asyncio.wait_for(noted.handle.result(), timeout=args.wait)
    except TimeoutError:
        raise no_worker(args, f"noting {note.note_id}") from None
    where = f"; on the child's file as {note.case_note_type!r}" if note.case_note_type else ""
    copied = f", copying {', '.join(note.cc)}" if note.cc else ""
    print(
        f"{'already noted' if noted.existing else 'noted'} {result.note_id}: sent to {args.about_id}{copied}"
        f"{where} (--request-id {request_id})"
    )
    return 0
