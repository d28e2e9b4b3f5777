"""The ``escalate`` parser's command groups beyond the escalation's own commands: review decisions and
practice concerns, good practice, collective alerts, the digest, reports, and BPMN under ``protocol``.

As ``starter.cli.parser``: only the standard library and ``starter.cli.options`` are imported here; each
command's module is imported when it runs, and a schema's pattern when an option that needs it is given.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starter.cli.options import (
    CliParser,
    category_text,
    free_text,
    handler,
    key,
    past_date,
    pattern_id,
    shown,
)

Command = Callable[..., argparse.ArgumentParser]
"""``build_parser``'s ``command(name, "module:function", helptext, *parents)``."""
NEEDS_COMMAND = "starter.cli.options:needs_command"
PROCESSES = "starter.cli.processes"
FORMATS = ("html", "csv", "pdf")
"""``escalate report --format``."""


def _decisions_pattern() -> str:
    from schemas.process_models import DECISIONS_ID

    return DECISIONS_ID


def _practice_pattern() -> str:
    from schemas.process_models import PRACTICE_ID

    return PRACTICE_ID


decisions_id = pattern_id(_decisions_pattern, "dudley-C4F2A9-decisions-0123456789", "a review decisions")
practice_id = pattern_id(_practice_pattern, "waltham-forest-practice-0123456789", "a practice concern")


def week(text: str) -> str:
    from schemas.digest import ISO_WEEK

    if not re.match(ISO_WEEK, text):
        raise argparse.ArgumentTypeError(f"{shown(text)} is not an ISO week: write it like 2026-W48")
    return text


def _sub_command(parent: Any, name: str, run: str, helptext: str, *parents: CliParser) -> Any:
    p = parent.add_parser(name, help=helptext, description=helptext, parents=list(parents))
    p.set_defaults(run=handler(run))
    return p


def add_process_commands(sub: Any, command: Command, conn: CliParser, actor: CliParser) -> None:
    """``decisions`` and ``practice-concern`` (``starter.cli.processes``)."""
    group = command("decisions", NEEDS_COMMAND, "review decisions deemed agreed unless disagreed in time")
    dsub = group.add_subparsers(
        dest="decisions_command", metavar="COMMAND", required=True, parser_class=CliParser
    )
    ident = CliParser(add_help=False)
    ident.add_argument("id", help="e.g. dudley-C4F2A9-decisions-0123456789", type=decisions_id)

    p = _sub_command(
        dsub,
        "send",
        f"{PROCESSES}:cmd_decisions_send",
        "send a review's decisions to the team manager",
        actor,
        conn,
    )
    p.add_argument("--authority", required=True, help="protocol key, e.g. dudley", type=key)
    p.add_argument("--child-ref", required=True, help="the child's opaque reference (never a name)", type=key)
    p.add_argument("--team", type=key)
    p.add_argument(
        "--review-date", required=True, type=past_date, metavar="DATE", help="the day the review was held"
    )
    p.add_argument("--decisions", required=True, type=free_text, help="the review's decisions")
    p.add_argument(
        "--request-id", type=key, help="this request's id: the same id again returns the same process"
    )
    p = _sub_command(
        dsub,
        "agree",
        f"{PROCESSES}:cmd_decisions_agree",
        "agree the decisions (team manager)",
        ident,
        actor,
        conn,
    )
    p.add_argument("--note", type=free_text)
    p = _sub_command(
        dsub,
        "disagree",
        f"{PROCESSES}:cmd_decisions_disagree",
        "disagree in time: opens informal resolution",
        ident,
        actor,
        conn,
    )
    p.add_argument("--reason", required=True, type=free_text)
    p = _sub_command(
        dsub,
        "withdraw",
        f"{PROCESSES}:cmd_withdraw",
        "withdraw the decisions (the officer)",
        ident,
        actor,
        conn,
    )
    p.add_argument("--reason", required=True, type=free_text)
    p = _sub_command(dsub, "status", f"{PROCESSES}:cmd_status", "where the decisions stand", ident, conn)
    p.add_argument("--json", action="store_true", help="the whole state as JSON")
    _sub_command(dsub, "history", f"{PROCESSES}:cmd_history", "the timeline, one line per event", ident, conn)

    group = command("practice-concern", NEEDS_COMMAND, "a concern about an officer's own practice")
    psub = group.add_subparsers(
        dest="practice_command", metavar="COMMAND", required=True, parser_class=CliParser
    )
    ident = CliParser(add_help=False)
    ident.add_argument("id", help="e.g. waltham-forest-practice-0123456789", type=practice_id)
    p = _sub_command(
        psub,
        "raise",
        f"{PROCESSES}:cmd_practice_raise",
        "refer a concern about an officer's practice",
        actor,
        conn,
    )
    p.add_argument("--authority", required=True, help="protocol key, e.g. waltham-forest", type=key)
    p.add_argument("--about-id", required=True, help="the officer's staff reference", type=key)
    p.add_argument("--about-role", required=True, help="the officer's role, e.g. iro", type=key)
    p.add_argument("--summary", required=True, type=free_text, help="what the concern is")
    p.add_argument("--team", type=key)
    p.add_argument("--child-ref", type=key, help="the child whose review or conference it concerns, if one")
    p.add_argument(
        "--request-id", type=key, help="this request's id: the same id again returns the same process"
    )
    p = _sub_command(
        psub,
        "respond",
        f"{PROCESSES}:cmd_practice_respond",
        "feed back (the investigator, or once escalated)",
        ident,
        actor,
        conn,
    )
    p.add_argument("--feedback", required=True, type=free_text)
    p = _sub_command(
        psub,
        "accept",
        f"{PROCESSES}:cmd_practice_accept",
        "the feedback resolves it (who raised it)",
        ident,
        actor,
        conn,
    )
    p.add_argument("--note", type=free_text)
    p = _sub_command(
        psub,
        "escalate",
        f"{PROCESSES}:cmd_practice_escalate",
        "not resolved: to the senior manager",
        ident,
        actor,
        conn,
    )
    p.add_argument("--reason", required=True, type=free_text)
    p = _sub_command(
        psub,
        "withdraw",
        f"{PROCESSES}:cmd_withdraw",
        "withdraw the concern (who raised it)",
        ident,
        actor,
        conn,
    )
    p.add_argument("--reason", required=True, type=free_text)
    p = _sub_command(psub, "status", f"{PROCESSES}:cmd_status", "where the concern stands", ident, conn)
    p.add_argument("--json", action="store_true", help="the whole state as JSON")
    _sub_command(psub, "history", f"{PROCESSES}:cmd_history", "the timeline, one line per event", ident, conn)


