"""Every track of every protocol file exported as BPMN 2.0: valid against the OMG XSDs (shipped by the
bpmn-moddle npm package) and clean under bpmnlint's recommended rules (node, from node_modules)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import xmlschema

from protocols import available_protocols, load_protocol
from protocols.bpmn import export_bpmn
from protocols.bpmn.fields import BPMN, ESC, ZEEBE
from tests.cli_runner import Cli

ROOT = Path(__file__).resolve().parent.parent
XSD = ROOT / "node_modules" / "bpmn-moddle" / "resources" / "bpmn" / "xsd" / "BPMN20.xsd"
LINT = ROOT / "tests" / "bpmn" / "lint.cjs"

EXPORTS = [
    (key, track)
    for key in available_protocols()
    for track in [None, *(t.key for t in load_protocol(key).tracks)]
]


def _need_assets() -> None:
    if not XSD.is_file() or shutil.which("node") is None:
        pytest.fail("node and node_modules are needed: run `make assets` (npm ci) first")


@cache
def _schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def lint(paths: list[Path]) -> dict[str, list[dict[str, str]]]:
    """bpmnlint's findings (recommended rules, warnings included) for each file, and bpmn-moddle's import
    warnings as findings of the rule 'import'."""
    done = subprocess.run(
        ["node", str(LINT), *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, list[dict[str, str]]] = json.loads(done.stdout)
    return found


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str | None], Path]:
    _need_assets()
    folder = tmp_path_factory.mktemp("bpmn")
    files = {}
    for key, track in EXPORTS:
        path = folder / f"{key}-{track or 'all'}.bpmn"
        path.write_text(export_bpmn(load_protocol(key), track), encoding="utf-8")
        files[(key, track)] = path
    return files


@pytest.mark.parametrize(("key", "track"), EXPORTS)
def test_export_is_valid_bpmn_20(
    exported: dict[tuple[str, str | None], Path], key: str, track: str | None
) -> None:
    path = exported[(key, track)]
    errors = list(_schema().iter_errors(str(path)))
    assert not errors, f"{path.name}: {errors[0]}"


def test_the_xsd_check_can_fail(tmp_path: Path) -> None:
    """A task outside a process, and a timer with two durations, are refused by the schema."""
    _need_assets()
    text = export_bpmn(load_protocol("wigan"), "iro")
    broken = text.replace(
        "<bpmn:timeDuration ", "<bpmn:timeCycle>R/P1D</bpmn:timeCycle><bpmn:timeDuration ", 1
    )
    path = tmp_path / "broken.bpmn"
    path.write_text(broken, encoding="utf-8")
    assert list(_schema().iter_errors(str(path)))


def test_every_export_lints_clean(exported: dict[tuple[str, str | None], Path]) -> None:
    found = lint(list(exported.values()))
    assert {name: issues for name, issues in found.items() if issues} == {}


def test_the_lint_check_can_fail(tmp_path: Path) -> None:
    """A task connected to nothing (and not drawn), and an unnamed gateway split, are reported."""
    _need_assets()
    text = export_bpmn(load_protocol("wigan"), "iro")
    path = tmp_path / "broken.bpmn"
    path.write_text(
        text.replace('name="Resolved?"', "", 1).replace(
            "</bpmn:process>", '<bpmn:task id="lonely" name="Lonely" /></bpmn:process>'
        ),
        encoding="utf-8",
    )
    rules = {f["rule"] for f in lint([path])[str(path)]}
    assert {"label-required", "no-disconnected", "no-bpmndi"} <= rules


def _local(tag: str) -> str:
    return tag.split("}", 1)[1]


@pytest.mark.parametrize(("key", "track"), [e for e in EXPORTS if e[1] is not None])
def test_a_track_is_what_its_protocol_says(key: str, track: str) -> None:
    """A user task per stage, in order, for its roles; a deadline timer in working days or hours; gates,
    meetings, the end events and the event sub-processes."""
    protocol = load_protocol(key)
    t = protocol.track(track)
    root = ET.fromstring(export_bpmn(protocol, track))
    proc = root.find(f"{{{BPMN}}}process")
    assert proc is not None and proc.get(f"{{{ESC}}}key") == track
    tasks = proc.findall(f"{{{BPMN}}}userTask")
    assert [x.get("name") for x in tasks] == [s.name for s in t.stages]
    for stage, task in zip(t.stages, tasks, strict=True):
        groups = task.find(f"{{{BPMN}}}extensionElements/{{{ZEEBE}}}assignmentDefinition")
        assert groups is not None and groups.get("candidateGroups") == ",".join(stage.to)
        assert task.get(f"{{{ESC}}}cc", "") == " ".join(stage.cc)
        attached = [
            e for e in proc.findall(f"{{{BPMN}}}boundaryEvent") if e.get("attachedToRef") == task.get("id")
        ]
        deadline = [e for e in attached if e.get("cancelActivity") != "false"]
        if stage.response_working_days is None and stage.response_working_hours is None:
            assert deadline == []
        else:
            (timer,) = deadline
            text = timer.findtext(f"{{{BPMN}}}timerEventDefinition/{{{BPMN}}}timeDuration")
            days, hours = stage.response_working_days, stage.response_working_hours
            assert text == (f"PT{hours}H" if hours else f"P{days}D")
            assert timer.get(f"{{{ESC}}}calendar") == ("working-hours" if hours else "working-days")
        kinds = sorted(e.get(f"{{{ESC}}}event", "") for e in attached if e.get("cancelActivity") == "false")
        assert kinds == ["answer", "extension", "note", "reminder"]
    gates = [x for x in proc.findall(f"{{{BPMN}}}task") if x.get(f"{{{ESC}}}gate")]
    assert len(gates) == sum(1 for s in t.stages if s.entry_gate)
    meetings = proc.findall(f"{{{BPMN}}}manualTask")
    assert len(meetings) == sum(1 for s in t.stages if s.meeting)
    outcomes = {e.get(f"{{{ESC}}}outcome") for e in proc.iter(f"{{{BPMN}}}endEvent")}
    assert {"resolved", "exhausted", "withdrawn", "closed", "referred"} <= outcomes
    paths = {s.get(f"{{{ESC}}}path") for s in proc.findall(f"{{{BPMN}}}subProcess")}
    assert {"withdrawn", "closed", "cafcass"} <= paths
    assert ("bypass" in paths) == (t.bypass or protocol.bypass).allowed
    if t.entry_points:
        entry = proc.find(f"{{{BPMN}}}exclusiveGateway[@name='Where does it start?']")
        assert entry is not None
        assert len(
            [f for f in proc.findall(f"{{{BPMN}}}sequenceFlow") if f.get("sourceRef") == entry.get("id")]
        ) == len(t.entry_points)


def test_the_other_process_kinds_export_too() -> None:
    names = {
        key: {
            p.get(f"{{{ESC}}}process")
            for p in ET.fromstring(export_bpmn(load_protocol(key))).findall(f"{{{BPMN}}}process")
        }
        for key in available_protocols()
    }
    for key, kinds in names.items():
        p = load_protocol(key)
        assert ("deemed_agreement" in kinds) == (p.deemed_agreement is not None), key
        assert ("practice_concerns" in kinds) == (p.practice_concerns is not None), key
    assert any("deemed_agreement" in k for k in names.values()) and any(
        "practice_concerns" in k for k in names.values()
    )


@pytest.mark.asyncio
async def test_the_command_writes_the_file_and_names_a_wrong_track(tmp_path: Path) -> None:
    cli = Cli("127.0.0.1:1", tmp_path)  # needs no server
    out = await cli.ok("protocol", "bpmn", "dudley", "--track", "iro-cp")
    assert out.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert ET.fromstring(out.encode()).find(f"{{{BPMN}}}process") is not None
    err = await cli.fails(2, "protocol", "bpmn", "dudley", "--track", "nope")
    assert "--track nope" in err and "iro-cp" in err


DI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
TRACK_EXPORTS = [e for e in EXPORTS if e[1] is not None]


def _bounds(root: ET.Element) -> dict[str, tuple[float, float, float, float]]:
    """Element id -> its shape's (left, top, right, bottom)."""
    out = {}
    for shape in root.iter(f"{{{DI}}}BPMNShape"):
        box = shape.find(f"{{{DC}}}Bounds")
        assert box is not None
        x, y, w, h = (float(box.get(k, "0")) for k in ("x", "y", "width", "height"))
        out[shape.get("bpmnElement", "")] = (x, y, x + w, y + h)
    return out


