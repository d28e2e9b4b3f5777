"""CPU of a lifecycle's activities, in-process; ``.venv/bin/python benchmarks/effects_cpu.py``.

Drives the standard lifecycle of ``benchmarks/lifecycle.py`` (gloucestershire, iro-cp: raise, respond,
escalate, respond, accept) through the pure rules, turns each transition's records and notices into the
``carry_out_effects`` batch the workflow would send, and runs the batches through the real activity with
the record store on SQLite (a temporary file) and mail to a real SMTP server (aiosmtpd on a free port).
Each batch goes through the worker's data converter both ways first (encode as the workflow does, decode
as the activity worker does), so the payload codec and JSON are counted. Prints the CPU time of the
threads running them per lifecycle (``--threads N``: N lifecycles at once, as the worker's activity threads
run them); ``--profile`` also prints where it went (CPU-time cProfile). Temporal's own
work (workflow tasks, the sandbox, the core) is not in this figure: compare it with the worker's whole CPU
per lifecycle from ``benchmarks/lifecycle.py``. A figure, not a test: compare runs on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import resource
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from activities.db_records import DbRecordStore
from activities.escalation_activities import EscalationActivities
from activities.mail import SmtpNotifier
from activities.settings import SmtpSettings
from activities.working_days import plan_schedule
from benchmarks.options import whole_number
from benchmarks.stack import ensure_payload_key
from schemas.effects import EffectBatch, EffectItem, Notify, PlanSchedule, Record
from schemas.escalation import Accept, Action, Concern, Escalate, EscalationState, RaiseConcern, Respond
from starter.escalations import prepare
from starter.sample_data import TEAM, person
from tests.databases import DIRECTORIES, migrated_engine
from tests.smtp_server import Capture, start_capture
from workflows import rules
from workflows.escalation import _notification, _record_input

MONDAY = datetime(2026, 11, 2, 10, 0, tzinfo=ZoneInfo("Europe/London"))
AUTHORITY, TRACK = "gloucestershire", "iro-cp"


def lifecycle_batches(child_ref: str) -> list[EffectBatch]:
    """The standard lifecycle's ``carry_out_effects`` batches, in order, as the workflow builds them."""
    officer = person(AUTHORITY, "iro")
    raise_: RaiseConcern = prepare(
        authority=AUTHORITY,
        track=TRACK,
        category="Key decision-making",
        child_ref=child_ref,
        sequence=1,
        officer=officer,
        team=TEAM,
        concern=Concern(
            summary="Benchmark: the care plan's review is overdue.",
            impact_on_child="Decisions for the child wait on the review.",
            requested_action="Hold the review and confirm the date in writing.",
        ),
    )
    run_id = str(uuid.uuid4())
    batches: list[EffectBatch] = []

    def carry_out(decision: rules.Decision) -> EscalationState:
        state = decision.state
        items: list[EffectItem] = []
        pending = list(decision.effects)
        while pending:
            effect = pending.pop(0)
            if isinstance(effect, PlanSchedule):
                then = rules.on_scheduled(state, effect, plan_schedule(effect.request), MONDAY)
                state = then.state
                pending[:0] = then.effects
            elif isinstance(effect, Record):
                items.append(EffectItem(record=_record_input(state, effect, run_id)))
            elif isinstance(effect, Notify):
                items.append(EffectItem(notify=_notification(state, effect, run_id)))
        batches.append(EffectBatch(items=items))
        return state

    state = carry_out(rules.start(raise_, MONDAY))
    actions: list[Action] = [
        Respond(actor=person(AUTHORITY, "social_worker"), answer="Review booked."),
        Escalate(actor=officer, reason="No date was given."),
        Respond(actor=person(AUTHORITY, "team_manager"), answer="The review is on the 3rd."),
        Accept(actor=officer, note="Resolved."),
    ]
    for action in actions:
        state = carry_out(rules.handle(state, action, MONDAY))
    return batches


async def _round_trip(converter: object, batch: EffectBatch) -> EffectBatch:
    payloads = await converter.encode([batch])  # type: ignore[attr-defined]
    [decoded] = await converter.decode(payloads, [EffectBatch])  # type: ignore[attr-defined]
    assert isinstance(decoded, EffectBatch)
    return decoded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifecycles", type=whole_number(1), default=40, help="default 40")
    parser.add_argument(
        "--threads", type=whole_number(1), default=1, help="lifecycles run at once, as a worker's threads do"
    )
    parser.add_argument("--profile", action="store_true", help="print the top functions by CPU (one thread)")
    parser.add_argument("--top", type=whole_number(1), default=40, help="rows of the profile (default 40)")
    args = parser.parse_args(argv)
    if args.profile and args.threads != 1:
        parser.error("--profile profiles one thread: leave --threads at 1")
    ensure_payload_key()
    from starter.connection import DATA_CONVERTER  # after the key is set

    lifecycles = [lifecycle_batches(f"P{i:07d}") for i in range(args.lifecycles + 1)]
    capture = Capture()
    controller = start_capture(capture)
    loops = threading.local()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            with migrated_engine(url, directories=DIRECTORIES) as engine:
                smtp = SmtpSettings(
                    host="127.0.0.1",
                    port=controller.port,
                    tls="none",
                    mail_from="escalations@gloucestershire.example.org",
                    reply_local="escalations",
                    reply_domain="replies.example.org",
                )
                acts = EscalationActivities(DbRecordStore(engine), SmtpNotifier(engine, smtp))

                def run(batches: list[EffectBatch]) -> tuple[int, float, float]:
                    """One lifecycle's batches in order: effects done, CPU and kernel CPU of this thread."""
                    if not hasattr(loops, "loop"):
                        loops.loop = asyncio.new_event_loop()
                    cpu0, usage0 = time.thread_time(), resource.getrusage(resource.RUSAGE_THREAD)
                    done = 0
                    for batch in batches:
                        decoded = loops.loop.run_until_complete(_round_trip(DATA_CONVERTER, batch))
                        done += acts.carry_out_effects(decoded)
                    system = resource.getrusage(resource.RUSAGE_THREAD).ru_stime - usage0.ru_stime
                    return done, time.thread_time() - cpu0, system

                run(lifecycles[0])  # warm up: templates compiled, connections open
                profile = cProfile.Profile(time.thread_time) if args.profile else None
                wall0 = time.perf_counter()
                if profile:
                    profile.enable()
                if args.threads == 1:
                    results = [run(batches) for batches in lifecycles[1:]]
                else:
                    with ThreadPoolExecutor(args.threads) as pool:
                        results = list(pool.map(run, lifecycles[1:]))
                if profile:
                    profile.disable()
                wall = time.perf_counter() - wall0
                done = sum(r[0] for r in results)
                cpu = sum(r[1] for r in results)
                system = sum(r[2] for r in results)
    finally:
        controller.stop()
    n = args.lifecycles
    mails = len(capture.deliveries)
    print(f"{n} lifecycles: {done / (n + 1) * n:.0f} effects done, {mails / (n + 1):.1f} mails per lifecycle")
    print(f"CPU per lifecycle:  {cpu / n * 1000:8.2f} ms ({system / n * 1000:.2f} ms of it in the kernel)")
    print(f"wall per lifecycle: {wall / n * 1000:8.2f} ms")
    if profile:
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
