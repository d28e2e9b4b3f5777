"""Commands beside the escalations: protocols, the working-day calendar, the worker, caught mail."""

from __future__ import annotations

import argparse
import stat
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from activities.working_days import WorkingDayCalendar
from protocols import ProtocolError, available_protocols, load_protocol, load_protocol_file
from schemas.protocol import RAISING_OFFICER, Protocol, Stage
from starter.cli.common import CliError, long_day, one_line
from starter.cli.processes import protocol_process_lines
from starter.cli.protocol_v2 import protocol_v2_lines
from starter.mail_catcher import caught, plain_text, read_caught, summary_line


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


async def cmd_protocol_list(args: argparse.Namespace) -> int:
    for key in available_protocols():
        try:
            p = load_protocol(key)
        except ProtocolError as exc:
            print(f"{key}  INVALID: {one_line(str(exc))}")
            continue
        tracks = ", ".join(f"{t.key} ({_count(len(t.stages), 'stage')})" for t in p.tracks)
        print(f"{key}  {p.authority}  tracks: {tracks}")
    return 0


async def cmd_protocol_show(args: argparse.Namespace) -> int:
    try:
        p = load_protocol(args.key)
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        print(p.model_dump_json(indent=2))
    else:
        print("\n".join(protocol_lines(p)))
    return 0


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def protocol_lines(p: Protocol) -> list[str]:
    """Every field of a validated protocol, for people: roles by name with the key commands take in [ ]."""

    def who(roles: list[str]) -> str:
        return ", ".join(f"{p.role_name(r)} [{r}]" for r in roles) or "nobody"

    def judges(stage: Stage) -> str:
        if stage.joint_judges:
            return f"{who(stage.joint_judges)} (jointly: all must accept)"
        return who([stage.judged_by])

    out = [
        f"{p.key}: {p.authority} (schema version {p.schema_version})",
        f"title: {p.title}",
        f"source: {one_line(p.source)}",
        "roles (name [key]):",
        *(f"  {name} [{key}]" for key, name in p.roles.items()),
        f"  the raising officer [{RAISING_OFFICER}] (built in)",
        "service areas: " + (", ".join(f"{name} [{key}]" for key, name in p.service_areas.items()) or "none"),
        f"total formal limit: {_count(p.total_formal_working_days, 'working day')}; breach told to: "
        f"{who(p.breach_notify)}",
        f"reminder lead: {_count(p.reminder_lead_working_days, 'working day')} before a deadline",
        f"bypass: {'allowed' if p.bypass.allowed else 'not allowed'}; prior discussion with: "
        f"{who(p.bypass.prior_discussion_with)}; no discussion needed in an emergency: "
        f"{_yes(p.bypass.emergency_exempt)}",
    ]
    if p.bypass.condition:
        out.append(f"  condition: {one_line(p.bypass.condition)}")
    out.append(
        f"CAFCASS referral by: {who(p.cafcass.officer_roles)}; consult first: {who(p.cafcass.consult)}; "
        f"inform: {who(p.cafcass.inform)}"
    )
    if p.cafcass.note:
        out.append(f"  note: {one_line(p.cafcass.note)}")
    out.append(f"extensions approved by: {who([p.extensions.approved_by])}")
    if p.extensions.note:
        out.append(f"  note: {one_line(p.extensions.note)}")
    out += [
        f"timescales: the officer may shorten a stage: {_yes(p.timescales.officer_may_shorten)}; the "
        f"informal stage may run to a longer agreed time: {_yes(p.timescales.informal_may_agree_longer)}",
        "case notes: officer labels: "
        + (", ".join(f"{label} [{role}]" for role, label in p.case_notes.officer_labels.items()) or "none")
        + f"; good practice notes: {p.case_notes.good_practice}",
        f"closure days: {', '.join(d.isoformat() for d in p.closure_days) or 'none'}",
        f"working hours: {p.working_hours.start:%H:%M}-{p.working_hours.end:%H:%M} on working days, "
        f"reminded {_count(p.working_hours.reminder_lead_hours, 'working hour')} before",
        f"child reference: {p.child_ref.pattern} (for example {p.child_ref.example})",
        "cover while a holder is marked absent: "
        + (", ".join(f"{who([r])} by {who([c])}" for r, c in p.cover.items()) or "none"),
        f"a covering officer may be given by: the raising officer; {who(p.officer_cover_by)}",
        f"external roles (named by e-mail address at raise): {who(p.external_roles)}",
        *_recognition(p, who),
    ]
    if p.notes:
        out.append("notes:")
        out.extend(f"  - {one_line(n)}" for n in p.notes)
    for t in p.tracks:
        out.append(f"track {t.key}: {t.name} (raised by {who(t.officer_roles)})")
        out.append("  categories:")
        out.extend(f"    {i}. {c}" for i, c in enumerate(t.categories, 1))
        out.append("  stages:")
        for i, s in enumerate(t.stages, 1):
            days = (
                _count(s.response_working_days, "working day") if s.response_working_days else "no set time"
            )
            if s.response_working_hours:
                days = _count(s.response_working_hours, "working hour")
            out += [
                f"  {i}. {s.key}: {s.name} ({'formal' if s.formal else 'informal'})",
                f"       label: {s.label}; case note type: {s.case_note_type}",
                f"       to: {who(s.to)}; cc: {who(s.cc)}; told in advance: {who(s.told_in_advance)}",
                f"       escalated by: {who(s.escalated_by)}"
                f"{' (they alone)' if s.escalated_by_exclusive else ''}; judged by: {judges(s)}",
                f"       time to answer: {days}; meeting: {_yes(s.meeting)}; "
                f"exceptional: {_yes(s.exceptional)}",
            ]
            gate = s.entry_gate
            if gate:
                note = f" ({one_line(gate.note)})" if gate.note else ""
                out.append(f"       entry gate: {gate.kind.value} with {who(gate.with_roles)}{note}")
            else:
                out.append("       entry gate: none")
            for r in s.routes:
                out.append(f"       route for {r.service_area}: to {who(r.to)}; cc {who(r.cc)}")
            if s.officer_deadline:
                od = s.officer_deadline
                out.append(
                    f"       officer's deadline {od.key}: {od.task}, within {od.time_words} "
                    f"(met by record_step; missed: told {who(['raising_officer', *od.missed_notify])})"
                )
            for st in s.required_steps:
                tell = f"; tell: {', '.join(st.tell)}" if st.tell else ""
                out.append(
                    f"       required step {st.key}: {st.what}, within {st.time_words}{tell}; recorded by "
                    f"{who(st.done_by)}; overdue: told {who(['raising_officer', *st.missed_notify])}"
                )
            if s.note:
                out.append(f"       note: {one_line(s.note)}")
    return out + protocol_v2_lines(p) + protocol_process_lines(p)


