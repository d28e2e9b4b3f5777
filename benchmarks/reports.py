"""How long reports and the dashboard take at scale, on PostgreSQL.

    .venv/bin/python benchmarks/reports.py            # a throwaway PostgreSQL cluster of its own
    .venv/bin/python benchmarks/reports.py --database-url postgresql+psycopg2://...   # an empty database

Writes a year of a large authority (Wigan's protocol: 2,000 escalations, about 20,000 events) through the
record store's write path (one transaction per event, as the worker writes), then grows it to 10 times,
50 times (100,000 escalations) and 100 times that volume by copying those rows in SQL under new ids (the
same rows the write path wrote; writing 2 million events one transaction each would take hours). At each
size it times the year's report (``report_for``: the figures, best of three) and its HTML, and at 100,000
escalations the dashboard page as a supervisor's browser gets it (``GET /dashboard`` through the web app,
signed in; the page reads only the database). Prints the figures; exits 0, or 2 if PostgreSQL cannot start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

import httpx
from sqlalchemy import Engine, func, select, text
from temporalio.client import Client

from activities.db.record_models import EscalationEvent, EscalationRecord
from activities.db_records import DbRecordStore
from app.audit import AuditLog
from app.identity import People
from app.reporting.figures import report_for
from app.reporting.periods import Period
from app.reporting.queries import Scope
from app.reporting.render import report_html
from app.service import Application
from benchmarks.options import whole_number
from starter.web.app import create_app
from starter.web.settings import WebSettings
from tests.postgres_server import _admin, _Cluster, find_postgres_bin
from tests.report_data import escalation_lives
from tests.temporal_servers import free_port

AUTHORITY = "wigan"
SUPERVISOR = "wigan/wig-head-of-service"
EVENT_COLUMNS = (
    "escalation_id, seq, run_id, authority, child_ref, track, stage, status, kind, at, actor_id, "
    "actor_role, text, data, recorded_at"
)
RECORD_COLUMNS = (
    "escalation_id, run_id, authority, track, category, service_area, stage, stage_name, stage_number, "
    "formal, status, deadline, deadline_date, total_deadline_date, held_by, raised_by_id, raised_by_role, "
    "raised_at, child_ref, team, flags, last_seq, concern_summary, impact_on_child, requested_action, "
    "child_views, parents_views, updated_at"
)


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    bindir = find_postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries not found (Debian's 'postgresql' package)")
    cluster = _Cluster(bindir)
    try:
        cluster.init()
        cluster.port = free_port()
        cluster.start()
        _admin(cluster.url(), 'CREATE DATABASE "escalations"')
        yield cluster.url()
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


def write_year(store: DbRecordStore, escalations: int, ending: datetime) -> tuple[int, float]:
    started = time.perf_counter()
    written = 0
    for events in escalation_lives(escalations, prefix="bench", ending=ending, authorities=(AUTHORITY,)):
        for event in events:
            store.append_event(event)
            written += 1
    return written, time.perf_counter() - started


def grow_to(engine: Engine, copies: int, have: int) -> float:
    """Copy the written year's rows under new ids until there are ``copies`` of it; seconds taken."""
    if copies <= have:
        return 0.0
    started = time.perf_counter()
    id_of = "escalation_id || '-x' || g"
    events_from = EVENT_COLUMNS.replace("escalation_id,", f"{id_of},", 1)
    records_from = RECORD_COLUMNS.replace("escalation_id,", f"{id_of},", 1)
    base = "escalation_id NOT LIKE '%-x%'"
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO escalations ({RECORD_COLUMNS}) SELECT {records_from} FROM escalations "
                f"CROSS JOIN generate_series(:first, :last) AS g WHERE {base}"
            ),
            {"first": have, "last": copies - 1},
        )
        conn.execute(
            text(
                f"INSERT INTO escalation_events ({EVENT_COLUMNS}) SELECT {events_from} "
                f"FROM escalation_events CROSS JOIN generate_series(:first, :last) AS g WHERE {base}"
            ),
            {"first": have, "last": copies - 1},
        )
    analyze(engine)
    return time.perf_counter() - started


