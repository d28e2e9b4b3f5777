"""The escalation worker with one change, for ``benchmarks/scale.py``'s deadline wave.

    python -m benchmarks.wave_worker --address HOST:PORT --task-queue QUEUE --wave-at ISO-INSTANT \\
        --database-url URL --smtp-port PORT --data-dir DIR

Everything is the real worker (workflow, sandbox, record store, mail, and its sizing: cache, threads,
task slots, ``worker.sized_worker``) except the working-day clock's
answer for a stage received before ``--wave-at``: its deadline is placed at that instant instead of the
end of its fifth working day, so a chosen number of escalations fall due together on the real clock. A
stage received at or after the instant (the stage the escalation moves up to) gets the real calendar.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from zoneinfo import ZoneInfo

from temporalio import activity

from activities import escalation_activities
from activities.db_records import DbRecordStore
from activities.escalation_activities import EscalationActivities
from activities.mail import SmtpNotifier
from activities.settings import Settings
from benchmarks.serving import serve_until_stopped
from schemas.schedule import Schedule, ScheduleRequest, ScheduleRequests, Schedules
from starter.clean_exit import run_then_exit
from starter.connection import connect
from starter.worker_options import add_arguments, apply_settings
from worker import prepare_database, sized_worker

LONDON = ZoneInfo("Europe/London")
READY_LINE = "worker polling task queue"


def wave_clock(wave_at: datetime):  # type: ignore[no-untyped-def]
    """``plan_schedule`` and ``plan_schedules`` placing every stage received before ``wave_at`` due then."""

    @activity.defn(name="plan_schedule")
    def plan_schedule(request: ScheduleRequest) -> Schedule:
        if request.received_at >= wave_at or request.working_days is None:
            return escalation_activities.plan_schedule(request)
        return Schedule(
            received_at=request.received_at,
            counts_from=request.received_at.astimezone(LONDON).date(),
            due_date=wave_at.astimezone(LONDON).date(),
            due_at=wave_at,
            remind_at=None,
            working_day_ends=[wave_at],
        )

    @activity.defn(name="plan_schedules")
    def plan_schedules(requests: ScheduleRequests) -> Schedules:
        return Schedules(schedules=[plan_schedule(request) for request in requests.requests])

    return [plan_schedule, plan_schedules]


async def serve(args: argparse.Namespace) -> int:
    apply_settings(args)
    wave_at = datetime.fromisoformat(args.wave_at)
    client = await connect(args.address)
    settings = Settings()
    engine = prepare_database(settings)
    real = EscalationActivities(records=DbRecordStore(engine), notifier=SmtpNotifier(engine, settings.smtp))
    clock = {escalation_activities.plan_schedule, escalation_activities.plan_schedules}
    activities = [a for a in real.all() if a not in clock]
    worker = sized_worker(client, args.task_queue, [*activities, *wave_clock(wave_at)], args.cached_workflows)
    return await serve_until_stopped(
        worker, f"{READY_LINE} {args.task_queue!r} (deadlines at {wave_at.isoformat()})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="the escalation worker with a deadline wave")
    parser.add_argument("--address", required=True)
    parser.add_argument("--wave-at", required=True, help="ISO instant with a UTC offset")
    add_arguments(parser)
    args = parser.parse_args()
    run_then_exit(lambda: serve(args))


if __name__ == "__main__":
    main()
