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

from app.errors import AppError
from app.good_practice import start_good_practice, writable_about
from schemas.good_practice import GoodPracticeResult
from starter.cli.common import (
    CliError,
)
from starter.cli.identity import acting, cli_error, open_app, option_label
from starter.cli.service import no_worker

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


async def cmd_note(args: argparse.Namespace) -> int:
    """As the directory-confirmed person (``--as-id``) through the application layer, like every action."""
    who = acting(args)
    person = who.caller.person
    if args.authority != person.authority:
        raise CliError(
            f"--authority: {person.id} is in {person.authority}'s directory, not {args.authority}'s"
        )
    request_id = args.request_id or str(uuid.uuid4())
    fields = {
        "about_id": args.about_id,
        "team": args.team,
        "child_ref": args.child_ref,
        "category": args.category,
        "what": args.what,
        "impact": args.impact or "",
        "request_id": request_id,
    }
    app = await open_app(args)
    noted_about = {(i, r) for i, r, _ in writable_about(app, who.caller)}
    if (args.about_id, args.about_role) not in noted_about and any(
        i == args.about_id for i, _ in noted_about
    ):
        raise CliError(f"--about-role: {args.about_id} is not noted as {args.about_role}")
    try:
        note, noted = await start_good_practice(app, who.caller, fields, option_label)
    except AppError as exc:
        raise cli_error(exc, OPTIONS) from None
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
