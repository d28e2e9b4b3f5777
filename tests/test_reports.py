"""Period reports: every figure checked against an independent count from the event log.

A realistic year (60 escalations for each of the five seed authorities, with their events, good practice
notes and collective alerts) is written once per database through the record store's write path, on
SQLite and on PostgreSQL. Each report figure is then counted again here the slow, obvious way: every event
and state row read into Python and walked escalation by escalation, working days counted day by day with
``WorkingDayCalendar``. Also: periods in London time, scopes (one authority, teams, all), the command
line's formats and its errors.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.db.record_models import EscalationEvent, EscalationRecord
from activities.db_records import DbRecordStore
from activities.working_days import WorkingDayCalendar, london_date
from app.reporting.days import stage_name
from app.reporting.figures import Report, _status_label, authority_label, report_for, track_label
from app.reporting.periods import BadPeriod, Period
from app.reporting.queries import Scope
from protocols import load_protocol
from schemas.effects import EscalationSnapshot, RecordEventInput
from schemas.escalation import Actor, EventKind, Status, TimelineEntry
from tests.cli_runner import ESCALATE
from tests.postgres_server import fresh_database
from tests.report_data import AUTHORITIES, year_of_escalations

CLOSED = {"resolved", "withdrawn", "referred_to_cafcass", "closed"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DbRecordStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('reports') / 'records.db'}"
        opened = DbRecordStore.open(url)
        year_of_escalations(opened, per_authority=60, notes_per_authority=6)
        yield opened
        opened.engine.dispose()
        return
    with fresh_database(request.getfixturevalue("postgres_url")) as url:
        opened = DbRecordStore.open(url)
        year_of_escalations(opened, per_authority=60, notes_per_authority=6)
        yield opened
        opened.engine.dispose()


def _everything(store: DbRecordStore) -> tuple[list[EscalationEvent], list[EscalationRecord]]:
    with Session(store.engine) as session:
        events = list(session.scalars(select(EscalationEvent)))
        records = list(session.scalars(select(EscalationRecord)))
        session.expunge_all()
    return events, records


def _taken(authority: str, start: date, end: date) -> int:
    calendar = WorkingDayCalendar(load_protocol(authority).closure_days)
    return len(calendar.working_days_between(start, end))


def _expected(
    events: list[EscalationEvent], records: list[EscalationRecord], scope: Scope, period: Period
) -> dict[str, Any]:
    """The report's figures, counted from the event log by walking every escalation."""
    state = {(r.escalation_id, r.run_id): r for r in records}
    several = scope.authorities is None or len(scope.authorities) > 1

    def mine(e: EscalationEvent) -> bool:
        if scope.authorities is not None and e.authority not in scope.authorities:
            return False
        if scope.teams is not None:
            r = state.get((e.escalation_id, e.run_id))
            return r is not None and r.team in scope.teams
        return True

    def prefix(a: str) -> str:
        return f"{authority_label(a)}: " if several else ""

    lives: dict[tuple[str, str], list[EscalationEvent]] = defaultdict(list)
    for e in events:
        if mine(e):
            lives[(e.escalation_id, e.run_id)].append(e)
    for life in lives.values():
        life.sort(key=lambda e: e.seq)

    def within(e: EscalationEvent, p: Period) -> bool:
        return p.start <= e.at < p.end

    def counted(p: Period, kind: str) -> list[EscalationEvent]:
        return [e for life in lives.values() for e in life if e.kind == kind and within(e, p)]

    def outstanding(p: Period) -> list[EscalationRecord]:
        found = []
        for key, life in lives.items():
            r = state.get(key)
            if r is None or r.raised_at >= p.end:
                continue
            if not any(e.status in CLOSED and e.at < p.end for e in life):
                found.append(r)
        return found

    raised = counted(period, "raised")
    by_category: Counter[str] = Counter()
    by_track: Counter[str] = Counter()
    by_team: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    for e in raised:
        r = state[(e.escalation_id, e.run_id)]
        by_category[r.category] += 1
        by_track[prefix(e.authority) + track_label(e.authority, e.track)] += 1
        by_team[prefix(e.authority) + (r.team or "No team")] += 1
        by_status[_status_label(e.authority, e.data.get("child_status"))] += 1
    resolved = counted(period, "resolved")
    by_stage: Counter[str] = Counter(
        prefix(e.authority) + f"{track_label(e.authority, e.track)}: "
        f"{stage_name(e.authority, e.track, e.stage)}"
        for e in resolved
    )
    days = []
    within_stage = within_total = 0
    for e in resolved:
        r = state[(e.escalation_id, e.run_id)]
        days.append(_taken(e.authority, london_date(r.raised_at), london_date(e.at)))
        before = [x.kind for x in lives[(e.escalation_id, e.run_id)] if x.seq < e.seq]
        within_stage += "deadline_passed" not in before
        within_total += "breached" not in before
    still = outstanding(period)
    ages = [_taken(r.authority, london_date(r.raised_at), period.last) for r in still]
    decided = counted(period, "extension_decided")
    ordered = sorted(days)
    return {
        "raised": len(raised),
        "collective_alerts": sum(
            1 for e in raised if "collective" in state[(e.escalation_id, e.run_id)].flags
        ),
        "raised_by_category": dict(by_category),
        "raised_by_track": dict(by_track),
        "raised_by_team": dict(by_team),
        "raised_by_child_status": dict(by_status),
        "resolved": len(resolved),
        "resolved_by_stage": dict(by_stage),
        "escalated": len(counted(period, "escalated")),
        "bypassed": len(counted(period, "bypassed")),
        "extended": sum(1 for e in decided if e.data.get("approved") is True),
        "extensions_declined": sum(1 for e in decided if e.data.get("approved") is not True),
        "referred_to_cafcass": len(counted(period, "cafcass_referral")),
        "withdrawn": len(counted(period, "withdrawn")),
        "exhausted": len(counted(period, "exhausted")),
        "breaches": len(counted(period, "breached")),
        "stage_deadlines_passed": len(counted(period, "deadline_passed")),
        "compliments": len(counted(period, "good_practice_noted")),
        "median_working_days": statistics.median(days) if days else None,
        "p90_working_days": ordered[math.ceil(0.9 * len(ordered)) - 1] if ordered else None,
        "resolved_within_stage_timescales": within_stage,
        "resolved_within_total_limit": within_total,
        "outstanding_at_end": len(still),
        "outstanding_ages": sorted(ages),
        "outstanding_median_age": statistics.median(ages) if ages else None,
        "outstanding_oldest_age": max(ages) if ages else None,
        "trend": [
            {
                "period": p.label,
                "raised": len(counted(p, "raised")),
                "resolved": len(counted(p, "resolved")),
                "breaches": len(counted(p, "breached")),
                "outstanding_at_end": len(outstanding(p)),
            }
            for p in [*period.previous(4), period]
        ],
    }


