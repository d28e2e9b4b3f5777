"""The ``escalate`` argument parser: every command, its options and the function that runs it.

Building it imports nothing beyond the standard library and ``starter.cli.options``: each command's function
is named as ``"module:function"`` (``options.handler``) and its module imported only when that command runs,
so ``escalate --help`` and ``escalate status`` do not pay for reports, BPMN, the digest or raising.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from starter import worker_options
from starter.cli.options import (
    CALENDAR_DAYS,
    DEFAULT_WAIT_S,
    LIST_SOURCES,
    PROG,
    SEQUENCES,
    CliParser,
    any_date,
    category_text,
    coming_date,
    count,
    escalation_id,
    free_text,
    handler,
    key,
    past_date,
    wait_seconds,
    whole_number,
)
from starter.cli.parser_groups import (
    add_bpmn_commands,
    add_collective_commands,
    add_digest_commands,
    add_good_practice_commands,
    add_process_commands,
    add_report_command,
)
from starter.mail_folders import MAIL_DIR

ACTING = "starter.cli.acting"
ACTIONS = "starter.cli.actions"
READING = "starter.cli.reading"
TOOLS = "starter.cli.tools"


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(prog=PROG, description="Raise, follow and act on escalations.")
    conn = CliParser(add_help=False)
    conn.add_argument("--address", default=argparse.SUPPRESS, help="Temporal frontend (TEMPORAL_ADDRESS)")
    conn.add_argument(
        "--namespace", default=argparse.SUPPRESS, help="Temporal namespace (TEMPORAL_NAMESPACE)"
    )
    conn.add_argument(
        "--wait",
        type=wait_seconds,
        default=argparse.SUPPRESS,
        help="seconds to wait for an answer (1 to 300; default 30)",
    )
    parser.add_argument("--address", default=None, help="Temporal frontend (default TEMPORAL_ADDRESS)")
    parser.add_argument("--namespace", default=None, help="Temporal namespace (default TEMPORAL_NAMESPACE)")
    parser.add_argument(
        "--wait",
        type=wait_seconds,
        default=DEFAULT_WAIT_S,
        help="seconds to wait for an answer (1 to 300; default 30)",
    )
    actor = CliParser(add_help=False)
    actor.add_argument(
        "--as-id", help="your staff reference in the directory (default ESCALATE_AS_ID)", type=key
    )
    actor.add_argument(
        "--as-role",
        help="which of your directory roles to act in (default ESCALATE_AS_ROLE; else the one that may)",
        type=key,
    )
    ident = CliParser(add_help=False)
    ident.add_argument("id", help="escalation id, e.g. wigan-C4F2A9-0003", type=escalation_id)

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=CliParser)

    def command(name: str, run: str, helptext: str, *parents: CliParser) -> argparse.ArgumentParser:
        """Subcommand ``name``, run by the function ``run`` names (``"module:function"``)."""
        p = sub.add_parser(name, help=helptext, description=helptext, parents=list(parents))
        p.set_defaults(run=handler(run))
        return p

    p = command("raise", f"{ACTING}:cmd_raise", "raise a concern: start an escalation", conn)
    p.add_argument(
        "--authority", help="protocol key, e.g. gloucestershire (default: the officer's own)", type=key
    )
    p.add_argument(
        "--track", help="track key (default: the one track the officer's role raises on)", type=key
    )
    p.add_argument(
        "--category",
        required=True,
        help="the category's text, or its number (protocol show)",
        type=category_text,
    )
    p.add_argument("--child-ref", required=True, help="the child's opaque reference (never a name)", type=key)
    naming = p.add_mutually_exclusive_group()
    naming.add_argument(
        "--request-id",
        type=key,
        help="this request's id: the same id again returns the escalation it raised, never a second "
        "(default: a new one, printed if the raise may need retrying)",
    )
    naming.add_argument(
        "--sequence",
        type=whole_number(*SEQUENCES),
        help="name the escalation <authority>-<child>-<sequence> instead (1 to 9999)",
    )
    p.add_argument("--team", type=key)
    p.add_argument("--service-area", type=key)
    p.add_argument(
        "--officer-id", "--as-id", dest="as_id", help="raising officer (default ESCALATE_AS_ID)", type=key
    )
    p.add_argument(
        "--officer-role", "--as-role", dest="as_role", help="their role (default ESCALATE_AS_ROLE)", type=key
    )
    p.add_argument("--summary", required=True, help="what the concern is", type=free_text)
    p.add_argument("--impact", required=True, help="its impact on the child", type=free_text)
    p.add_argument("--request", required=True, help="what is asked of the recipient", type=free_text)
    p.add_argument("--child-views", help="the child's views, if recorded", type=free_text)
    p.add_argument(
        "--external-contact",
        action="append",
        metavar="'ROLE=Name <address>'",
        help="the holder of an external role a stage goes to (a partner agency's manager); repeatable",
    )
    p.add_argument("--parents-views", help="the parents' (or carers') views, if recorded", type=free_text)
    p.add_argument(
        "--child-status",
        help="the child's status (required where the protocol declares them: protocol show)",
        type=key,
    )
    p.add_argument(
        "--severity",
        help="the concern's severity, where the protocol declares them (protocol show)",
        type=key,
    )
    p.add_argument(
        "--start-at-stage",
        help="begin at this stage: an entry point the concern meets, or else a bypass at the start",
        type=key,
    )
    p.add_argument("--bypass-reason", type=free_text)
    p.add_argument("--emergency", action="store_true")
    p.add_argument("--discussed-with", help="role the bypass was discussed with first", type=key)
    p.add_argument(
        "--consulted-with",
        metavar="ROLE",
        help="where the stage it starts at needs a consultation (or agreement) first: the role consulted",
        type=key,
    )
    p.add_argument("--consulted-on", metavar="DATE", help="the day the consultation was held", type=past_date)
    p.add_argument("--consultation", metavar="TEXT", help="what was discussed and concluded", type=free_text)
    p.add_argument(
        "--consultation-agreed", action="store_true", help="the role consulted agreed (an agreement gate)"
    )
    p.add_argument(
        "--part-of", metavar="ID", help="the collective alert this escalation belongs to", type=key
    )

    p = command(
        "respond", f"{ACTIONS}:cmd_respond", "answer the concern (the stage's recipient)", ident, actor, conn
    )
    p.add_argument("--answer", required=True, type=free_text)
    p.add_argument("--action-plan", type=free_text)
    p.add_argument("--action-plan-due", type=coming_date, metavar="DATE")
    p.add_argument(
        "--on-behalf-of",
        metavar="ROLE",
        type=key,
        help="the officer records the answer of a recipient outside the directory (their role key)",
    )

    p = command(
        "request-extension", f"{ACTIONS}:cmd_request_extension", "ask for more time", ident, actor, conn
    )
    p.add_argument("--until", type=coming_date, required=True, metavar="DATE")
    p.add_argument("--reason", required=True, type=free_text)

    p = command(
        "decide-extension",
        f"{ACTIONS}:cmd_decide_extension",
        "approve or decline more time",
        ident,
        actor,
        conn,
    )
    choice = p.add_mutually_exclusive_group(required=True)
    choice.add_argument("--approve", dest="approve", action="store_true")
    choice.add_argument("--decline", action="store_true")
    p.add_argument("--reason", type=free_text)
    p.add_argument("--exceed-total-limit", action="store_true", help="let the date pass the total limit")

    p = command("set-timescale", f"{ACTIONS}:cmd_set_timescale", "set this stage's time", ident, actor, conn)
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--working-days", type=count)
    when.add_argument("--until", type=coming_date, metavar="DATE")
    p.add_argument("--reason", required=True, type=free_text)

    p = command(
        "accept",
        f"{ACTIONS}:cmd_accept",
        "the answer resolves it (or agree an action plan)",
        ident,
        actor,
        conn,
    )
    p.add_argument("--note", type=free_text)
    p.add_argument("--action-plan", type=free_text)
    p.add_argument("--action-plan-due", type=coming_date, metavar="DATE")

    p = command(
        "escalate", f"{ACTIONS}:cmd_escalate", "the answer does not address the concern", ident, actor, conn
    )
    p.add_argument("--reason", required=True, type=free_text)
    p.add_argument(
        "--exceptional",
        action="store_true",
        help="the circumstances are exceptional: needed to escalate into a stage kept for them (say why)",
    )

    p = command("bypass", f"{ACTIONS}:cmd_bypass", "jump to a later stage", ident, actor, conn)
    p.add_argument("--to-stage", required=True, type=key)
    p.add_argument("--reason", required=True, type=free_text)
    p.add_argument("--emergency", action="store_true")
    p.add_argument("--discussed-with", metavar="ROLE", type=key)

    p = command("refer-cafcass", f"{ACTIONS}:cmd_refer_cafcass", "refer to CAFCASS", ident, actor, conn)
    p.add_argument("--reason", required=True, type=free_text)
    p.add_argument("--consulted", nargs="+", metavar="ROLE", default=[], type=key)

    p = command(
        "record-consultation",
        f"{ACTIONS}:cmd_record_consultation",
        "record a consultation",
        ident,
        actor,
        conn,
    )
    p.add_argument("--stage", required=True, help="the gated stage it opens", type=key)
    p.add_argument("--with-role", required=True, type=key)
    agreed = p.add_mutually_exclusive_group()
    agreed.add_argument("--agreed", dest="agreed", action="store_const", const=True, default=None)
    agreed.add_argument("--not-agreed", dest="agreed", action="store_const", const=False)
    p.add_argument("--summary", required=True, type=free_text)
    p.add_argument("--held-on", type=past_date, metavar="DATE", help="the day it was held (default: today)")

    p = command(
        "record-meeting", f"{ACTIONS}:cmd_record_meeting", "record a stage's meeting", ident, actor, conn
    )
    p.add_argument("--held-on", type=past_date, required=True, metavar="DATE")
    p.add_argument("--attendee", action="append", required=True, help="repeat for each attendee", type=key)
    p.add_argument("--outcome", required=True, type=free_text)

    p = command(
        "replace-officer",
        f"{ACTIONS}:cmd_replace_officer",
        "hand the escalation to a covering officer (the officer, or a role the protocol allows)",
        ident,
        actor,
        conn,
    )
    p.add_argument("--new-officer-id", required=True, type=key, metavar="ID")
    p.add_argument("--new-officer-role", required=True, type=key, metavar="ROLE")
    p.add_argument("--reason", required=True, type=free_text)

    p = command("withdraw", f"{ACTIONS}:cmd_withdraw", "withdraw the escalation", ident, actor, conn)
    p.add_argument("--reason", required=True, type=free_text)
    p = command("close", f"{ACTIONS}:cmd_close", "close an exhausted escalation", ident, actor, conn)
    p.add_argument("--reason", required=True, type=free_text)
    p = command("note", f"{ACTIONS}:cmd_note", "add a note", ident, actor, conn)
    p.add_argument("--text", required=True, type=free_text)
    p = command(
        "views",
        f"{ACTIONS}:cmd_views",
        "record the child's, a parent's or a carer's views",
        ident,
        actor,
        conn,
    )
    p.add_argument("--whose", choices=["child", "parent", "carer"], required=True)
    p.add_argument("--views", required=True, type=free_text)
    p = command(
        "step",
        f"{ACTIONS}:cmd_step",
        "record an officer's task or a stage's required step as done",
        ident,
        actor,
        conn,
    )
    p.add_argument("step", type=key, help="the step's key in the protocol (protocol show lists them)")
    p.add_argument(
        "--told",
        action="append",
        default=[],
        choices=["child", "parents", "carers", "family", "advocate"],
        help="who was told; repeat for each",
    )
    p.add_argument(
        "--how", choices=["in_person", "phone", "video_call", "letter", "email", "text_message", "other"]
    )
    p.add_argument("--note", default="", type=free_text)

    p = command("status", f"{READING}:cmd_status", "where an escalation stands", ident, actor, conn)
    p.add_argument("--json", action="store_true", help="the whole state as JSON")
    command("history", f"{READING}:cmd_history", "the timeline, one line per event", ident, actor, conn)
    command("actions", f"{READING}:cmd_actions", "what you may do now", ident, actor, conn)
    p = command(
        "list", f"{READING}:cmd_list", "list the escalations you may see, soonest deadline first", actor, conn
    )
    p.add_argument("--authority", type=key)
    p.add_argument("--stage", help="stage key", type=key)
    p.add_argument("--status", help="e.g. awaiting_response", type=key)
    p.add_argument("--overdue", action="store_true")
    p.add_argument("--open", action="store_true", help="only escalations that have not ended")
    p.add_argument("--source", choices=LIST_SOURCES, default="auto", help="where to read (default auto)")
    p.add_argument("--database-url", help="record store to read (default ESCALATION_DATABASE_URL)")

    p = command("protocol", f"{TOOLS}:cmd_protocol_list", "authorities' protocols")
    psub = p.add_subparsers(
        dest="protocol_command",
        metavar="list|show|check|upgrade|bpmn|import",
        required=True,
        parser_class=CliParser,
    )
    psub.add_parser("list", help="every protocol").set_defaults(run=handler(f"{TOOLS}:cmd_protocol_list"))
    q = psub.add_parser("show", help="every field of one protocol, with the role keys commands take")
    q.add_argument("key", type=key)
    q.add_argument("--json", action="store_true", help="the whole validated protocol as JSON")
    q.set_defaults(run=handler(f"{TOOLS}:cmd_protocol_show"))
    q = psub.add_parser("check", help="validate a protocol file")
    q.add_argument("file", type=Path)
    q.set_defaults(run=handler(f"{TOOLS}:cmd_protocol_check"))
    q = psub.add_parser("upgrade", help="rewrite a version-1 protocol file as version 2 (to stdout)")
    q.add_argument("file", type=Path)
    q.add_argument("--write", action="store_true", help="rewrite the file in place instead")
    q.set_defaults(run=handler("starter.cli.protocol_v2:cmd_protocol_upgrade"))
    add_bpmn_commands(psub)

    p = command(
        "directory",
        "starter.cli.directory:cmd_directory_sync",
        "the staff directory the worker addresses notices from",
    )
    dsub = p.add_subparsers(dest="directory_command", metavar="sync", required=True, parser_class=CliParser)
    q = dsub.add_parser(
        "sync",
        parents=[conn],
        help="reload the directory files on the worker, then send stalled escalations' held notices",
    )
    q.add_argument(
        "--authority", action="append", type=key, help="only this authority (repeatable; default: all)"
    )
    q.set_defaults(run=handler("starter.cli.directory:cmd_directory_sync"))

    p = command("calendar", f"{TOOLS}:cmd_calendar_add", "the working-day calendar")
    csub = p.add_subparsers(
        dest="calendar_command", metavar="add-working-days", required=True, parser_class=CliParser
    )
    q = csub.add_parser("add-working-days", help="the date N working days after DATE")
    q.add_argument("date", type=any_date)
    q.add_argument("n", type=whole_number(*CALENDAR_DAYS), metavar="N")
    q.add_argument("--authority", help="count the authority's closure days too", type=key)
    q.set_defaults(run=handler(f"{TOOLS}:cmd_calendar_add"))

    p = command("worker", f"{TOOLS}:cmd_worker", "run a worker until Ctrl-C (as python worker.py)", conn)
    worker_options.add_arguments(p)
    p = command("mail", f"{TOOLS}:cmd_mail", "read the mail escalate up caught: a list, or message N")
    p.add_argument("number", nargs="?", type=int, metavar="N", help="show message N's plain text")
    p.add_argument("--last", type=count, default=20, help="list only the last N (0 for all; default 20)")
    p.add_argument("--folder", type=Path, default=MAIL_DIR, help=f"where caught mail is (default {MAIL_DIR})")
    command("up", f"{TOOLS}:cmd_up", "run the whole service locally (escalate up --help)")
    add_process_commands(sub, command, conn, actor)
    add_good_practice_commands(sub, command, conn, actor)
    add_collective_commands(sub, command, conn)
    add_digest_commands(sub, command, conn)
    add_report_command(sub)
    return parser
