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

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from starter.cli.options import EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_UNAVAILABLE, CliError
from starter.cli.parser import build_parser

__all__ = ["BUSY", "EXIT_BAD_INPUT", "EXIT_REFUSED", "EXIT_UNAVAILABLE", "CliError", "build_parser", "main"]


def __getattr__(name: str) -> Any:
    """``BUSY`` (the workflow's busy refusal type), imported only when asked for: it comes with temporalio."""
    if name == "BUSY":
        from workflows.shell_options import BUSY

        return BUSY
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _parse(argv: Sequence[str]) -> argparse.Namespace | int:
    """The command line parsed, or the exit code when it ends here (bad input: its one line printed).
    ``--help`` prints and raises ``SystemExit(0)``, as argparse does."""
    try:
        return build_parser().parse_args(list(argv))
    except CliError as exc:
        print(exc.line(), file=sys.stderr)
        return exc.code
    except BrokenPipeError:
        return _stdout_gone()


async def _run(args: argparse.Namespace) -> int:
    """Run the parsed command: its exit code; an expected failure is one line on stderr."""
    try:
        result: int = await args.run(args)
        return result
    except CliError as exc:
        print(exc.line(), file=sys.stderr)
        return exc.code
    except BrokenPipeError:
        return _stdout_gone()


def _stdout_gone() -> int:
    """The reader stopped reading (`escalate list | head -1`): it has what it wanted, so this is done: no
    message and exit 0 (stdout goes nowhere, so the final flush is quiet)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


async def _main(argv: Sequence[str]) -> int:
    parsed = _parse(argv)
    return parsed if isinstance(parsed, int) else await _run(parsed)


def _leave(code: int) -> NoReturn:
    """End a command that stopped at its command line (``--help``, bad input) as ``run_then_exit`` ends
    the others, without starting an event loop: flush (a reader that went away is no error), then exit."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``escalate`` console script: the command line is parsed before anything heavy is imported."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["up"]:  # the local service has its own options and its own clean exit
        from starter.local import cli as up

        up(args[1:])
    if args[:2] == ["mail", "ingest"]:  # the reply ingester has its own options and its own clean exit
        from starter.mail_ingest.cli import cli as ingest

        ingest(args[2:])
    try:
        parsed = _parse(args)
    except SystemExit as exc:  # --help: printed
        _leave(exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1)
    if isinstance(parsed, int):
        _leave(parsed)
    from starter.clean_exit import run_then_exit

    run_then_exit(lambda: _run(parsed))