def _inside(inner: tuple[float, ...], outer: tuple[float, ...]) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


@pytest.mark.parametrize(("key", "track"), TRACK_EXPORTS)
def test_each_role_sent_a_stage_has_a_lane_and_every_shape_stays_in_its_lane(key: str, track: str) -> None:
    """A lane per first recipient of a stage (the last stage's at the top), the officer's at the foot; every
    flow node in one lane and drawn inside it; the lanes fill the pool without overlapping."""
    protocol = load_protocol(key)
    t = protocol.track(track)
    root = ET.fromstring(export_bpmn(protocol, track))
    proc = root.find(f"{{{BPMN}}}process")
    assert proc is not None
    lanes = proc.findall(f"{{{BPMN}}}laneSet/{{{BPMN}}}lane")
    roles = list(dict.fromkeys(s.to[0] for s in t.stages))
    assert [lane.get(f"{{{ESC}}}role") for lane in lanes] == [*reversed(roles), None]
    assert [lane.get("name") for lane in lanes] == [
        *(protocol.role_name(r) for r in reversed(roles)),
        "Raising officer",
    ]
    members = {
        lane.get("id", ""): [r.text or "" for r in lane.findall(f"{{{BPMN}}}flowNodeRef")] for lane in lanes
    }
    lane_of = {ref: lane for lane, refs in members.items() for ref in refs}
    assert sum(len(refs) for refs in members.values()) == len(lane_of)  # no node in two lanes
    nodes = [
        el.get("id", "")
        for el in proc
        if _local(el.tag) not in {"sequenceFlow", "laneSet", "extensionElements", "documentation"}
    ]
    assert sorted(lane_of) == sorted(nodes)
    by_role = {lane.get(f"{{{ESC}}}role"): lane.get("id") for lane in lanes}
    for stage, task in zip(t.stages, proc.findall(f"{{{BPMN}}}userTask"), strict=True):
        assert lane_of[task.get("id", "")] == by_role[stage.to[0]], stage.key
    officer = lanes[-1].get("id")
    start = proc.find(f"{{{BPMN}}}startEvent")
    assert start is not None and lane_of[start.get("id", "")] == officer
    officers = [s.get("id") for s in proc.findall(f"{{{BPMN}}}subProcess")]
    officers += [
        g.get("id") for g in proc.findall(f"{{{BPMN}}}exclusiveGateway[@name='Exceptional circumstances?']")
    ]
    assert {lane_of[i or ""] for i in officers} == {officer}
    bounds = _bounds(root)
    pool = next(
        bounds[p.get("id", "")]
        for p in root.iter(f"{{{BPMN}}}participant")
        if p.get("processRef") == proc.get("id")
    )
    for lane_id, refs in members.items():
        assert _inside(bounds[lane_id], pool), lane_id
        for ref in refs:
            assert _inside(bounds[ref or ""], bounds[lane_id]), f"{ref} is drawn outside its lane {lane_id}"
    tops = sorted((bounds[i][1], bounds[i][3]) for i in members)
    assert tops[0][0] == pool[1] and tops[-1][1] == pool[3]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(tops))


