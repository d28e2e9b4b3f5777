"""A protocol as BPMN 2.0 XML with diagram interchange: one pool per track, one for review decisions deemed
agreed and one for concerns about an officer's practice (docs/bpmn.md describes the mapping)."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from protocols.bpmn.elements import (
    MESSAGES,
    POOL_LABEL,
    SUB_H,
    at,
    boundary,
    deadline_timer,
    doc,
    groups,
    message,
    process_id,
)
from protocols.bpmn.fields import BPMNDI, ESC, XSI, b, encode, esc, extension_elements, plain, q
from protocols.bpmn.lanes import LANE_LABEL, OFFICER, SUBS_BELOW, Band, bands, draw_lanes
from protocols.bpmn.lanes import height as lane_height
from protocols.bpmn.layout import EVENT, GATE_TASK, GATEWAY, STEP, TASK, Box, Canvas, Lane
from protocols.bpmn.processes import draw_deemed, draw_practice
from schemas.protocol import Protocol, Track

PROTOCOL_SKIP = {"tracks", "deemed_agreement", "practice_concerns"}
TRACK_SKIP = {"stages", "entry_points", "name"}
UP = 120
"""From a stage's row to the row of the ends above it (resolved, reminders, answers, notes)."""
DOWN = 130
"""From a stage's row to the row of the ends below it (extensions, exhausted for want of an answer)."""
STAGE_SKIP = {
    "name",
    "to",
    "response_working_days",
    "response_working_hours",
    "entry_gate",
    "meeting",
    "note",
}


def _for_tracks(protocol: Protocol, tracks: list[Track]) -> Protocol:
    """The protocol as far as ``tracks`` go: collective alerts led only by the officers of those tracks
    (none, when no such officer leads one), so that one track's diagram imports on its own."""
    collective = protocol.collective_alerts
    if collective is None or len(tracks) == len(protocol.tracks):
        return protocol
    officers = {role for t in tracks for role in t.officer_roles}
    leads = [role for role in collective.raised_by if role in officers]
    kept = collective.model_copy(update={"raised_by": leads}) if leads else None
    return protocol.model_copy(update={"collective_alerts": kept})


def export_bpmn(protocol: Protocol, track: str | None = None) -> str:
    """BPMN 2.0 XML for every track of ``protocol`` and its other processes, or for ``track`` alone."""
    tracks = [protocol.track(track)] if track else list(protocol.tracks)
    defs = ET.Element(
        b("definitions"),
        {
            "id": "definitions",
            "targetNamespace": f"{ESC.rsplit('/', 2)[0]}/protocols/{protocol.key}",
            "exporter": "escalation-engine",
            "exporterVersion": "1",
        },
    )
    collab = ET.SubElement(defs, b("collaboration"), {"id": "collaboration"})
    settings = ET.SubElement(extension_elements(collab), esc("protocol"))
    encode(settings, plain(_for_tracks(protocol, tracks), PROTOCOL_SKIP))
    for key, name in MESSAGES.items():
        ET.SubElement(defs, b("message"), {"id": f"message_{key}", "name": name})
    diagram = ET.SubElement(defs, q(BPMNDI, "BPMNDiagram"), {"id": "diagram"})
    plane = ET.SubElement(diagram, q(BPMNDI, "BPMNPlane"), {"id": "plane", "bpmnElement": "collaboration"})
    canvas = Canvas(plane)
    for ident in ("definitions", "collaboration", "diagram", "plane", *(f"message_{k}" for k in MESSAGES)):
        canvas.new_id(ident)
    top = 0.0
    pools: list[tuple[str, ET.Element, float]] = []
    for t in tracks:
        proc = _process(defs, diagram, process_id(t.key), t.name)
        encode(proc, plain(t, TRACK_SKIP))
        height, width, lanes = _track(canvas, proc, protocol, t, top)
        pools.append((t.name, proc, top))
        _pool(canvas, collab, proc, t.name, top, width, height)
        draw_lanes(canvas, proc, lanes, width)
        top += height + 40
    keys = {t.key for t in tracks}
    deemed = protocol.deemed_agreement
    if deemed is not None and deemed.resolution_track in keys:
        proc = _process(defs, diagram, "deemed_agreement", deemed.label)
        proc.set(esc("process"), "deemed_agreement")
        encode(proc, plain(deemed, {"label", "sent_to", "working_days"}))
        height, width = draw_deemed(canvas, proc, deemed, top)
        _pool(canvas, collab, proc, deemed.label, top, width, height)
        top += height + 40
    practice = protocol.practice_concerns
    if practice is not None and track is None:
        proc = _process(defs, diagram, "practice_concerns", practice.label)
        proc.set(esc("process"), "practice_concerns")
        skip = {"label", "investigated_by", "working_days", "escalation_label", "escalates_to"}
        encode(proc, plain(practice, skip | {"escalation_working_days"}))
        height, width = draw_practice(canvas, proc, practice, top)
        _pool(canvas, collab, proc, practice.label, top, width, height)
    ET.indent(defs, space="  ")
    return ET.tostring(defs, encoding="unicode", xml_declaration=False).join(
        ['<?xml version="1.0" encoding="UTF-8"?>\n', "\n"]
    )


