"""The pieces every exported pool is drawn with: its rows, the messages, and the flow nodes that carry
timers, messages and roles (``export`` draws the tracks, ``processes`` the other process kinds)."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from protocols.bpmn.fields import XSI, ZEEBE, b, esc, extension_elements, q
from protocols.bpmn.layout import EVENT, Box, Lane

POOL_LABEL = 30
ROW_TOP = 60
"""From a pool's top to the centre of the row above its main row."""
MAIN = 200
"""From a pool's top to the centre of its main row."""
BELOW = 150
"""From the main row's centre to the centre of the row below it."""
SUB_H = 130

MESSAGES = {
    "answer": "Answer received",
    "extension": "Extension requested",
    "note": "Case note recorded",
    "withdrawn": "Escalation withdrawn",
    "closed": "Escalation closed",
    "cafcass": "CAFCASS referral",
    "bypass": "Bypass requested",
}


def process_id(track_key: str) -> str:
    return f"track_{track_key}"


def at(x: float, cy: float, size: tuple[int, int]) -> Box:
    return Box(x, cy - size[1] / 2, size[0], size[1])


def deadline_timer(event: ET.Element, days: int | None, hours: int | None) -> None:
    definition = ET.SubElement(event, b("timerEventDefinition"))
    duration = ET.SubElement(
        definition,
        b("timeDuration"),
        {q(XSI, "type"): "bpmn:tFormalExpression"},
    )
    duration.text = f"PT{hours}H" if hours is not None else f"P{days}D"
    event.set(esc("calendar"), "working-hours" if hours is not None else "working-days")


def message(event: ET.Element, key: str) -> None:
    ET.SubElement(event, b("messageEventDefinition"), {"messageRef": f"message_{key}"})


def groups(el: ET.Element, roles: list[str]) -> None:
    """The roles a task is for, as Camunda's candidate groups (a role is a group of people)."""
    ext = extension_elements(el)
    ET.SubElement(
        ext,
        q(ZEEBE, "assignmentDefinition"),
        {"candidateGroups": ",".join(roles)},
    )


def doc(el: ET.Element, text: str) -> None:
    if text:
        doc = ET.Element(b("documentation"))
        doc.text = text
        el.insert(0, doc)


def boundary(lane: Lane, task: ET.Element, x: float, y: float, kind: str, interrupting: bool) -> ET.Element:
    attrs = {"attachedToRef": task.get("id", "")}
    if not interrupting:
        attrs["cancelActivity"] = "false"
    names = {
        "reminder": "Reminder due",
        "note": "Case note",
        "answer": "Answer received",
        "extension": "Extension requested",
        "deadline": "",
    }
    ev = lane.node("boundaryEvent", names[kind], Box(x, y, *EVENT), f"{task.get('id')}_{kind}", attrs)
    ev.set(esc("event"), kind)
    places = {  # names beside their events, off the task's own name
        "reminder": Box(x - 14, y - 16, 64, 14),
        "note": Box(x - 14, y - 16, 64, 14),
        "answer": Box(x - 14, y - 16, 64, 14),
        "extension": Box(x - 76, y + 30, 72, 28),
        "deadline": Box(x + 40, y + 22, 80, 28),
    }
    lane.canvas.label(ev, places[kind])
    return ev
