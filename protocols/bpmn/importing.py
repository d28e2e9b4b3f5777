"""A BPMN file in the documented subset (docs/bpmn.md) as a protocol: exported by ``export_bpmn`` or drawn
in Camunda Modeler or bpmn.io, with or without the project's extension attributes."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree as ET

from defusedxml import ElementTree as SafeET
from pydantic import ValidationError

from protocols import ProtocolError, available_protocols, describe_errors, load_protocol
from protocols.bpmn.fields import BPMNDI, CAMUNDA, DC, ESC, ZEEBE, b, decode, esc, q
from protocols.bpmn.subset import SubsetError, check_definitions, refuse
from schemas.processes import DeemedAgreement, PracticeConcerns
from schemas.protocol import EntryPoint, Protocol, Stage, Track

_DURATION = re.compile(r"^P(?:(\d+)D|T(\d+)H)$")
TASKS = {b("task"), b("manualTask")}


class BpmnImportError(ValueError):
    """The file cannot be read as a protocol; the message names the element or field and the fix."""


def import_bpmn(text: str | bytes, authority: str | None = None) -> Protocol:
    """The protocol ``text`` describes. ``authority``: the authority's key; where a protocol file of that key
    exists, it supplies what the diagram does not say (roles' names, categories, the CAFCASS rule, ...)."""
    try:
        root = SafeET.fromstring(text)
    except Exception as exc:  # defusedxml and expat raise several kinds for a malformed or hostile file
        raise BpmnImportError(f"not readable as XML: {exc}") from None
    try:
        check_definitions(root)
        return _protocol(root, authority)
    except SubsetError as exc:
        raise BpmnImportError(str(exc)) from None
    except ValueError as exc:
        raise BpmnImportError(str(exc)) from None


def _protocol(root: ET.Element, authority: str | None) -> Protocol:
    collab = root.find(b("collaboration"))
    carried = collab.find(f"{b('extensionElements')}/{esc('protocol')}") if collab is not None else None
    data: dict[str, Any] = {}
    base: Protocol | None = None
    if authority and authority in available_protocols():
        try:
            base = load_protocol(authority)
        except ProtocolError as exc:
            raise BpmnImportError(f"--authority {authority}: {exc}") from None
        data = base.model_dump(mode="json", exclude_defaults=True)
    if carried is not None:
        data.update(decode(carried, Protocol, "collaboration esc:protocol"))
    if not data:
        raise BpmnImportError(
            "the file carries no protocol settings (esc:protocol) and no --authority names an existing "
            f"protocol to take them from: give --authority KEY (one of {', '.join(available_protocols())}) "
            "or export a protocol to start from"
        )
    if authority:
        data["key"] = authority
    names = {
        p.get("processRef"): p.get("name", "")
        for p in (collab.findall(b("participant")) if collab is not None else [])
    }
    shapes = _shapes(root)
    tracks: list[dict[str, Any]] = []
    deemed: dict[str, Any] | None = None
    practice: dict[str, Any] | None = None
    for proc in root.findall(b("process")):
        kind = proc.get(esc("process"))
        if kind == "deemed_agreement":
            deemed = _deemed(proc)
        elif kind == "practice_concerns":
            practice = _practice(proc)
        else:
            tracks.append(_track(proc, names.get(proc.get("id")) or proc.get("name") or "", base, shapes))
    if not tracks:
        raise BpmnImportError("the file has no process: draw a pool (process) per track, with its stages")
    data["tracks"] = tracks
    keys = {t["key"] for t in tracks}
    if deemed is not None:
        data["deemed_agreement"] = deemed
    elif base is not None and base.deemed_agreement and base.deemed_agreement.resolution_track not in keys:
        data.pop("deemed_agreement", None)
    if practice is not None:
        data["practice_concerns"] = practice
    roles = dict(data.get("roles") or {})
    for role in _roles_named(tracks):
        roles.setdefault(role, role.replace("_", " ").capitalize())
    data["roles"] = roles
    try:
        return Protocol.model_validate(data)
    except ValidationError as exc:
        raise BpmnImportError(describe_errors(exc, data, "protocol", _key_of)) from None


def _key_of(index: int, item: object) -> str:
    key = item.get("key") if isinstance(item, dict) else None
    return key if isinstance(key, str) else str(index)


def _roles_named(tracks: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for t in tracks:
        for s in t["stages"]:
            found += s.get("to", []) + (s.get("entry_gate") or {}).get("with_roles", [])
    return found


def _shapes(root: ET.Element) -> dict[str, tuple[float, float]]:
    """Element id -> its shape's (x, y), where the file has diagram interchange."""
    out: dict[str, tuple[float, float]] = {}
    for shape in root.iter(q(BPMNDI, "BPMNShape")):
        bounds = shape.find(q(DC, "Bounds"))
        if bounds is not None:
            out[shape.get("bpmnElement", "")] = (float(bounds.get("x", 0)), float(bounds.get("y", 0)))
    return out


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "stage"


def _groups(el: ET.Element, lanes: dict[str, str]) -> list[str]:
    """The roles a task is for: esc, zeebe or camunda candidate groups, else its lane's name as a role key."""
    zeebe = el.find(f"{b('extensionElements')}/{q(ZEEBE, 'assignmentDefinition')}")
    if zeebe is not None and zeebe.get("assignee"):
        raise refuse(el, "an assignee is a person", "give the roles as candidate groups (role keys)")
    if el.get(q(CAMUNDA, "assignee")):
        raise refuse(el, "an assignee is a person", "give the roles as candidate groups (role keys)")
    text = (zeebe.get("candidateGroups") if zeebe is not None else None) or el.get(
        q(CAMUNDA, "candidateGroups")
    )
    if text:
        if text.strip().startswith("="):
            raise refuse(
                el, "candidate groups given as an expression", "list role keys: team_manager,head_of_service"
            )
        return [r.strip() for r in text.split(",") if r.strip()]
    lane = lanes.get(el.get("id", ""))
    return [lane] if lane else []


def _timer_value(event: ET.Element) -> tuple[int | None, int | None]:
    """(working days, working hours) of a boundary timer."""
    timer = event.find(b("timerEventDefinition"))
    assert timer is not None
    duration = timer.find(b("timeDuration"))
    if duration is None:
        raise refuse(
            event,
            "a timer without a duration (a date or cycle)",
            "give a duration: P5D (5 working days) or PT4H (4 working hours)",
        )
    value = (duration.text or "").strip().removeprefix("=").strip().strip('"')
    match = _DURATION.match(value)
    if not match:
        raise refuse(
            event,
            f"timer duration {value!r} is not whole days or hours",
            "write P5D (5 working days) or PT4H (4 working hours)",
        )
    days, hours = match.groups()
    calendar = event.get(esc("calendar"))
    if calendar not in (None, "working-days", "working-hours"):
        raise refuse(event, f"esc:calendar {calendar!r} is unknown", "use working-days or working-hours")
    return (int(days), None) if days else (None, int(hours))


def _track(
    proc: ET.Element, pool_name: str, base: Protocol | None, shapes: dict[str, tuple[float, float]]
) -> dict[str, Any]:
    where = f"process {proc.get('id')}"
    nodes = {el.get("id", ""): el for el in proc if el.get("id")}
    flows = [el for el in proc if el.tag == b("sequenceFlow")]
    out: dict[str, list[ET.Element]] = {}
    into: dict[str, list[ET.Element]] = {}
    for f in flows:
        out.setdefault(f.get("sourceRef", ""), []).append(f)
        into.setdefault(f.get("targetRef", ""), []).append(f)
    lanes = {  # a lane's role: esc:role, else its name as a role key ("Head of service": head_of_service)
        (ref.text or "").strip(): lane.get(esc("role")) or slug(lane.get("name", "")).replace("-", "_")
        for lane in proc.iter(b("lane"))
        for ref in lane.findall(b("flowNodeRef"))
    }
    boundaries: dict[str, list[ET.Element]] = {}
    for el in proc.findall(b("boundaryEvent")):
        boundaries.setdefault(el.get("attachedToRef", ""), []).append(el)
    starts = [
        s
        for s in proc.findall(b("startEvent"))
        if not any(True for _ in s.iter(b("messageEventDefinition")))
        and s.find(b("timerEventDefinition")) is None
    ]
    if len(starts) != 1:
        raise BpmnImportError(
            f"{where}: draw exactly one plain start event (the concern raised); found {len(starts)}"
        )
    order = _ordered_tasks(proc, nodes, out, boundaries, shapes, starts[0])
    fields = decode(proc, Track, where)
    name = proc.get("name") or pool_name
    key = fields.get("key") or slug(name or proc.get("id", "track"))
    fields.setdefault("key", key)
    merged: dict[str, Any] = {}
    if base is not None:
        match = next((t for t in base.tracks if t.key == key), None)
        if match is not None:
            merged = match.model_dump(mode="json", exclude_defaults=True)
            merged.pop("stages", None)
            merged.pop("entry_points", None)
    merged.update(fields)
    merged["name"] = name or key
    stages: list[dict[str, Any]] = []
    task_stage: dict[str, str] = {}
    used: set[str] = set()
    for task in order:
        stage = _stage(task, nodes, out, into, boundaries, lanes, used)
        task_stage[task.get("id", "")] = stage["key"]
        stages.append(stage)
    if not stages:
        raise BpmnImportError(f"{where}: no user task: draw each stage as a user task")
    merged["stages"] = stages
    merged["entry_points"] = _entries(starts[0], nodes, out, task_stage)
    for needed in ("officer_roles", "categories"):
        if needed not in merged:
            known = ", ".join(t.key for t in base.tracks) if base else "none"
            raise BpmnImportError(
                f"{where}: the track {key!r} has no {needed}: name the pool after a track of the authority "
                f"(tracks: {known}) or give esc:{needed} on the process"
            )
    return merged


def _ordered_tasks(
    proc: ET.Element,
    nodes: dict[str, ET.Element],
    out: dict[str, list[ET.Element]],
    boundaries: dict[str, list[ET.Element]],
    shapes: dict[str, tuple[float, float]],
    start: ET.Element,
) -> list[ET.Element]:
    """The process's user tasks in ladder order: a topological order of the flow from the start, ties
    broken left to right in the diagram."""
    succ: dict[str, list[str]] = {}
    for ident in nodes:
        nxt = [f.get("targetRef", "") for f in out.get(ident, [])]
        nxt += [e.get("id", "") for e in boundaries.get(ident, [])]
        succ[ident] = [n for n in nxt if n in nodes]
    reach: set[str] = set()
    stack = [start.get("id", "")]
    while stack:
        n = stack.pop()
        if n not in reach:
            reach.add(n)
            stack += succ.get(n, [])
    indeg = {n: 0 for n in reach}
    for n in reach:
        for m in succ[n]:
            indeg[m] += 1
    ready = [n for n in reach if indeg[n] == 0]
    order: list[str] = []
    while ready:
        ready.sort(key=lambda n: (shapes.get(n, (0.0, 0.0))[0], list(nodes).index(n)))
        n = ready.pop(0)
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    if len(order) != len(reach):
        loop = sorted(set(reach) - set(order))[0]
        raise refuse(
            nodes[loop],
            "a flow loops back to an earlier element",
            "the ladder only goes up: end the process where it stops",
        )
    unreached = [el for el in proc.findall(b("userTask")) if el.get("id") not in reach]
    if unreached:
        raise refuse(unreached[0], "a user task the start does not lead to", "connect it into the ladder")
    return [nodes[n] for n in order if nodes[n].tag == b("userTask")]


def _stage(
    task: ET.Element,
    nodes: dict[str, ET.Element],
    out: dict[str, list[ET.Element]],
    into: dict[str, list[ET.Element]],
    boundaries: dict[str, list[ET.Element]],
    lanes: dict[str, str],
    used: set[str],
) -> dict[str, Any]:
    ident = task.get("id", "")
    where = f"user task {ident}"
    name = (task.get("name") or "").strip()
    if not name:
        raise refuse(
            task, "a stage without a name", "name the user task after the stage ('Stage 2 - Team manager')"
        )
    stage: dict[str, Any] = decode(task, Stage, where)
    key = stage.get("key") or slug(name)
    n, unique = 2, key
    while unique in used:
        unique, n = f"{key}-{n}", n + 1
    used.add(unique)
    stage["key"] = unique
    stage["name"] = name
    stage.setdefault("formal", "informal" not in name.lower())
    to = _groups(task, lanes)
    if not to:
        raise refuse(
            task, "a stage with no role to answer it", "set its candidate groups to role keys (team_manager)"
        )
    stage["to"] = to
    doc = task.find(b("documentation"))
    if doc is not None and (doc.text or "").strip():
        stage["note"] = doc.text
    deadlines = [e for e in boundaries.get(ident, []) if e.get("cancelActivity", "true") != "false"]
    for e in deadlines:
        if e.find(b("timerEventDefinition")) is None:
            raise refuse(
                e,
                "an interrupting boundary event that is not a timer",
                "make it non-interrupting (an extension request or note) or a timer (the deadline)",
            )
    if len(deadlines) > 1:
        raise refuse(deadlines[1], "a second deadline on one stage", "keep one interrupting timer per stage")
    days, hours = _timer_value(deadlines[0]) if deadlines else (None, None)
    stage["response_working_days"] = days
    if hours is not None:
        stage["response_working_hours"] = hours
    before = [nodes.get(f.get("sourceRef", "")) for f in into.get(ident, [])]
    if len(before) == 1 and before[0] is not None and before[0].tag in TASKS:
        gate = before[0]
        kind = gate.get(esc("gate")) or (
            "agreement" if (gate.get("name") or "").lower().startswith("agree") else "consultation"
        )
        with_roles = _groups(gate, lanes)
        if not with_roles:
            raise refuse(
                gate, "a gate before a stage with no role", "set its candidate groups to the roles consulted"
            )
        note = gate.find(b("documentation"))
        stage["entry_gate"] = {
            "kind": kind,
            "with_roles": with_roles,
            "note": (note.text or "") if note is not None else "",
        }
    if _after_exceptional_decision(task, nodes, into):
        stage.setdefault("exceptional", True)
    after = [nodes.get(f.get("targetRef", "")) for f in out.get(ident, [])]
    if any(a is not None and a.tag in TASKS for a in after):
        stage["meeting"] = True
    return stage


def _after_exceptional_decision(
    task: ET.Element, nodes: dict[str, ET.Element], into: dict[str, list[ET.Element]]
) -> bool:
    """Whether the stage (or its entry gate) is reached only from a gateway that asks whether the
    circumstances are exceptional: the stage is then kept for them."""
    node: ET.Element | None = task
    for _ in range(2):  # the stage, then its gate
        flows = into.get(node.get("id", ""), []) if node is not None else []
        if len(flows) != 1:
            return False
        node = nodes.get(flows[0].get("sourceRef", ""))
        if node is None:
            return False
        if node.tag == b("exclusiveGateway"):
            return "exceptional" in (node.get("name") or "").lower()
        if node.tag not in TASKS:
            return False
    return False


def _entries(
    start: ET.Element,
    nodes: dict[str, ET.Element],
    out: dict[str, list[ET.Element]],
    task_stage: dict[str, str],
) -> list[dict[str, Any]]:
    """Entry points: the flows of a splitting gateway right after the start, each to the stage it reaches."""
    first = [nodes.get(f.get("targetRef", "")) for f in out.get(start.get("id", ""), [])]
    if len(first) != 1 or first[0] is None or first[0].tag != b("exclusiveGateway"):
        return []
    gateway = first[0]
    branches = out.get(gateway.get("id", ""), [])
    if len(branches) < 2:
        return []
    entries: list[dict[str, Any]] = []
    for flow in branches:
        target = nodes.get(flow.get("targetRef", ""))
        seen = 0
        while target is not None and target.tag != b("userTask") and seen < 5:
            nxt = out.get(target.get("id", ""), [])
            target = nodes.get(nxt[0].get("targetRef", "")) if nxt else None
            seen += 1
        if target is None or target.get("id") not in task_stage:
            raise refuse(
                flow,
                "an entry flow that does not lead to a stage",
                "connect each of the gateway's flows to a stage",
            )
        entry = decode(flow, EntryPoint, f"sequence flow {flow.get('id')}")
        entry["stage"] = task_stage[target.get("id", "")]
        entries.append(entry)
    return entries


def _one_task(proc: ET.Element, step: str) -> ET.Element:
    tasks = proc.findall(b("userTask"))
    for t in tasks:
        if t.get(esc("step")) == step:
            return t
    raise BpmnImportError(f"process {proc.get('id')}: no user task with esc:step {step!r}")


def _deadline(proc: ET.Element, task: ET.Element) -> tuple[int | None, int | None]:
    for e in proc.findall(b("boundaryEvent")):
        if e.get("attachedToRef") == task.get("id") and e.find(b("timerEventDefinition")) is not None:
            return _timer_value(e)
    return None, None


def _deemed(proc: ET.Element) -> dict[str, Any]:
    data = decode(proc, DeemedAgreement, f"process {proc.get('id')}")
    data.pop("process", None)
    task = _one_task(proc, "decisions")
    data["label"] = task.get("name", "")
    data["sent_to"] = _groups(task, {})
    days, _ = _deadline(proc, task)
    if days is not None:
        data["working_days"] = days
    return data


def _practice(proc: ET.Element) -> dict[str, Any]:
    data = decode(proc, PracticeConcerns, f"process {proc.get('id')}")
    first, second = _one_task(proc, "investigation"), _one_task(proc, "escalation")
    data["label"], data["escalation_label"] = first.get("name", ""), second.get("name", "")
    data["investigated_by"], data["escalates_to"] = _groups(first, {}), _groups(second, {})
    days, _ = _deadline(proc, first)
    if days is not None:
        data["working_days"] = days
    data["escalation_working_days"] = _deadline(proc, second)[0]
    return data


__all__ = ["ESC", "BpmnImportError", "import_bpmn"]