def _process(defs: ET.Element, diagram: ET.Element, ident: str, name: str) -> ET.Element:
    proc = ET.Element(b("process"), {"id": ident, "name": name, "isExecutable": "true"})
    defs.insert(list(defs).index(diagram), proc)
    return proc


def _pool(
    canvas: Canvas, collab: ET.Element, proc: ET.Element, name: str, top: float, width: float, height: float
) -> None:
    part = ET.Element(
        b("participant"),
        {"id": canvas.new_id(f"pool_{proc.get('id')}"), "name": name, "processRef": proc.get("id", "")},
    )
    at = 1 if len(collab) and collab[0].tag == b("extensionElements") else 0
    while at < len(collab) and collab[at].tag == b("participant"):
        at += 1
    collab.insert(at, part)
    shape = Box(0, top, width, height)
    canvas.shape(part, shape, isHorizontal="true")
    # the pool's shape goes before its contents, so that it is drawn under them
    plane = canvas.plane
    last = plane[-1]
    plane.remove(last)
    first = next(i for i, s in enumerate(plane) if s.get("bpmnElement") in _ids(proc))
    plane.insert(first, last)


def _ids(proc: ET.Element) -> set[str]:
    return {el.get("id", "") for el in proc.iter()}


def _track(
    canvas: Canvas, proc: ET.Element, p: Protocol, t: Track, top: float
) -> tuple[float, float, dict[str, Band]]:
    """Draw track ``t``'s ladder in ``proc``, a lane per role; returns the pool's height, width, lanes."""
    lane = Lane(canvas, proc, f"{t.key}_")
    lanes = bands(p, t, top)
    officer = lanes[OFFICER].row
    x: float = POOL_LABEL + LANE_LABEL + 40
    start = lane.node("startEvent", "Concern raised", at(x, officer, EVENT), "start")
    x += EVENT[0] + STEP
    entries = list(t.entry_points)
    entry_gw = None
    if entries:
        entry_gw = lane.node("exclusiveGateway", "Where does it start?", at(x, officer, GATEWAY), "entry")
        lane.flow(start, entry_gw)
        x += GATEWAY[0] + STEP
    pending: list[tuple[ET.Element, str, str | None, str, int]] = []
    """(source, name, condition, route, entry index or -1) of flows into the next stage."""
    if entry_gw is None:
        pending.append((start, "", None, "h", -1))
    approver = (t.extensions or p.extensions).approved_by
    decisions: list[ET.Element] = []
    cy = officer
    for stage in t.stages:
        cy = lanes[stage.to[0]].row
        incoming = list(pending)
        for n, e in enumerate(entries):
            if e.stage == stage.key and entry_gw is not None:
                incoming.append((entry_gw, _entry_name(e.categories, e.severities), None, "h", n))
        # the node the incoming flows go into, and the last node before the stage's own
        first: ET.Element | None = None
        prev: ET.Element | None = None
        if len(incoming) > 1:
            row = officer if stage.exceptional else cy
            first = prev = lane.node("exclusiveGateway", "", at(x, row, GATEWAY), f"{stage.key}_join")
            x += GATEWAY[0] + STEP
        held: tuple[ET.Element, ET.Element] | None = None
        if stage.exceptional:  # the officer decides the circumstances are exceptional: no timer leads here
            gw = lane.node(
                "exclusiveGateway",
                "Exceptional circumstances?",
                at(x, officer, GATEWAY),
                f"{stage.key}_exceptional",
            )
            if prev is not None:
                lane.flow(prev, gw)
            first = first or gw
            prev = gw
            x += GATEWAY[0] + STEP
            no = lane.node(
                "endEvent", "Not exceptional", at(x, officer, EVENT), f"{stage.key}_not_exceptional"
            )
            no.set(esc("outcome"), "exhausted")
            held = (gw, no)
        after_gw = "up" if held else "h"
        if stage.entry_gate is not None:
            gate = stage.entry_gate
            verb = "Consult" if gate.kind.value == "consultation" else "Agreement of"
            g = lane.node(
                "task", f"{verb} {p.role_names(gate.with_roles)}", at(x, cy, GATE_TASK), f"{stage.key}_gate"
            )
            doc(g, gate.note)
            g.set(esc("gate"), gate.kind.value)
            groups(g, gate.with_roles)
            if prev is not None:
                _into(lane, prev, g, held is not None and prev is held[0], after_gw)
            first = first or g
            prev = g
            x += GATE_TASK[0] + STEP
        task = lane.node("userTask", stage.name, at(x, cy, TASK), stage.key)
        doc(task, stage.note)
        encode(task, plain(stage, STAGE_SKIP))
        groups(task, stage.to)
        if prev is not None:
            _into(lane, prev, task, held is not None and prev is held[0], after_gw)
        first = first or task
        if held is not None:
            default = lane.flow(held[0], held[1], "not exceptional")
            held[0].set("default", default.get("id", ""))
        fbox = canvas.boxes[first.get("id", "")]
        for source, name, cond, route, n in incoming:
            sbox = canvas.boxes[source.get("id", "")]
            if route == "under" and fbox.cy > sbox.cy + 1:
                route = "down"  # a deadline to a lower lane: straight down, into the target's side
            elif route == "h" and fbox.cy > sbox.cy + 1 and fbox.w == GATEWAY[0]:
                route = "over"
            flow = lane.flow(source, first, name, cond if source is not entry_gw else None, route)
            if n >= 0:
                _entry_flow(flow, entries[n], source)
        tbox = canvas.boxes[task.get("id", "")]
        x_after = tbox.right + STEP
        _stage_events(canvas, lane, p, t, task, cy, approver)
        deadline = None
        if stage.response_working_days is not None or stage.response_working_hours is not None:
            deadline = boundary(lane, task, tbox.x + 110, tbox.bottom - 18, "deadline", interrupting=True)
            deadline_timer(deadline, stage.response_working_days, stage.response_working_hours)
            deadline.set("name", "No answer in time")
        last = task
        if stage.meeting:
            meet = lane.node(
                "manualTask", "Meeting, recorded", at(x_after, cy, GATE_TASK), f"{stage.key}_meeting"
            )
            meet.set(esc("meeting"), "true")
            lane.flow(task, meet)
            last = meet
            x_after += GATE_TASK[0] + STEP
        decide = lane.node("exclusiveGateway", "Resolved?", at(x_after, cy, GATEWAY), f"{stage.key}_decision")
        lane.flow(last, decide)
        resolved = lane.node("endEvent", "Resolved", at(x_after + 7, cy - UP, EVENT), f"{stage.key}_resolved")
        resolved.set(esc("outcome"), "resolved")
        lane.flow(decide, resolved, "resolved", "resolved", route="up")
        x = x_after + GATEWAY[0] + STEP
        pending = [(decide, "not resolved", None, "h", -1)]
        if deadline is not None:
            pending.append((deadline, "", None, "under", -1))
        decisions.append(decide)
    # after the last stage: exhausted
    for n, (source, _name, _cond, route, _e) in enumerate(pending):
        box = canvas.boxes[source.get("id", "")]
        row = cy if route == "h" else cy + DOWN
        ex = x if route == "h" else box.x
        end = lane.node(
            "endEvent",
            "Exhausted" if n == 0 else "Exhausted (no answer in time)",
            at(ex, row, EVENT),
            f"exhausted_{n}",
        )
        end.set(esc("outcome"), "exhausted")
        lane.flow(source, end, "not resolved" if n == 0 else "", route="h" if route == "h" else "down")
    for decide in decisions:
        flows = [f for f in proc.iter(b("sequenceFlow")) if f.get("sourceRef") == decide.get("id")]
        default = next(f for f in flows if f.get("name") == "not resolved")
        decide.set("default", default.get("id", ""))
    if entry_gw is not None:
        outs = [f for f in proc.iter(b("sequenceFlow")) if f.get("sourceRef") == entry_gw.get("id")]
        plain_entry = next((f for f in outs if f.find(b("conditionExpression")) is None), None)
        if plain_entry is not None:
            entry_gw.set("default", plain_entry.get("id", ""))
    width = x + EVENT[0] + 40
    width = max(width, _event_subprocesses(canvas, lane, p, t, officer + SUBS_BELOW))
    return lane_height(lanes), width, lanes


