"""Diagram interchange for the exporter: a process's flow nodes are placed as they are made, and each
sequence flow is drawn as orthogonal waypoints between its ends, so a modeler opens the file as laid out."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree import ElementTree as ET

from protocols.bpmn.fields import BPMNDI, DC, DI, b, q

TASK = (200, 80)
GATE_TASK = (120, 80)
GATEWAY = (50, 50)
EVENT = (36, 36)
STEP = 60
"""The gap between one node and the next along a row."""


@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h


class Canvas:
    """The BPMN diagram (one plane) that shapes and edges are added to, with unique element ids."""

    def __init__(self, plane: ET.Element) -> None:
        self.plane = plane
        self.boxes: dict[str, Box] = {}
        self._shapes: dict[str, ET.Element] = {}
        self._ids: set[str] = set()

    @staticmethod
    def sanitise(wanted: str) -> str:
        """``wanted`` as an XML id (an NCName)."""
        base = "".join(c if c.isalnum() or c in "-_." else "_" for c in wanted)
        return base if base and (base[0].isalpha() or base[0] == "_") else f"_{base}"

    def new_id(self, wanted: str) -> str:
        base = self.sanitise(wanted)
        candidate, n = base, 2
        while candidate in self._ids:
            candidate, n = f"{base}_{n}", n + 1
        self._ids.add(candidate)
        return candidate

    def shape(self, el: ET.Element, box: Box, **flags: str) -> None:
        shape = ET.SubElement(
            self.plane, q(BPMNDI, "BPMNShape"), {"id": f"{el.get('id')}_di", "bpmnElement": el.get("id", "")}
        )
        for name, value in flags.items():
            shape.set(name, value)
        ET.SubElement(
            shape,
            q(DC, "Bounds"),
            {"x": _n(box.x), "y": _n(box.y), "width": _n(box.w), "height": _n(box.h)},
        )
        self.boxes[el.get("id", "")] = box
        self._shapes[el.get("id", "")] = shape

    def label(self, el: ET.Element, box: Box) -> None:
        """Place ``el``'s name at ``box`` (where the default, under the shape, would cover something)."""
        label = ET.SubElement(self._shapes[el.get("id", "")], q(BPMNDI, "BPMNLabel"))
        ET.SubElement(
            label, q(DC, "Bounds"), {"x": _n(box.x), "y": _n(box.y), "width": _n(box.w), "height": _n(box.h)}
        )

    def edge(self, el: ET.Element, points: list[tuple[float, float]]) -> None:
        edge = ET.SubElement(
            self.plane, q(BPMNDI, "BPMNEdge"), {"id": f"{el.get('id')}_di", "bpmnElement": el.get("id", "")}
        )
        for x, y in points:
            ET.SubElement(edge, q(DI, "waypoint"), {"x": _n(x), "y": _n(y)})


def _n(value: float) -> str:
    return str(round(value))


class Lane:
    """Adds flow nodes and sequence flows to one process (or event sub-process) and draws them."""

    def __init__(self, canvas: Canvas, container: ET.Element, prefix: str) -> None:
        self.canvas = canvas
        self.container = container
        self.prefix = prefix

    def node(
        self, tag: str, name: str, box: Box, ident: str, attrs: dict[str, str] | None = None
    ) -> ET.Element:
        el = ET.SubElement(self.container, b(tag), {"id": self.canvas.new_id(f"{self.prefix}{ident}")})
        if name:
            el.set("name", name)
        for key, value in (attrs or {}).items():
            el.set(key, value)
        marker = {"isMarkerVisible": "true"} if tag == "exclusiveGateway" else {}
        expanded = {"isExpanded": "true"} if tag == "subProcess" else {}
        self.canvas.shape(el, box, **marker, **expanded)
        return el

    def flow(
        self,
        source: ET.Element,
        target: ET.Element,
        name: str = "",
        condition: str | None = None,
        route: str = "h",
    ) -> ET.Element:
        """A sequence flow; ``route``: 'h' right side to left side, 'up'/'down' top or bottom side to the
        other, 'under' out of the bottom, along below both and into the target's bottom, 'over' along the
        source's row and down into the target's top. 'h' between rows turns just before the target."""
        sid, tid = source.get("id", ""), target.get("id", "")
        flow = ET.SubElement(
            self.container,
            b("sequenceFlow"),
            {"id": self.canvas.new_id(f"{sid}-to-{tid}"), "sourceRef": sid, "targetRef": tid},
        )
        if name:
            flow.set("name", name)
        if condition is not None:
            expr = ET.SubElement(flow, b("conditionExpression"), {q(_XSI, "type"): "bpmn:tFormalExpression"})
            expr.text = condition
        _link(source, "outgoing", flow)
        _link(target, "incoming", flow)
        s, t = self.canvas.boxes[sid], self.canvas.boxes[tid]
        self.canvas.edge(flow, _route(s, t, route))
        return flow


_XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _link(node: ET.Element, kind: str, flow: ET.Element) -> None:
    """``bpmn:incoming`` / ``bpmn:outgoing`` references, where the schema wants them (before the rest)."""
    ref = ET.Element(b(kind))
    ref.text = flow.get("id")
    keep = {b("documentation"), b("extensionElements"), b("incoming")}
    if kind == "outgoing":
        keep.add(b("outgoing"))
    at = 0
    while at < len(node) and node[at].tag in keep:
        at += 1
    node.insert(at, ref)


def _route(s: Box, t: Box, route: str) -> list[tuple[float, float]]:
    if route == "up":
        return (
            [(s.cx, s.y), (s.cx, t.bottom)]
            if abs(s.cx - t.cx) < 1
            else [
                (s.cx, s.y),
                (s.cx, t.cy),
                (t.x, t.cy),
            ]
        )
    if route == "down":
        return (
            [(s.cx, s.bottom), (s.cx, t.y)]
            if abs(s.cx - t.cx) < 1
            else [
                (s.cx, s.bottom),
                (s.cx, t.cy),
                (t.x, t.cy),
            ]
        )
    if route == "under":
        low = max(s.bottom, t.bottom) + 30
        return [(s.cx, s.bottom), (s.cx, low), (t.cx, low), (t.cx, t.bottom)]
    if route == "over":
        return [(s.right, s.cy), (t.cx, s.cy), (t.cx, t.y)]
    if abs(s.cy - t.cy) < 1:
        return [(s.right, s.cy), (t.x, t.cy)]
    turn = t.x - 20  # along the source's row, then across (lanes) just before the target
    return [(s.right, s.cy), (turn, s.cy), (turn, t.cy), (t.x, t.cy)]
