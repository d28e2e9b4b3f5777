"""Commands beside the escalations: protocols, the working-day calendar, the worker, caught mail."""

from __future__ import annotations

import argparse
import stat
from datetime import date, timedelta
from pathlib import Path

from activities.working_days import WorkingDayCalendar
from protocols import ProtocolError, available_protocols, load_protocol, load_protocol_file
from starter.cli.common import CliError, long_day, one_line
from starter.mail_catcher import caught, plain_text, read_caught, summary_line


async def cmd_protocol_list(args: argparse.Namespace) -> int:
    for key in available_protocols():
        try:
            p = load_protocol(key)
        except ProtocolError as exc:
            print(f"{key}  INVALID: {one_line(str(exc))}")
            continue
        tracks = ", ".join(f"{t.key} ({len(t.stages)} stages)" for t in p.tracks)
        print(f"{key}  {p.authority}  tracks: {tracks}")
    return 0


async def cmd_protocol_show(args: argparse.Namespace) -> int:
    try:
        p = load_protocol(args.key)
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    name = p.role_name
    out = [
        f"{p.key}: {p.authority}",
        f"title: {p.title}",
        f"total formal limit: {p.total_formal_working_days} working days; breach told to: "
        f"{', '.join(name(r) for r in p.breach_notify)}",
        f"bypass: {'allowed' if p.bypass.allowed else 'not allowed'}"
        + (
            f", after a discussion with {', '.join(map(name, p.bypass.prior_discussion_with))}"
            if p.bypass.prior_discussion_with
            else ""
        ),
        f"CAFCASS referral by: {', '.join(map(name, p.cafcass.officer_roles)) or 'nobody'}",
        f"extensions approved by: {name(p.extensions.approved_by)}",
        f"closure days: {', '.join(d.isoformat() for d in p.closure_days) or 'none'}",
        f"service areas: {', '.join(p.service_areas) or 'none'}",
    ]
    for t in p.tracks:
        out.append(f"track {t.key}: {t.name} (raised by {', '.join(map(name, t.officer_roles))})")
        for i, s in enumerate(t.stages, 1):
            days = f"{s.response_working_days} working days" if s.response_working_days else "no set time"
            extras = [x for x in ("formal" if s.formal else "informal", "meeting" if s.meeting else "") if x]
            if s.entry_gate:
                extras.append(
                    f"{s.entry_gate.kind.value} with {', '.join(map(name, s.entry_gate.with_roles))}"
                )
            cc = f"; cc {', '.join(map(name, s.cc))}" if s.cc else ""
            out.append(
                f"  {i}. {s.key}: {s.name} -> {', '.join(map(name, s.to))}{cc}; {days}; {', '.join(extras)}"
            )
        out.append("  categories:")
        out.extend(f"    {i}. {c}" for i, c in enumerate(t.categories, 1))
    print("\n".join(out))
    return 0


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
