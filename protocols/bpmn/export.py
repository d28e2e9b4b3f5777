"""A protocol as BPMN 2.0 XML with diagram interchange: one pool per track, one for review decisions deemed
agreed and one for concerns about an officer's practice (docs/bpmn.md describes the mapping)."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from protocols.bpmn.elements import (
    BELOW,
    MAIN,
    MESSAGES,
    POOL_LABEL,
    ROW_TOP,
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
from protocols.bpmn.layout import EVENT, GATE_TASK, GATEWAY, STEP, TASK, Box, Canvas, Lane
from protocols.bpmn.processes import draw_deemed, draw_practice
from schemas.protocol import Protocol, Stage, Track

PROTOCOL_SKIP = {"tracks", "deemed_agreement", "practice_concerns"}
TRACK_SKIP = {"stages", "entry_points", "name"}
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
        height, width = _track(canvas, proc, protocol, t, top)
        pools.append((t.name, proc, top))
        _pool(canvas, collab, proc, t.name, top, width, height)
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


def _track(canvas: Canvas, proc: ET.Element, p: Protocol, t: Track, top: float) -> tuple[float, float]:
    """Draw track ``t``'s ladder in ``proc``; returns the pool's (height, width)."""
    lane = Lane(canvas, proc, f"{t.key}_")
    cy = top + MAIN
    x: float = POOL_LABEL + 40
    start = lane.node("startEvent", "Concern raised", at(x, cy, EVENT), "start")
    x += EVENT[0] + STEP
    entries = list(t.entry_points)
    entry_gw = None
    if entries:
        entry_gw = lane.node("exclusiveGateway", "Where does it start?", at(x, cy, GATEWAY), "entry")
        lane.flow(start, entry_gw)
        x += GATEWAY[0] + STEP
    ladder: list[tuple[Stage, ET.Element, ET.Element | None, ET.Element]] = []
    pending: list[tuple[ET.Element, str, str | None, str, int]] = []
    """(source, name, condition, route, entry index or -1) of flows into the next stage."""
    if entry_gw is None:
        pending.append((start, "", None, "h", -1))
    approver = (t.extensions or p.extensions).approved_by
    for stage in t.stages:
        incoming = list(pending)
        for n, e in enumerate(entries):
            if e.stage == stage.key and entry_gw is not None:
                incoming.append((entry_gw, _entry_name(e.categories, e.severities), None, "h", n))
        first: ET.Element | None = None
        if len(incoming) > 1:
            first = lane.node("exclusiveGateway", "", at(x, cy, GATEWAY), f"{stage.key}_join")
            x += GATEWAY[0] + STEP
        if stage.entry_gate is not None:
            gate = stage.entry_gate
            verb = "Consult" if gate.kind.value == "consultation" else "Agreement of"
            g = lane.node(
                "task", f"{verb} {p.role_names(gate.with_roles)}", at(x, cy, GATE_TASK), f"{stage.key}_gate"
            )
            doc(g, gate.note)
            g.set(esc("gate"), gate.kind.value)
            groups(g, gate.with_roles)
            if first is not None:
                lane.flow(first, g)
            first = first or g
            prev_gate: ET.Element | None = g
            x += GATE_TASK[0] + STEP
        else:
            prev_gate = None
        task = lane.node("userTask", stage.name, at(x, cy, TASK), stage.key)
        doc(task, stage.note)
        encode(task, plain(stage, STAGE_SKIP))
        groups(task, stage.to)
        if prev_gate is not None:
            lane.flow(prev_gate, task)
        elif first is not None:
            lane.flow(first, task)
        first = first or task
        for source, name, cond, route, n in incoming:
            flow = lane.flow(source, first, name, cond if source is not entry_gw else None, route)
            if n >= 0:
                _entry_flow(flow, entries[n], source)
        tbox = canvas.boxes[task.get("id", "")]
        x_after = tbox.right + STEP
        # non-interrupting: a reminder, answers and case notes above, extension requests below
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
            (reminder, "Reminder sent", cy - MAIN + ROW_TOP, "up"),
            (answer, "Answer to judge", cy - MAIN + ROW_TOP, "up"),
            (note, "Note on the file", cy - MAIN + ROW_TOP, "up"),
            (ext, f"Extension decided by {p.role_name(approver)}", cy + BELOW, "down"),
        ):
            box = canvas.boxes[ev.get("id", "")]
            end = lane.node("endEvent", label, at(box.x, row, EVENT), f"{ev.get('id')}_end")
            if route == "up":  # names above, clear of their neighbours'
                canvas.label(end, Box(box.x - 14, row - 50, 64, 28))
            lane.flow(ev, end, route=route)
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
        resolved = lane.node(
            "endEvent", "Resolved", at(x_after + 7, cy - MAIN + ROW_TOP, EVENT), f"{stage.key}_resolved"
        )
        resolved.set(esc("outcome"), "resolved")
        lane.flow(decide, resolved, "resolved", "resolved", route="up")
        x = x_after + GATEWAY[0] + STEP
        pending = [(decide, "not resolved", None, "h", -1)]
        if deadline is not None:
            pending.append((deadline, "", None, "under", -1))
        ladder.append((stage, task, deadline, decide))
    # after the last stage: exhausted
    for n, (source, _name, _cond, route, _e) in enumerate(pending):
        box = canvas.boxes[source.get("id", "")]
        row = cy if route == "h" else cy + BELOW
        ex = x if route == "h" else box.x
        end = lane.node(
            "endEvent",
            "Exhausted" if n == 0 else "Exhausted (no answer in time)",
            at(ex, row, EVENT),
            f"exhausted_{n}",
        )
        end.set(esc("outcome"), "exhausted")
        lane.flow(source, end, "not resolved" if n == 0 else "", route="h" if route == "h" else "down")
    for _stage, _task, _deadline, decide in ladder:
        flows = [f for f in proc.iter(b("sequenceFlow")) if f.get("sourceRef") == decide.get("id")]
        default = next(f for f in flows if f.get("name") == "not resolved")
        decide.set("default", default.get("id", ""))
    if entry_gw is not None:
        outs = [f for f in proc.iter(b("sequenceFlow")) if f.get("sourceRef") == entry_gw.get("id")]
        plain_entry = next((f for f in outs if f.find(b("conditionExpression")) is None), None)
        if plain_entry is not None:
            entry_gw.set("default", plain_entry.get("id", ""))
    width = x + EVENT[0] + 40
    sub_top = cy + BELOW + 60
    width = max(width, _event_subprocesses(canvas, lane, p, t, sub_top))
    return sub_top + SUB_H + 30 - top, width


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
    x: float = POOL_LABEL + 40
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
