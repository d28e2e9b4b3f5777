"""Lanes by role in a track's pool: a lane per role that a stage is sent to first (its user task sits
there), the first stage's just above the officer's lane, so that the ladder climbs up the pool as it climbs
the hierarchy; the officer's own actions (raising, the decision that circumstances are exceptional, the
event sub-processes: withdrawal, closure, CAFCASS referral, bypass) are in the officer's lane at the foot.

A flow node belongs to the lane its shape's centre lies in; the exporter places every shape wholly inside
one lane (tests/test_bpmn_export.py checks the bounds)."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree import ElementTree as ET

from protocols.bpmn.elements import POOL_LABEL
from protocols.bpmn.fields import b, esc
from protocols.bpmn.layout import Box, Canvas
from schemas.protocol import Protocol, Track

LANE_LABEL = 30
"""The width of a lane's name band, right of the pool's."""
ROLE_ROW = 180
"""From a role lane's top to the centre of its row (ends above the stage, their names above them)."""
ROLE_H = 375
OFFICER_ROW = 70
"""From the officer's lane's top to the centre of its row (the start, the exceptional decisions)."""
SUBS_BELOW = 80
"""From the officer's row's centre to the top of the row of event sub-processes."""
OFFICER_H = 310
OFFICER = "officer"
"""The officer's lane's key (a role lane's key is its role's)."""


@dataclass
class Band:
    """A lane's place in the pool: ``row`` is the centre of the row its flow nodes are drawn on."""

    key: str
    name: str
    top: float
    height: float
    row: float

    @property
    def bottom(self) -> float:
        return self.top + self.height


def bands(p: Protocol, t: Track, top: float) -> dict[str, Band]:
    """Each lane of track ``t``'s pool (at ``top``), from the top down: the last stage's role first."""
    roles = list(dict.fromkeys(s.to[0] for s in t.stages))
    out: dict[str, Band] = {}
    y = top
    for role in reversed(roles):
        out[role] = Band(role, p.role_name(role), y, ROLE_H, y + ROLE_ROW)
        y += ROLE_H
    out[OFFICER] = Band(OFFICER, "Raising officer", y, OFFICER_H, y + OFFICER_ROW)
    return out


def height(lanes: dict[str, Band]) -> float:
    return sum(band.height for band in lanes.values())


def draw_lanes(canvas: Canvas, proc: ET.Element, lanes: dict[str, Band], width: float) -> None:
    """The process's ``laneSet`` (each flow node in the lane its shape's centre is in) and the lanes' shapes,
    drawn just after the pool's so that they are under the flow nodes."""
    lane_set = ET.Element(b("laneSet"), {"id": canvas.new_id(f"{proc.get('id')}_lanes")})
    keep = {b("documentation"), b("extensionElements")}
    at = 0
    while at < len(proc) and proc[at].tag in keep:
        at += 1
    proc.insert(at, lane_set)
    nodes = [el for el in proc if el.tag != b("sequenceFlow") and el.get("id") in canvas.boxes]
    plane = canvas.plane
    pool = next(
        i for i, s in enumerate(plane) if s.get("bpmnElement", "").startswith(f"pool_{proc.get('id')}")
    )
    for n, band in enumerate(lanes.values()):
        lane = ET.SubElement(
            lane_set, b("lane"), {"id": canvas.new_id(f"{proc.get('id')}_lane_{band.key}"), "name": band.name}
        )
        if band.key != OFFICER:
            lane.set(esc("role"), band.key)
        for el in nodes:
            if band.top <= canvas.boxes[el.get("id", "")].cy < band.bottom:
                ref = ET.SubElement(lane, b("flowNodeRef"))
                ref.text = el.get("id")
        canvas.shape(lane, Box(POOL_LABEL, band.top, width - POOL_LABEL, band.height), isHorizontal="true")
        shape = plane[-1]
        plane.remove(shape)
        plane.insert(pool + 1 + n, shape)