def _as_counted(report: Report) -> dict[str, Any]:
    got = report.model_dump()
    for name in (
        "raised_by_category",
        "raised_by_track",
        "raised_by_team",
        "raised_by_child_status",
        "resolved_by_stage",
    ):
        got[name] = {c["label"]: c["count"] for c in got[name]}
    bands = {c["label"]: c["count"] for c in got.pop("outstanding_by_age")}
    got["outstanding_bands"] = bands
    return got


def _bands(ages: list[int]) -> dict[str, int]:
    bands = {
        "0 to 5 working days": 0,
        "6 to 20 working days": 0,
        "21 to 40 working days": 0,
        "41 to 65 working days": 0,
        "66 or more working days": 0,
    }
    for age in ages:
        label = next(
            k
            for k, (lo, hi) in zip(bands, ((0, 5), (6, 20), (21, 40), (41, 65), (66, 10**6)), strict=True)
            if lo <= age <= hi
        )
        bands[label] += 1
    return bands


CASES = [
    (Scope(authorities=("wigan",)), "2026-Q3"),
    (Scope(authorities=("gloucestershire",)), "2026-07"),
    (Scope(), "2026"),
    (Scope(authorities=("wigan", "dudley")), "2026-Q1"),
    (Scope(authorities=("wigan",), teams=frozenset({"team-a"})), "2026"),
    (Scope(authorities=("waltham-forest",)), "2026"),
]


@pytest.mark.parametrize(("scope", "period"), CASES, ids=[f"{s.authorities}-{s.teams}-{p}" for s, p in CASES])
def test_every_figure_matches_the_event_log(store: DbRecordStore, scope: Scope, period: str) -> None:
    events, records = _everything(store)
    wanted = Period.parse(period)
    expected = _expected(events, records, scope, wanted)
    got = _as_counted(report_for(store.engine, scope, wanted))
    assert got["outstanding_bands"] == _bands(expected.pop("outstanding_ages"))
    for name, value in expected.items():
        assert got[name] == value, name
    assert got["raised"] > 0 and got["resolved"] > 0


def test_the_year_has_every_kind_of_figure(store: DbRecordStore) -> None:
    """The data set is realistic enough that no figure is checked only at zero."""
    report = report_for(store.engine, Scope(), Period.parse("2026"))
    for name in (
        "raised",
        "collective_alerts",
        "resolved",
        "escalated",
        "bypassed",
        "extended",
        "extensions_declined",
        "referred_to_cafcass",
        "withdrawn",
        "breaches",
        "stage_deadlines_passed",
        "compliments",
        "outstanding_at_end",
    ):
        assert getattr(report, name) > 0, name
    assert 0 < report.resolved_within_stage_timescales < report.resolved
    assert len(report.raised_by_child_status) > 2 and len(report.resolved_by_stage) > 5
    assert report.authorities == sorted(authority_label(a) for a in AUTHORITIES)