PROTOCOL_FILE_MAX = 1024 * 1024
"""A protocol file is a few kilobytes; anything over a mebibyte is not one."""
MAIL_FILE_MAX = 32 * 1024 * 1024
"""The mail catcher accepts messages up to 32 MiB (aiosmtpd's default limit)."""


def _readable_file(path: Path, limit: int, what: str) -> Path:
    """``path`` if it is a regular file of at most ``limit`` bytes; checked before anything reads it."""
    try:
        info = path.stat()
    except OSError as exc:
        raise CliError(f"{path}: cannot read the file ({exc.strerror}): give the path of {what}") from None
    if not stat.S_ISREG(info.st_mode):
        raise CliError(f"{path}: not a regular file: give the path of {what}")
    if info.st_size > limit:
        raise CliError(
            f"{path}: {info.st_size:,} bytes is too large for {what} (at most {limit:,}): check the path"
        )
    return path


async def cmd_protocol_check(args: argparse.Namespace) -> int:
    path = _readable_file(args.file, PROTOCOL_FILE_MAX, "a protocol file (YAML)")
    try:
        p = load_protocol_file(path)
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    n = len(p.tracks)
    print(f"ok: {p.authority}, {n} track{'s' if n != 1 else ''}")
    return 0


async def cmd_calendar_add(args: argparse.Namespace) -> int:
    closure: list[date] = []
    if args.authority:
        try:
            closure = list(load_protocol(args.authority).closure_days)
        except ProtocolError as exc:
            raise CliError(str(exc)) from None
    calendar = WorkingDayCalendar(closure)
    start: date = args.date
    due = calendar.add_working_days(start, args.n)
    counts_from = calendar.next_working_day(start)
    where = f" ({args.authority})" if args.authority else " (England; no authority closure days)"
    print(f"{due.isoformat()}: {long_day(due)} is {args.n} working days after {long_day(start)}{where}")
    if counts_from != start:
        print(
            f"  {start.isoformat()} is not a working day ({calendar.why_not_working(start)}): counted from "
            f"{counts_from.isoformat()}"
        )
    day = start + timedelta(days=1)
    while day <= due:
        why = calendar.why_not_working(day)
        if why and day > counts_from:
            print(f"  skipped {day.isoformat()} {day:%a}: {why}")
        day += timedelta(days=1)
    return 0