def add_good_practice_commands(sub: Any, command: Command, conn: CliParser, actor: CliParser) -> None:
    """``escalate good-practice note`` (``starter.cli.good_practice``)."""
    group = command("good-practice", NEEDS_COMMAND, "note good practice (the protocol's good_practice)")
    gsub = group.add_subparsers(
        dest="good_practice_command", metavar="note", required=True, parser_class=CliParser
    )
    helptext = "note a practitioner's or an officer's good practice: recorded, and sent to them"
    p = gsub.add_parser("note", help=helptext, description=helptext, parents=[actor, conn])
    p.set_defaults(run=handler("starter.cli.good_practice:cmd_note"))
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


def add_collective_commands(sub: Any, command: Command, conn: CliParser) -> None:
    """``escalate collective raise`` (``starter.cli.collective``)."""
    group = command("collective", NEEDS_COMMAND, "collective alerts (the protocol's collective_alerts)")
    csub = group.add_subparsers(
        dest="collective_command", metavar="raise", required=True, parser_class=CliParser
    )
    helptext = "raise a collective alert: one theme across several children or carers, on no child's file"
    p = csub.add_parser("raise", help=helptext, description=helptext, parents=[conn])
    p.set_defaults(run=handler("starter.cli.collective:cmd_collective_raise"))
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


def add_digest_commands(sub: Any, command: Command, conn: CliParser) -> None:
    """``escalate digest send`` (``starter.cli.digest``)."""
    group = command("digest", NEEDS_COMMAND, "the weekly digest of outstanding alerts")
    dsub = group.add_subparsers(dest="digest_command", metavar="send", required=True, parser_class=CliParser)
    helptext = "send the week's digests now (once per week and person)"
    p = dsub.add_parser("send", help=helptext, description=helptext, parents=[conn])
    p.set_defaults(run=handler("starter.cli.digest:cmd_digest_send"))
    p.add_argument("--authority", type=key, help="only this authority (default: every one with a digest)")
    p.add_argument("--week", type=week, help="the ISO week, e.g. 2026-W48 (default: this week)")
    p.add_argument("--dry-run", action="store_true", help="say who would get what; send nothing")


def add_report_command(sub: argparse._SubParsersAction[CliParser]) -> None:
    """``escalate report`` (``starter.cli.report``)."""
    helptext = "a period's report (month, quarter or year) for an authority, some, or all"
    p = sub.add_parser("report", help=helptext, description=helptext)
    p.set_defaults(run=handler("starter.cli.report:cmd_report"))
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--authority", action="append", type=key, help="protocol key (repeatable)")
    who.add_argument("--all", action="store_true", help="every authority, together")
    p.add_argument("--team", action="append", type=key, help="only this team (repeatable)")
    p.add_argument("--period", required=True, help="2026-07 (a month), 2026-Q3 (a quarter) or 2026 (a year)")
    p.add_argument("--format", choices=FORMATS, default="html", help="default html")
    p.add_argument("--output", "-o", type=Path, help="write to this file (default: standard output)")
    p.add_argument("--database-url", help="record store to read (default ESCALATION_DATABASE_URL)")


def add_bpmn_commands(psub: argparse._SubParsersAction[Any]) -> None:
    """``protocol bpmn`` and ``protocol import`` (``starter.cli.bpmn``), under ``escalate protocol``."""
    q = psub.add_parser("bpmn", help="a protocol as BPMN 2.0 XML with its diagram (to stdout)")
    q.add_argument("key", type=key, metavar="AUTHORITY")
    q.add_argument("--track", type=key, help="only this track (default: every track and the other processes)")
    q.set_defaults(run=handler("starter.cli.bpmn:cmd_protocol_bpmn"))
    q = psub.add_parser("import", help="a BPMN 2.0 file as a protocol file (YAML, to stdout)")
    q.add_argument("file", type=Path)
    q.add_argument(
        "--authority",
        type=key,
        help="the authority's key; its protocol file, if any, supplies what the diagram does not say",
    )
    q.set_defaults(run=handler("starter.cli.bpmn:cmd_protocol_import"))
