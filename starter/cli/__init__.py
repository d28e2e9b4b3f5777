"""``escalate``: the command line for everyone who takes part in an escalation.

Every action a person can take maps to one of ``EscalationWorkflow``'s updates, and ``status``/``history``/
``list`` read its ``state`` query::

    escalate raise --authority gloucestershire --track iro-cp --category "Key decision-making" \\
        --child-ref C4F2A9 --team team-a --officer-id glo-iro-a --officer-role iro \\
        --summary ... --impact ... --request ...
    escalate respond gloucestershire-C4F2A9-0001 --as-id glo-social-worker-a --as-role social_worker \\
        --answer ...
    escalate status gloucestershire-C4F2A9-0001 [--json]

Every command on an escalation goes through the application layer (``app/``) as a person in the staff
directory (``--as-id``/``ESCALATE_AS_ID``; ``--as-role``/``ESCALATE_AS_ROLE`` only picks among their
roles) or a declared service account (``ESCALATE_SERVICE_ACCOUNT``), and is audited; ``--address``/
``--namespace`` (defaults ``TEMPORAL_ADDRESS``/``TEMPORAL_NAMESPACE``) name the server. Dates are
YYYY-MM-DD; a malformed date or a past date is refused before anything is sent.

Exit status: 0 done (one line says the outcome); 1 refused by the escalation's rules (``refused: <reason>``
on stderr); 2 bad input (unknown person, role, authority or escalation, a missing option, malformed
file or date, ...), nothing changed;
3 the service is unreachable or no worker answered in time (an escalation that stays busy with its last
change for all of ``--wait`` included: a busy refusal is retried until then).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from starter.clean_exit import run_then_exit
from starter.cli.common import EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_UNAVAILABLE, CliError
from starter.cli.parser import build_parser
from workflows.escalation import BUSY

__all__ = ["BUSY", "EXIT_BAD_INPUT", "EXIT_REFUSED", "EXIT_UNAVAILABLE", "CliError", "build_parser", "main"]


async def _main(argv: Sequence[str]) -> int:
    try:
        args = build_parser().parse_args(list(argv))
        result: int = await args.run(args)
        return result
    except CliError as exc:
        print(exc.line(), file=sys.stderr)
        return exc.code
    except BrokenPipeError:  # the reader stopped reading (`escalate list | head -1`): it has what it
        # wanted, so this is done: no message and exit 0 (stdout goes nowhere, so the final flush is quiet)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``escalate`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["up"]:  # the local service has its own options and its own clean exit
        from starter.local import cli as up

        up(args[1:])
    if args[:2] == ["mail", "ingest"]:  # the reply ingester has its own options and its own clean exit
        from starter.mail_ingest.cli import cli as ingest

        ingest(args[2:])
    run_then_exit(lambda: _main(args))