def _into(lane: Lane, source: ET.Element, target: ET.Element, exceptional: bool, route: str) -> None:
    """The flow from ``source`` on to ``target``; out of the officer's decision (``exceptional``), the
    flow that says the circumstances are exceptional, up to the stage kept for them."""
    if exceptional:
        lane.flow(source, target, "exceptional circumstances", "exceptional circumstances", route=route)
    else:
        lane.flow(source, target)


def _stage_events(
    canvas: Canvas, lane: Lane, p: Protocol, t: Track, task: ET.Element, cy: float, approver: str
) -> None:
    """The stage's non-interrupting events: a reminder, answers and case notes above, extension requests
    below, each ending where the engine records it."""
    tbox = canvas.boxes[task.get("id", "")]
    reminder = boundary(lane, task, tbox.x + 15, tbox.y - 18, "reminder", interrupting=False)
    _timer_reminder(reminder, p, t)
    answer = boundary(lane, task, tbox.x + 82, tbox.y - 18, "answer", interrupting=False)
    message(answer, "answer")
    note = boundary(lane, task, tbox.x + 149, tbox.y - 18, "note", interrupting=False)
    message(note, "note")
    ext = boundary(lane, task, tbox.x + 20, tbox.bottom - 18, "extension", interrupting=False)
    message(ext, "extension")
    ext.set(esc("approved_by"), approver)
    for ev, label, row, route in (
        (reminder, "Reminder sent", cy - UP, "up"),
        (answer, "Answer to judge", cy - UP, "up"),
        (note, "Note on the file", cy - UP, "up"),
        (ext, f"Extension decided by {p.role_name(approver)}", cy + DOWN, "down"),
    ):
        box = canvas.boxes[ev.get("id", "")]
        end = lane.node("endEvent", label, at(box.x, row, EVENT), f"{ev.get('id')}_end")
        if route == "up":  # names above, clear of their neighbours'
            canvas.label(end, Box(box.x - 14, row - 50, 64, 28))
        lane.flow(ev, end, route=route)