async def cmd_worker(args: argparse.Namespace) -> int:
    import worker  # only here: the worker's imports are heavy (see starter.worker_options)

    return await worker.serve(args)


async def cmd_mail(args: argparse.Namespace) -> int:
    """What ``escalate up``'s mail catcher caught: a listing, or one message's plain text."""
    folder = args.folder
    files = caught(folder)
    if args.number is not None:
        if not 1 <= args.number <= len(files):
            raise CliError(
                f"no message {args.number} in {folder}: there are {len(files)} (escalate mail lists them)"
            )
        path = _readable_file(files[args.number - 1], MAIL_FILE_MAX, "a caught message")
        print(plain_text(read_caught(path)))
        return 0
    if not files:
        print(f"no mail caught in {folder}")
        return 0
    numbered = list(enumerate(files, 1))
    for number, path in numbered[-args.last :] if args.last else numbered:
        try:
            print(summary_line(number, read_caught(_readable_file(path, MAIL_FILE_MAX, "a caught message"))))
        except CliError as exc:  # one unreadable file does not hide the others
            print(f"{number:>4}  unreadable: {exc.message}")
    return 0


async def cmd_up(args: argparse.Namespace) -> int:
    """Reached only with options before ``up``: ``main`` hands ``escalate up ...`` to ``starter.local``."""
    raise CliError("`up` takes no connection options: run `escalate up [--with-sample-data]`")


def _recognition(p: Protocol, who: Callable[[list[str]], str]) -> list[str]:
    """Good practice notes, collective alerts and the weekly digest, or that the protocol has none."""
    out = []
    g = p.good_practice
    if g is None:
        out.append("good practice notes: none")
    else:
        out.append(
            f"good practice notes ({g.label}): by {who(g.noted_by)} about {who(g.about)}; "
            f"copied to {who(g.cc)}; on the child's file: {_yes(g.on_file)}"
        )
        o = g.about_officers
        if o is not None:
            out.append(
                f"  about an officer ({who(o.officer_roles)}): by "
                f"{who(o.noted_by) if o.noted_by else 'anyone'}; copied to {who(o.cc)}; "
                "never on a child's file"
            )
    c = p.collective_alerts
    out.append(
        "collective alerts: none"
        if c is None
        else f"collective alerts: led by {who(c.raised_by)} after consulting {who(c.consult)}; at most "
        f"{c.max_subjects} children or carers; never on a child's file"
    )
    d = p.digest
    out.append(
        "weekly digest: none"
        if d is None
        else f"weekly digest (ISO weekday {d.weekday}): to each holder of outstanding alerts: "
        f"{_yes(d.holders)}; every one to: {who(d.everything_to)}"
    )
    return out