EXCEPTIONAL = [
    (k, t) for k, t in TRACK_EXPORTS if any(s.exceptional for s in load_protocol(k).track(t or "").stages)
]


def test_some_track_has_a_stage_kept_for_exceptional_circumstances() -> None:
    assert len(EXCEPTIONAL) >= 2


@pytest.mark.parametrize(("key", "track"), TRACK_EXPORTS)
def test_a_stage_kept_for_exceptional_circumstances_is_reached_only_by_the_officers_decision(
    key: str, track: str
) -> None:
    """Its only way in is the flow 'exceptional circumstances' out of the officer's gateway 'Exceptional
    circumstances?', whose default ends 'Not exceptional'; no deadline or 'not resolved' leads straight to it.
    Every other stage is reached without such a gateway."""
    protocol = load_protocol(key)
    t = protocol.track(track)
    root = ET.fromstring(export_bpmn(protocol, track))
    proc = root.find(f"{{{BPMN}}}process")
    assert proc is not None
    nodes = {el.get("id"): el for el in proc}
    flows = proc.findall(f"{{{BPMN}}}sequenceFlow")
    for stage, task in zip(t.stages, proc.findall(f"{{{BPMN}}}userTask"), strict=True):
        entry = task
        into = [f for f in flows if f.get("targetRef") == task.get("id")]
        if stage.entry_gate is not None:
            (gate_flow,) = into
            entry = nodes[gate_flow.get("sourceRef")]
            into = [f for f in flows if f.get("targetRef") == entry.get("id")]
        sources = [nodes[f.get("sourceRef")] for f in into]
        asks = [s for s in sources if s.get("name") == "Exceptional circumstances?"]
        assert (task.get(f"{{{ESC}}}exceptional") == "true") == stage.exceptional
        if not stage.exceptional:
            assert asks == [], stage.key
            continue
        assert len(into) == 1 and len(asks) == 1 and asks[0].tag == f"{{{BPMN}}}exclusiveGateway"
        (flow,) = into
        assert flow.get("name") == "exceptional circumstances"
        assert flow.findtext(f"{{{BPMN}}}conditionExpression") == "exceptional circumstances"
        gateway = asks[0]
        default = next(f for f in flows if f.get("id") == gateway.get("default"))
        end = nodes[default.get("targetRef")]
        assert (end.tag, end.get("name"), end.get(f"{{{ESC}}}outcome")) == (
            f"{{{BPMN}}}endEvent",
            "Not exceptional",
            "exhausted",
        )
        ins = [nodes[f.get("sourceRef")] for f in flows if f.get("targetRef") == gateway.get("id")]
        assert all(s.tag != f"{{{BPMN}}}boundaryEvent" for s in ins), "a deadline leads past the decision"