def _entry_name(categories: list[str], severities: list[str]) -> str:
    parts = [*categories, *(f"severity {s}" for s in severities)]
    return "; ".join(parts) if parts else "any concern"


def _entry_flow(flow: ET.Element, entry: object, gw: ET.Element) -> None:
    from schemas.protocol import EntryPoint

    assert isinstance(entry, EntryPoint)
    encode(flow, plain(entry, set()))
    if entry.conditional:
        expr = ET.SubElement(
            flow,
            b("conditionExpression"),
            {q(XSI, "type"): "bpmn:tFormalExpression"},
        )
        expr.text = flow.get("name", "")


def _timer_reminder(event: ET.Element, p: Protocol, t: Track) -> None:
    lead = (
        t.reminder_lead_working_days
        if t.reminder_lead_working_days is not None
        else p.reminder_lead_working_days
    )
    timer = ET.SubElement(event, b("timerEventDefinition"))
    text = ET.SubElement(
        timer,
        b("timeDuration"),
        {q(XSI, "type"): "bpmn:tFormalExpression"},
    )
    text.text = f"P{lead}D"
    event.set(esc("before_deadline"), "true")
    event.set(esc("calendar"), "working-days")


def _event_subprocesses(canvas: Canvas, lane: Lane, p: Protocol, t: Track, y: float) -> float:
    """Withdrawal, closure, CAFCASS referral and bypass, each an event sub-process in a row; returns the
    row's right edge."""
    cafcass = t.cafcass or p.cafcass
    bypass = t.bypass or p.bypass
    subs: list[tuple[str, str, bool, str, list[str], str, str]] = [
        ("withdrawn", "Withdrawal", True, "", [], "Withdrawn", "withdrawn"),
        ("closed", "Closure", True, "", [], "Closed", "closed"),
        (
            "cafcass",
            "CAFCASS referral",
            not cafcass.alongside,
            "Consult " + p.role_names(cafcass.consult) if cafcass.consult else "",
            cafcass.consult,
            "Referred to CAFCASS",
            "referred",
        ),
    ]
    if bypass.allowed:
        who = bypass.prior_discussion_with
        subs.append(
            (
                "bypass",
                "Bypass",
                False,
                "Discuss with " + p.role_names(who) if who else "",
                who,
                "Stage bypassed",
                "bypassed",
            )
        )
    x: float = POOL_LABEL + LANE_LABEL + 40
    for key, title, interrupting, task_name, roles, end_name, outcome in subs:
        width = 340 if task_name else 180
        sub = lane.node(
            "subProcess", title, Box(x, y, width, SUB_H), f"{key}_sub", {"triggeredByEvent": "true"}
        )
        sub.set(esc("path"), key)
        inner = Lane(canvas, sub, f"{t.key}_{key}_")
        cy = y + SUB_H / 2
        attrs = {} if interrupting else {"isInterrupting": "false"}
        start = inner.node("startEvent", MESSAGES[key], at(x + 30, cy, EVENT), "start", attrs)
        message(start, key)
        prev = start
        nx = x + 30 + EVENT[0] + 40
        if task_name:
            task = inner.node("task", task_name, at(nx, cy, GATE_TASK), "task")
            groups(task, roles)
            inner.flow(prev, task)
            prev = task
            nx += GATE_TASK[0] + 40
        end = inner.node("endEvent", end_name, at(nx, cy, EVENT), "end")
        end.set(esc("outcome"), outcome)
        inner.flow(prev, end)
        x += width + 40
    return x
