"""The protocol's other process kinds as pools: review decisions deemed agreed, and concerns about an
officer's practice."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from protocols.bpmn.elements import (
    BELOW,
    MAIN,
    POOL_LABEL,
    ROW_TOP,
    at,
    boundary,
    deadline_timer,
    groups,
    process_id,
)
from protocols.bpmn.fields import b, esc
from protocols.bpmn.layout import EVENT, GATEWAY, STEP, TASK, Canvas, Lane
from schemas.processes import DeemedAgreement, PracticeConcerns


def _simple_ladder(
    canvas: Canvas,
    proc: ET.Element,
    top: float,
    start_name: str,
    steps: list[tuple[str, list[str], int | None, str]],
) -> tuple[float, float]:
    """A start, then for each (task name, roles, working days, key) a user task with its deadline and a
    'Resolved?' gateway; the last step's 'not resolved' and timeouts end exhausted."""
    lane = Lane(canvas, proc, f"{proc.get('id')}_")
    cy = top + MAIN
    x: float = POOL_LABEL + 40
    prev: list[tuple[ET.Element, str, str]] = []
    start = lane.node("startEvent", start_name, at(x, cy, EVENT), "start")
    prev.append((start, "", "h"))
    x += EVENT[0] + STEP
    for name, roles, days, key in steps:
        target: ET.Element
        if len(prev) > 1:
            join = lane.node("exclusiveGateway", "", at(x, cy, GATEWAY), f"{key}_join")
            x += GATEWAY[0] + STEP
            target = join
        task = lane.node("userTask", name, at(x, cy, TASK), key)
        task.set(esc("step"), key)
        groups(task, roles)
        if len(prev) > 1:
            for source, label, route in prev:
                lane.flow(source, join, label, route=route)
            lane.flow(join, task)
        else:
            lane.flow(prev[0][0], task, prev[0][1], route=prev[0][2])
        target = task
        tbox = canvas.boxes[target.get("id", "")]
        x = tbox.right + STEP
        decide = lane.node("exclusiveGateway", "Resolved?", at(x, cy, GATEWAY), f"{key}_decision")
        lane.flow(task, decide)
        done = lane.node("endEvent", "Resolved", at(x + 7, top + ROW_TOP, EVENT), f"{key}_resolved")
        done.set(esc("outcome"), "resolved")
        lane.flow(decide, done, "resolved", "resolved", route="up")
        x += GATEWAY[0] + STEP
        prev = [(decide, "not resolved", "h")]
        if days is not None:
            clock = boundary(lane, task, tbox.x + 110, tbox.bottom - 18, "deadline", interrupting=True)
            clock.set("name", "No answer in time")
            deadline_timer(clock, days, None)
            prev.append((clock, "", "under"))
    for n, (source, label, route) in enumerate(prev):
        box = canvas.boxes[source.get("id", "")]
        row, ex = (cy, x) if route == "h" else (cy + BELOW, box.x)
        end = lane.node(
            "endEvent",
            "Exhausted" if n == 0 else "Exhausted (no answer in time)",
            at(ex, row, EVENT),
            f"exhausted_{n}",
        )
        end.set(esc("outcome"), "exhausted")
        lane.flow(source, end, label, route="h" if route == "h" else "down")
    for gw in proc.iter(b("exclusiveGateway")):
        out = next(
            (
                f
                for f in proc.iter(b("sequenceFlow"))
                if f.get("sourceRef") == gw.get("id") and f.get("name") == "not resolved"
            ),
            None,
        )
        if out is not None:
            gw.set("default", out.get("id", ""))
    return cy + BELOW + 60 - top, x + EVENT[0] + 60


def draw_deemed(canvas: Canvas, proc: ET.Element, d: DeemedAgreement, top: float) -> tuple[float, float]:
    lane = Lane(canvas, proc, "deemed_")
    cy = top + MAIN
    x: float = POOL_LABEL + 40
    start = lane.node("startEvent", "Review decisions sent", at(x, cy, EVENT), "start")
    x += EVENT[0] + STEP
    task = lane.node("userTask", d.label, at(x, cy, TASK), "decisions")
    task.set(esc("step"), "decisions")
    groups(task, d.sent_to)
    lane.flow(start, task)
    tbox = canvas.boxes[task.get("id", "")]
    clock = boundary(lane, task, tbox.x + 110, tbox.bottom - 18, "deadline", interrupting=True)
    clock.set("name", "No disagreement in time")
    deadline_timer(clock, d.working_days, None)
    deemed = lane.node("endEvent", "Deemed agreed", at(tbox.x + 110, cy + BELOW, EVENT), "deemed")
    deemed.set(esc("outcome"), "deemed_agreed")
    lane.flow(clock, deemed, route="down")
    x = tbox.right + STEP
    decide = lane.node("exclusiveGateway", "Agreed?", at(x, cy, GATEWAY), "decision")
    lane.flow(task, decide)
    agreed = lane.node("endEvent", "Agreed", at(x + 7, top + ROW_TOP, EVENT), "agreed")
    agreed.set(esc("outcome"), "agreed")
    lane.flow(decide, agreed, "agreed", "agreed", route="up")
    x += GATEWAY[0] + STEP
    call = lane.node(
        "callActivity",
        "Informal resolution",
        at(x, cy, TASK),
        "resolution",
        {"calledElement": process_id(d.resolution_track)},
    )
    default = lane.flow(decide, call, "disagreed")
    decide.set("default", default.get("id", ""))
    x += TASK[0] + STEP
    end = lane.node("endEvent", "Escalation raised", at(x, cy, EVENT), "raised")
    end.set(esc("outcome"), "escalation_raised")
    lane.flow(call, end)
    return cy + BELOW + 60 - top, x + EVENT[0] + 60


def draw_practice(canvas: Canvas, proc: ET.Element, c: PracticeConcerns, top: float) -> tuple[float, float]:
    steps = [
        (c.label, list(c.investigated_by), c.working_days, "investigation"),
        (c.escalation_label, list(c.escalates_to), c.escalation_working_days, "escalation"),
    ]
    return _simple_ladder(canvas, proc, top, "Concern about practice raised", steps)
