"""``escalate digest send``: the weekly digest of outstanding alerts, now.

    escalate digest send [--authority waltham-forest] [--week 2026-W48] [--dry-run]

Sends each manager holding outstanding alerts the list of theirs, and each holder of the protocol's
``digest.everything_to`` roles all of the authority's, once per week (a second run in the same week sends
nothing new); ``--dry-run`` says who would get what and sends nothing. The schedule (``weekly-digest``)
does the same every day at 07:00 for the authorities whose ``digest.weekday`` it is. Exit status: 0 done,
2 bad input (an authority without a digest), 3 the service or a worker unreachable.
"""

from __future__ import annotations

import argparse
import asyncio

from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from protocols import ProtocolError, load_protocol
from schemas.digest import DigestRequest, DigestResult
from starter.cli.common import EXIT_UNAVAILABLE, CliError
from starter.cli.service import connect_client, no_worker
from starter.digest import send_digest


async def cmd_digest_send(args: argparse.Namespace) -> int:
    if args.authority:
        try:
            protocol = load_protocol(args.authority)
        except ProtocolError as exc:
            raise CliError(str(exc)) from None
        if protocol.digest is None:
            raise CliError(f"--authority: the {protocol.authority} protocol has no weekly digest ('digest')")
    request = DigestRequest(authority=args.authority, week=args.week, dry_run=args.dry_run)
    client = await connect_client(args)
    try:
        result = await asyncio.wait_for(send_digest(client, request), timeout=args.wait)
    except TimeoutError:
        raise no_worker(args, "sending the digest") from None
    except WorkflowFailureError as exc:
        cause: BaseException | None = exc.cause
        while isinstance(getattr(cause, "cause", None), BaseException):  # the activity's own error
            cause = cause.cause  # type: ignore[union-attr]
        raise CliError(f"the digest was not sent: {cause}", 1) from None
    except RPCError as exc:
        raise CliError(f"cannot start the digest: {exc.message}", EXIT_UNAVAILABLE) from None
    print(_report(result, args.dry_run))
    return 0


def _report(result: DigestResult, dry_run: bool) -> str:
    sent = sum(m.sent for m in result.mails)
    head = (
        f"week {result.week}: {len(result.mails)} digest(s) would go out (dry run: nothing sent)"
        if dry_run
        else f"week {result.week}: {sent} sent now, {len(result.mails) - sent} sent earlier this week"
    )
    lines = [head]
    for m in result.mails:
        state = "would send" if dry_run else "sent" if m.sent else "already sent"
        what = "every open alert" if m.everything else "their alerts"
        lines.append(f"  {state}: {m.authority} {m.person_id} ({', '.join(m.roles)}): {what}, {m.alerts}")
    lines += [f"  not told (nobody holds it): {u}" for u in result.unfilled]
    return "\n".join(lines)