def analyze(engine: Engine) -> None:
    """Table statistics, as autovacuum keeps them on a live database (without them the planner guesses)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE escalations"))
        conn.execute(text("ANALYZE escalation_events"))


def sizes(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        escalations = conn.execute(select(func.count()).select_from(EscalationRecord)).scalar_one()
        events = conn.execute(select(func.count()).select_from(EscalationEvent)).scalar_one()
    return int(escalations), int(events)


def time_report(engine: Engine, period: Period, runs: int) -> tuple[float, float, int]:
    """Best-of-``runs`` seconds for the figures and for the HTML; the escalations raised in the period."""
    scope = Scope(authorities=(AUTHORITY,))
    best_figures = best_html = float("inf")
    raised = 0
    for _ in range(runs):
        started = time.perf_counter()
        report = report_for(engine, scope, period)
        best_figures = min(best_figures, time.perf_counter() - started)
        started = time.perf_counter()
        report_html(report)
        best_html = min(best_html, time.perf_counter() - started)
        raised = report.raised
    return best_figures, best_html, raised


async def time_dashboard(engine: Engine, runs: int) -> tuple[float, int]:
    """Best-of-``runs`` seconds for ``GET /dashboard`` signed in as a supervisor; the outstanding count."""
    # The dashboard reads only the database: this Application is never asked to reach Temporal.
    application = Application(client=cast(Client, None), people=People.load(), audit=AuditLog(engine))
    web = create_app(application, WebSettings(session_secret="benchmark-" + "s" * 40))
    best = float("inf")
    outstanding = 0
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="https://bench") as client:
        form = (await client.get("/sign-in")).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert csrf, "the sign-in page has its CSRF token"
        done = await client.post(
            "/sign-in/development", data={"person": SUPERVISOR, "csrf_token": csrf.group(1)}
        )
        assert done.status_code == 303, done.text
        for _ in range(runs):
            started = time.perf_counter()
            page = await client.get("/dashboard")
            best = min(best, time.perf_counter() - started)
            assert page.status_code == 200, page.text[:500]
            found = re.search(r'id="count-outstanding">(\d+)<', page.text)
            outstanding = int(found.group(1)) if found else -1
    return best, outstanding


def run(url: str, escalations: int, runs: int) -> None:
    ending = datetime.now(UTC)
    period = Period.parse(str(ending.year))
    store = DbRecordStore.open(url)
    engine = store.engine
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar_one()
    print(f"PostgreSQL {version}; the year: {period.label} (to {ending:%d %B %Y})")
    written, took = write_year(store, escalations, ending)
    analyze(engine)
    print(f"wrote {escalations:,} escalations, {written:,} events through the write path in {took:.1f} s")
    have = 1
    for copies in (1, 10, 50, 100):
        grown = grow_to(engine, copies, have)
        have = max(have, copies)
        total, events = sizes(engine)
        if grown:
            print(f"  copied to {copies}x in {grown:.1f} s")
        if copies != 50:
            figures, html, raised = time_report(engine, period, runs)
            print(
                f"{copies:>3}x: {total:>9,} escalations, {events:>10,} events | year report "
                f"({raised:,} raised in {period.label}): figures {figures:.3f} s, HTML {html:.3f} s"
            )
        if copies == 50:
            seconds, outstanding = asyncio.run(time_dashboard(engine, runs))
            print(
                f" 50x: {total:>9,} escalations, {events:>10,} events | dashboard page "
                f"({outstanding:,} outstanding): {seconds:.3f} s"
            )
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: a throwaway cluster)")
    parser.add_argument(
        "--escalations", type=whole_number(10, 100_000), default=2000, help="in the year (default 2000)"
    )
    parser.add_argument(
        "--runs", type=whole_number(1, 20), default=3, help="timed runs, best kept (default 3)"
    )
    args = parser.parse_args(argv)
    if args.database_url:
        run(args.database_url, args.escalations, args.runs)
        return 0
    try:
        with throwaway_postgres() as url:
            run(url, args.escalations, args.runs)
    except RuntimeError as exc:
        print(f"PostgreSQL could not start: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