def _one(
    store: DbRecordStore, escalation_id: str, at: datetime, kinds: list[tuple[EventKind, Status]]
) -> None:
    p = load_protocol("wigan")
    track = p.tracks[0]
    stage = track.stages[0]
    officer = Actor(id="wig-iro-a", role="iro")
    for seq, (kind, status) in enumerate(kinds, start=1):
        store.append_event(
            RecordEventInput(
                escalation_id=escalation_id,
                authority="wigan",
                child_ref="C000001",
                track=track.key,
                status=status,
                stage=stage.key,
                entry=TimelineEntry(
                    seq=seq, at=at + timedelta(minutes=seq), kind=kind, actor=officer, stage=stage.key
                ),
                snapshot=EscalationSnapshot(
                    category=track.categories[0],
                    team="team-z",
                    raised_by=officer,
                    raised_at=at,
                    stage_name=stage.name,
                    stage_number=1,
                    formal=stage.formal,
                ),
            )
        )


def test_periods_are_london_time(tmp_path: Path) -> None:
    store = DbRecordStore.open(f"sqlite:///{tmp_path / 'edge.db'}")
    late = datetime(2026, 9, 30, 22, 30, tzinfo=UTC)  # 23:30 on 30 September in London (BST)
    _one(store, "edge-1", late, [(EventKind.RAISED, Status.AWAITING_RESPONSE)])
    _one(
        store,
        "edge-2",
        datetime(2026, 9, 30, 23, 30, tzinfo=UTC),
        [(EventKind.RAISED, Status.AWAITING_RESPONSE)],
    )
    scope = Scope(authorities=("wigan",), teams=frozenset({"team-z"}))
    q3 = report_for(store.engine, scope, Period.parse("2026-Q3"))
    q4 = report_for(store.engine, scope, Period.parse("2026-Q4"))
    assert (q3.raised, q4.raised) == (1, 1)
    assert q3.outstanding_at_end == 1 and q4.outstanding_at_end == 2
    assert Period.parse("2026-Q3").start == datetime(2026, 6, 30, 23, 0, tzinfo=UTC)
    store.engine.dispose()


def test_period_forms() -> None:
    assert Period.parse("2026-07").label == "July 2026" and Period.parse("2026-07").last == date(2026, 7, 31)
    assert Period.parse("2026-q4").key == "2026-Q4" and Period.parse("2026-Q4").last == date(2026, 12, 31)
    assert Period.parse("2024").last == date(2024, 12, 31)
    assert [p.key for p in Period.parse("2026-Q1").previous(2)] == ["2025-Q3", "2025-Q4"]
    assert [p.key for p in Period.parse("2026-01").previous(1)] == ["2025-12"]
    for bad in ("2026-13", "2026-Q0", "26", "Q3 2026", "2026-7", ""):
        with pytest.raises(BadPeriod, match="2026-07, 2026-Q3 or 2026"):
            Period.parse(bad)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ESCALATE), "report", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_command_line_report(store: DbRecordStore, tmp_path: Path) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    expected = report_for(store.engine, Scope(authorities=("wigan",)), Period.parse("2026-Q3"))
    done = _cli("--authority", "wigan", "--period", "2026-Q3", "--format", "csv", "--database-url", url)
    assert done.returncode == 0, done.stderr
    lines = {(row[0], row[1]): row[2] for row in csv.reader(io.StringIO(done.stdout))}
    assert lines[("summary", "raised")] == str(expected.raised)
    assert lines[("summary", "resolved")] == str(expected.resolved)
    assert lines[("summary", "breaches")] == str(expected.breaches)
    html = _cli("--all", "--period", "2026", "--database-url", url)
    assert html.returncode == 0 and html.stdout.startswith("<!DOCTYPE html>")
    assert html.stdout.count('role="img"') >= 6 and "All authorities" in html.stdout
    pdf = tmp_path / "annual.pdf"
    made = _cli(
        "--authority", "wigan", "--period", "2026", "--format", "pdf", "-o", str(pdf), "--database-url", url
    )
    assert made.returncode == 0, made.stderr
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 2000
    bad = _cli("--authority", "wigan", "--period", "2026-Q5", "--database-url", url)
    assert bad.returncode == 2 and "--period" in bad.stderr and "2026-Q3" in bad.stderr
    unknown = _cli("--authority", "nowhere", "--period", "2026", "--database-url", url)
    assert unknown.returncode == 2 and "--authority" in unknown.stderr and "wigan" in unknown.stderr
    missing = _cli("--all", "--period", "2026", "--database-url", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.returncode == 3 and "no record store" in missing.stderr


def test_the_fast_london_day_is_the_zone_databases() -> None:
    from app.reporting.days import london_day

    instant = datetime(2025, 1, 1, tzinfo=UTC)
    while instant < datetime(2028, 1, 1, tzinfo=UTC):
        assert london_day(instant) == london_date(instant), instant
        instant += timedelta(minutes=37)
    for edge in ("2026-03-29T00:59:59", "2026-03-29T01:00:00", "2026-10-25T00:59:59", "2026-10-25T01:00:00"):
        at = datetime.fromisoformat(edge).replace(tzinfo=UTC)
        assert london_day(at) == london_date(at)
        assert london_day(at - timedelta(hours=1)) == london_date(at - timedelta(hours=1))
