"""``escalate collective raise``: a collective alert, one theme across several children or carers.

    escalate collective raise --authority waltham-forest --track iro --category "..." --team team-a \\
        --officer-id wf-iro-a --officer-role iro --theme "..." --subject C0001 --subject C0002 \\
        --qa-consulted-with qa_practice_manager --qa-consulted-on 2026-03-02 --qa-consultation "..." \\
        --summary "..." --impact "..." --request "..." [--start-at-stage stage-2] [--request-id ID]

The protocol's ``collective_alerts`` section says who leads one and whom they consult on the level it is
raised at (``--start-at-stage``: that level, with no bypass reason). It then runs as ``escalate raise``
raises any concern, with the child reference ``COLLECTIVE``: nothing goes on any child's file. An
escalation for one of the children names it with ``escalate raise --part-of ID``. Exit status as
``escalate raise``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from schemas.escalation import COLLECTIVE_REF, Collective
from starter.cli.acting import cmd_raise
from starter.cli.common import CliError, CliParser, build, category_text, free_text, key, past_date

_OPTIONS = {
    "theme": "--theme",
    "subjects": "--subject",
    "consulted_with": "--qa-consulted-with",
    "consulted_on": "--qa-consulted-on",
    "consultation": "--qa-consultation",
}

_RAISE_DEFAULTS: dict[str, Any] = {
    "child_ref": COLLECTIVE_REF,
    "service_area": None,
    "child_views": None,
    "parents_views": None,
    "severity": None,
    "bypass_reason": None,
    "emergency": False,
    "discussed_with": None,
    "external_contact": None,
    "sequence": None,
    "part_of": None,
}
"""The options of ``escalate raise`` a collective alert does not take."""


def add_commands(sub: Any, command: Callable[..., argparse.ArgumentParser], conn: CliParser) -> None:
    """``escalate collective raise`` on the main parser's subcommands (``command``: ``build_parser``'s)."""
    group = command("collective", _needs_command, "collective alerts (the protocol's collective_alerts)")
    csub = group.add_subparsers(
        dest="collective_command", metavar="raise", required=True, parser_class=CliParser
    )
    helptext = "raise a collective alert: one theme across several children or carers, on no child's file"
    p = csub.add_parser("raise", help=helptext, description=helptext, parents=[conn])
    p.set_defaults(run=cmd_collective_raise, **_RAISE_DEFAULTS)
    p.add_argument("--authority", required=True, help="protocol key, e.g. waltham-forest", type=key)
    p.add_argument(
        "--track", help="track key (default: the one track the officer's role raises on)", type=key
    )
    p.add_argument("--category", required=True, help="the category's text, or its number", type=category_text)
    p.add_argument("--team", type=key, help="the team whose managers are alerted")
    p.add_argument(
        "--officer-id", "--as-id", dest="as_id", help="the lead officer (ESCALATE_AS_ID)", type=key
    )
    p.add_argument(
        "--officer-role", "--as-role", dest="as_role", help="their role (ESCALATE_AS_ROLE)", type=key
    )
    p.add_argument("--theme", required=True, type=free_text, help="the theme the children or carers share")
    p.add_argument(
        "--subject",
        action="append",
        required=True,
        type=key,
        metavar="REF",
        help="a child's (or foster carer's) reference; repeat for each, at least two",
    )
    p.add_argument("--qa-consulted-with", required=True, metavar="ROLE", type=key, help="who was consulted")
    p.add_argument("--qa-consulted-on", required=True, metavar="DATE", type=past_date, help="when")
    p.add_argument("--qa-consultation", required=True, metavar="TEXT", type=free_text, help="what was agreed")
    p.add_argument("--child-status", type=key, help="the children's status, where the protocol declares them")
    p.add_argument("--summary", required=True, help="what the concern is", type=free_text)
    p.add_argument("--impact", required=True, help="its impact on the children", type=free_text)
    p.add_argument("--request", required=True, help="what is asked of the recipient", type=free_text)
    p.add_argument("--start-at-stage", help="the level chosen with the QA practice manager", type=key)
    p.add_argument(
        "--consulted-with", metavar="ROLE", help="a gate's consultation, as escalate raise", type=key
    )
    p.add_argument("--consulted-on", metavar="DATE", type=past_date)
    p.add_argument("--consultation", metavar="TEXT", type=free_text)
    p.add_argument("--consultation-agreed", action="store_true")
    p.add_argument("--request-id", type=key, help="the same id again returns the alert it raised")


async def _needs_command(args: argparse.Namespace) -> int:  # argparse requires a subcommand first
    raise CliError("give a command (see --help)")


async def cmd_collective_raise(args: argparse.Namespace) -> int:
    args.collective = build(
        Collective,
        _OPTIONS,
        theme=args.theme,
        subjects=args.subject,
        consulted_with=args.qa_consulted_with,
        consulted_on=args.qa_consulted_on,
        consultation=args.qa_consultation,
    )
    return await cmd_raise(args)
