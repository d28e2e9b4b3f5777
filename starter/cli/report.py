"""``escalate report``: a period's report for one or more authorities, or all of them, from the record
store (``--database-url``, ``ESCALATION_DATABASE_URL``, or the embedded stack's SQLite file), as HTML, CSV
or PDF (``app.reporting``). Reads the database only: no Temporal, no worker."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.reporting.periods import BadPeriod, Period
from starter.cli.common import EXIT_UNAVAILABLE, CliError
from starter.read_model import DEFAULT_DATABASE_URL


def _url(args: argparse.Namespace) -> str:
    given = args.database_url or os.environ.get("ESCALATION_DATABASE_URL")
    if given:
        return str(given)
    embedded = Path(DEFAULT_DATABASE_URL.removeprefix("sqlite:///"))
    if embedded.is_file():
        return DEFAULT_DATABASE_URL
    raise CliError(
        "no record store to report from: give --database-url (or set ESCALATION_DATABASE_URL), or run this "
        "where `escalate up` keeps its .data folder"
    )


async def cmd_report(args: argparse.Namespace) -> int:
    from sqlalchemy import create_engine, inspect, make_url
    from sqlalchemy.exc import SQLAlchemyError

    from app.reporting.figures import report_for
    from app.reporting.queries import Scope
    from app.reporting.render import report_csv, report_html, report_pdf
    from protocols import available_protocols

    try:
        period = Period.parse(args.period)
    except BadPeriod as exc:
        raise CliError(f"--period: {exc}") from None
    if args.authority:
        known = available_protocols()
        unknown = [a for a in args.authority if a not in known]
        if unknown:
            raise CliError(f"--authority: no protocol {unknown[0]!r}; choose one of: {', '.join(known)}")
    if args.format == "pdf" and args.output is None and sys.stdout.isatty():
        raise CliError("--format pdf writes binary: give --output FILE (or redirect standard output)")
    url = _url(args)
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    if file and file != ":memory:" and not Path(file).is_file():
        raise CliError(f"no record store at {shown}", EXIT_UNAVAILABLE)
    scope = Scope(
        authorities=None if args.all else tuple(dict.fromkeys(args.authority)),
        teams=frozenset(args.team) if args.team else None,
    )
    engine = create_engine(parsed)
    try:
        if not inspect(engine).has_table("escalation_events"):
            raise CliError(f"{shown} is not a record store (no escalation_events table)", EXIT_UNAVAILABLE)
        report = report_for(engine, scope, period)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CliError(f"cannot read the record store {shown}: {reason}", EXIT_UNAVAILABLE) from None
    finally:
        engine.dispose()
    content: bytes
    if args.format == "pdf":
        content = report_pdf(report)
    elif args.format == "csv":
        content = report_csv(report).encode()
    else:
        content = report_html(report).encode()
    if args.output is not None:
        try:
            args.output.write_bytes(content)
        except OSError as exc:
            raise CliError(f"--output: cannot write {args.output}: {exc.strerror}") from None
        print(f"{report.title}, {report.period}: written to {args.output}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
    return 0
