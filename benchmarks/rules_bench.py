"""How long the pure escalation rules take: ``.venv/bin/python benchmarks/rules_bench.py``.

Prints the median time of one rules step (validate and apply an action, fire a timer) and of a whole climb
to the top of each protocol's first track, schedules computed by the real working-day calendar. A figure,
not a test: compare runs on the same machine.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protocols import available_protocols
from schemas.escalation import AddNote, Escalate, Flag, RecordConsultation, Respond, Status
from tests.driver import Driver, make_raise
from workflows import rules

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def median_us(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1000


def main() -> None:
    d = Driver(make_raise("waltham-forest"), START)
    state, officer = d.state, d.state.officer
    note = AddNote(actor=officer, text="A note.")
    answer = Respond(actor=d.recipient(), answer="Done.")
    escalate = Escalate(actor=officer, reason="Not addressed.")
    print(f"{'step':<40}{'median µs':>12}")
    for name, fn in [
        ("check (update validator), add_note", lambda: rules.check(state, note, START)),
        ("handle respond", lambda: rules.handle(state, answer, START)),
        ("handle escalate", lambda: rules.handle(state, escalate, START)),
        ("available_actions", lambda: rules.available_actions(state, officer)),
        ("next_wakeup", lambda: rules.next_wakeup(state)),
        ("view (state query)", lambda: rules.view(state, START)),
    ]:
        print(f"{name:<40}{median_us(fn, 2000):>12.1f}")
    print()
    print(f"{'climb to the top, first track':<40}{'median ms':>12}{'events':>8}")
    for key in available_protocols():

        def climb(key: str = key) -> Driver:
            run = Driver(make_raise(key), START)
            officer = run.state.officer
            while run.state.status is not Status.EXHAUSTED:
                if Flag.EXCEPTIONAL_DECISION_DUE in run.state.flags:  # held for the officer's decision
                    run.act(Escalate(actor=officer, reason="exceptional circumstances", exceptional=True))
                    continue
                if run.state.status is Status.ESCALATION_DUE:
                    assert run.state.hold_target is not None
                    stage = rules.track_of(run.state).stages[run.state.hold_target]
                    assert stage.entry_gate is not None
                    role = stage.entry_gate.with_roles[0]
                    run.act(
                        RecordConsultation(
                            actor=officer, stage=stage.key, with_role=role, agreed=True, summary="ok"
                        )
                    )
                    continue
                wake = rules.next_wakeup(run.state)
                if wake is None:
                    run.act(Escalate(actor=officer, reason="x"))
                    continue
                run.advance_to(wake)
            return run

        events = len(climb().state.timeline)
        print(f"{key:<40}{median_us(climb, 50) / 1000:>12.2f}{events:>8}")


if __name__ == "__main__":
    main()
