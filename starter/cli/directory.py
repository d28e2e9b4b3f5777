"""``escalate directory sync``: reload the staff directory on the worker, then retry stalled notices."""

from __future__ import annotations

import argparse
import asyncio

from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from protocols import available_protocols
from starter.cli.common import EXIT_BAD_INPUT, EXIT_UNAVAILABLE, CliError
from starter.cli.service import connect_client
from starter.directory_sync import sync_directory


async def cmd_directory_sync(args: argparse.Namespace) -> int:
    authorities: list[str] = list(dict.fromkeys(args.authority or []))
    unknown = [a for a in authorities if a not in available_protocols()]
    if unknown:
        raise CliError(
            f"--authority: unknown authority {unknown[0]!r}; known: {', '.join(available_protocols())}"
        )
    client = await connect_client(args)
    try:
        result = await asyncio.wait_for(sync_directory(client, authorities), timeout=args.wait)
    except WorkflowFailureError as failed:
        cause = failed.cause
        while isinstance(cause, ActivityError) and cause.cause is not None:
            cause = cause.cause
        reason = cause.message if isinstance(cause, ApplicationError) else str(cause or failed)
        raise CliError(f"directory not synced: {reason}", EXIT_BAD_INPUT) from None
    except TimeoutError:
        raise CliError(
            f"no worker finished the sync within {args.wait:g} s: is a worker running (`escalate up`)?",
            EXIT_UNAVAILABLE,
        ) from None
    for authority, count in sorted(result.synced.items()):
        print(f"synced {authority}: {count} assignment{'' if count == 1 else 's'}")
    told = len(result.stalled)
    print(f"{told} stalled escalation{'' if told == 1 else 's'} told to send held notices now")
    for escalation_id in result.stalled:
        print(f"  {escalation_id}")
    return 0
