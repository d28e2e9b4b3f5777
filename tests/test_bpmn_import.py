"""BPMN import: export then import gives back the same protocol, import then export an equivalent diagram;
what lies outside the subset is refused; and a protocol drawn by hand runs on the time-skipping server."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from temporalio.testing import WorkflowEnvironment

from protocols import available_protocols, load_protocol, load_protocol_file
from protocols.bpmn import BpmnImportError, export_bpmn, import_bpmn
from protocols.bpmn.fields import BPMN, ZEEBE
from schemas.escalation import Accept, Actor, EventKind, RecordConsultation, Respond, Status
from schemas.protocol import GateKind, Protocol
from starter.cli.bpmn import protocol_yaml
from tests.cli_runner import Cli
from tests.driver import make_raise
from tests.workflow_harness import running, with_unique_id

DRAWN = Path(__file__).parent / "bpmn" / "wigan-iro-modeler.bpmn"
TRACKS = [(key, t.key) for key in available_protocols() for t in load_protocol(key).tracks]


@pytest.mark.parametrize("key", available_protocols())
def test_export_then_import_gives_back_the_same_protocol(key: str) -> None:
    protocol = load_protocol(key)
    assert import_bpmn(export_bpmn(protocol)) == protocol


@pytest.mark.parametrize(("key", "track"), TRACKS)
def test_one_track_exported_comes_back_the_same(key: str, track: str) -> None:
    protocol = load_protocol(key)
    back = import_bpmn(export_bpmn(protocol, track))
    assert [t.key for t in back.tracks] == [track]
    assert back.track(track) == protocol.track(track)


def test_the_imported_protocol_file_loads_as_the_same_protocol(tmp_path: Path) -> None:
    protocol = load_protocol("waltham-forest-fwi")
    path = tmp_path / "waltham-forest-fwi.yaml"
    path.write_text(protocol_yaml(import_bpmn(export_bpmn(protocol))), encoding="utf-8")
    assert load_protocol_file(path) == protocol


def drawn() -> Protocol:
    return import_bpmn(DRAWN.read_bytes(), "wigan")


def test_a_protocol_drawn_in_a_modeler_imports() -> None:
    protocol = drawn()
    wigan = load_protocol("wigan")
    assert protocol.key == "wigan" and protocol.roles == wigan.roles
    (track,) = protocol.tracks
    assert track.key == "iro" and track.categories == wigan.track("iro").categories
    first, second, third = track.stages
    assert (first.key, first.formal, first.to, first.response_working_days) == (
        "informal-recommendation-to-the-team-manager",
        False,
        ["team_manager"],
        5,
    )
    assert first.note.startswith("Discussed with the allocated social worker")
    assert (second.to, second.response_working_days, second.formal) == (
        ["service_lead", "team_manager"],
        3,
        True,
    )
    assert second.entry_gate is not None and second.entry_gate.kind is GateKind.AGREEMENT
    assert second.entry_gate.with_roles == ["iro_team_manager"]
    # the third stage's role is its lane's name; its deadline is in working hours
    assert (third.to, third.response_working_days, third.response_working_hours) == (
        ["head_of_service"],
        None,
        4,
    )


def _tasks(xml: str) -> list[tuple[str, str, str]]:
    """(name, candidate groups, deadline) of each user task, in document order."""
    root = ET.fromstring(xml.encode())
    out = []
    for proc in root.findall(f"{{{BPMN}}}process"):
        bounds = {
            e.get("attachedToRef"): e
            for e in proc.findall(f"{{{BPMN}}}boundaryEvent")
            if e.get("cancelActivity") != "false"
        }
        for task in proc.findall(f"{{{BPMN}}}userTask"):
            groups = task.find(f"{{{BPMN}}}extensionElements/{{{ZEEBE}}}assignmentDefinition")
            timer = bounds.get(task.get("id"))
            duration = timer.findtext(f".//{{{BPMN}}}timeDuration") if timer is not None else ""
            out.append(
                (
                    task.get("name", ""),
                    groups.get("candidateGroups", "") if groups is not None else "",
                    duration or "",
                )
            )
    return out


def test_import_then_export_gives_an_equivalent_diagram() -> None:
    protocol = drawn()
    again = export_bpmn(protocol)
    assert _tasks(again) == [
        ("Informal recommendation to the team manager", "team_manager", "P5D"),
        ("Locality service lead reviews", "service_lead,team_manager", "P3D"),
        ("Head of service decides", "head_of_service", "PT4H"),
    ]
    assert import_bpmn(again) == protocol


def _swap(text: str, ident: str, tag: str) -> str:
    """The element ``ident`` made a ``tag`` (its content kept)."""
    pattern = re.compile(rf'<bpmn:(\w+) id="{ident}"(.*?)</bpmn:\1>', re.S)
    found = pattern.search(text)
    assert found, ident
    return (
        text[: found.start()] + f'<bpmn:{tag} id="{ident}"{found.group(2)}</bpmn:{tag}>' + text[found.end() :]
    )


TEXT = DRAWN.read_text(encoding="utf-8")
REFUSALS = {
    "service task": (
        _swap(TEXT, "Activity_07dx9sl", "serviceTask"),
        "Activity_07dx9sl (serviceTask)",
        "user task",
    ),
    "parallel gateway": (
        _swap(TEXT, "Gateway_0yq5qv3", "parallelGateway"),
        "Gateway_0yq5qv3 (parallelGateway)",
        "exclusive gateway",
    ),
    "intermediate timer": (
        _swap(TEXT, "Event_17x3aiu", "intermediateCatchEvent"),
        "Event_17x3aiu (intermediateCatchEvent)",
        "boundary timer",
    ),
    "signal": (
        TEXT.replace(
            '<bpmn:timerEventDefinition id="TimerEventDefinition_0m3s8p1">\n        '
            '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">P5D</bpmn:timeDuration>\n      '
            "</bpmn:timerEventDefinition>",
            '<bpmn:signalEventDefinition id="Sig_1" />',
        ),
        "Event_17x3aiu (boundaryEvent): a signalEventDefinition",
        "message",
    ),
    "timer cycle": (
        TEXT.replace(
            '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">P5D</bpmn:timeDuration>',
            '<bpmn:timeCycle xsi:type="bpmn:tFormalExpression">R3/P1D</bpmn:timeCycle>',
        ),
        "Event_17x3aiu (boundaryEvent): a timer without a duration",
        "P5D",
    ),
    "weeks": (TEXT.replace(">P5D<", ">P1W<"), "timer duration 'P1W'", "P5D (5 working days)"),
    "assignee": (
        TEXT.replace('candidateGroups="team_manager" />', 'assignee="jo.bloggs" />'),
        "Activity_0c9l3ke (userTask): an assignee is a person",
        "candidate groups",
    ),
    "multi-instance": (
        TEXT.replace(
            "<bpmn:incoming>Flow_1c2g7e9</bpmn:incoming>\n      <bpmn:outgoing>Flow_0q2tq4z</bpmn:outgoing>",
            "<bpmn:incoming>Flow_1c2g7e9</bpmn:incoming>\n      <bpmn:outgoing>Flow_0q2tq4z</bpmn:outgoing>"
            "<bpmn:multiInstanceLoopCharacteristics />",
        ),
        "Activity_07dx9sl (userTask): multiInstanceLoopCharacteristics",
        "candidate groups",
    ),
    "embedded sub-process": (
        TEXT.replace("</bpmn:process>", '<bpmn:subProcess id="Sub_1" name="More" /></bpmn:process>'),
        "Sub_1 (subProcess)",
        "event sub-processes",
    ),
    "loop": (
        TEXT.replace(
            'id="Flow_1v3ye8k" name="no" sourceRef="Gateway_03m3q1n" targetRef="Gateway_1lq5e2w"',
            'id="Flow_1v3ye8k" name="no" sourceRef="Gateway_03m3q1n" targetRef="Gateway_0yq5qv3"',
        ),
        "loops back",
        "only goes up",
    ),
    "stage without a role": (
        TEXT.replace("<bpmn:flowNodeRef>Activity_1xq0l5h</bpmn:flowNodeRef>", ""),
        "Activity_1xq0l5h (userTask): a stage with no role",
        "candidate groups",
    ),
    "message flow": (
        TEXT.replace(
            "</bpmn:collaboration>",
            '<bpmn:messageFlow id="Mf_1" sourceRef="Activity_0c9l3ke" targetRef="Activity_07dx9sl" />'
            "</bpmn:collaboration>",
        ),
        "Mf_1 (messageFlow)",
        "leave message flows",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_elements_outside_the_subset_are_refused(case: str) -> None:
    text, where, instead = REFUSALS[case]
    assert text != TEXT
    with pytest.raises(BpmnImportError) as info:
        import_bpmn(text, "wigan")
    message = str(info.value)
    assert where in message and instead in message, message
    assert "instead" in message or "draw" in message or "give" in message


def test_a_diagram_with_no_settings_needs_an_authority() -> None:
    with pytest.raises(BpmnImportError, match="--authority KEY"):
        import_bpmn(DRAWN.read_bytes())


def test_a_pool_that_names_no_track_is_told_what_to_name_it() -> None:
    text = TEXT.replace('name="IRO" processRef', 'name="Somebody else" processRef').replace(
        'name="IRO" isExecutable', 'name="Somebody else" isExecutable'
    )
    with pytest.raises(
        BpmnImportError,
        match=r"no officer_roles: name the pool after a track of the authority "
        r"\(tracks: iro, cp, partner-agencies\)",
    ):
        import_bpmn(text, "wigan")


def test_hostile_xml_is_refused_unexpanded() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;">]><d>&b;</d>'
    )
    with pytest.raises(BpmnImportError, match="not readable as XML"):
        import_bpmn(bomb, "wigan")


async def test_the_command_prints_the_protocol_file_or_one_line_why_not(tmp_path: Path) -> None:
    cli = Cli("127.0.0.1:1", tmp_path)  # needs no server
    out = await cli.ok("protocol", "import", str(DRAWN), "--authority", "wigan")
    saved = tmp_path / "wigan.yaml"
    saved.write_text(out, encoding="utf-8")
    assert load_protocol_file(saved) == drawn()
    bad = tmp_path / "bad.bpmn"
    bad.write_text(REFUSALS["service task"][0], encoding="utf-8")
    err = await cli.fails(2, "protocol", "import", str(bad), "--authority", "wigan")
    assert err.startswith(f"{bad}: element Activity_07dx9sl (serviceTask)")


async def test_a_drawn_protocol_runs_an_escalation_end_to_end(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Stage 1 times out after its 5 working days; the IRO team manager agrees to stage 2, which times out
    after 3; the head of service answers within 4 working hours and the officer accepts."""
    protocol = drawn()
    raise_ = with_unique_id(make_raise("wigan", "iro", protocol=protocol))
    officer = raise_.officer
    first, second, third = protocol.track("iro").stages
    async with running(time_skipping_env, raise_, tmp_path) as run:
        view = await run.view()
        assert view.stage == first.key and view.status is Status.AWAITING_RESPONSE
        await run.update(
            "record_consultation",
            RecordConsultation(
                actor=officer, stage=second.key, with_role="iro_team_manager", agreed=True, summary="Agreed."
            ),
        )
        await run.skip_past_deadline()
        view = await run.eventually(lambda v: v.stage == second.key)
        assert sorted(view.held_by) == ["service_lead", "team_manager"]
        await run.skip_past_deadline()
        view = await run.eventually(lambda v: v.stage == third.key)
        assert view.held_by == ["head_of_service"] and view.deadline is not None
        assert view.deadline - await run.now() < timedelta(days=4)
        await run.update(
            "respond", Respond(actor=Actor(id="hos-1", role="head_of_service"), answer="Plan agreed.")
        )
        result = await run.update("accept", Accept(actor=officer, note="Thank you."))
        assert result.status is Status.RESOLVED
        outcome = await run.result()
    assert outcome.status is Status.RESOLVED
    kinds = [e.entry.kind for e in run.records.events(raise_.escalation_id)]
    assert kinds.count(EventKind.SENT_TO_STAGE) == 3 and kinds[-1] is EventKind.RESOLVED


def test_lanes_give_the_roles_and_the_officers_gateway_the_exceptional_stage() -> None:
    """Without candidate groups, each stage's role is its lane's (esc:role); without esc:exceptional, a stage
    reached through the gateway 'Exceptional circumstances?' is kept for exceptional circumstances."""
    protocol = load_protocol("wigan")
    text = export_bpmn(protocol, "iro")
    bare = re.sub(r'<zeebe:assignmentDefinition candidateGroups="[^"]*" />', "", text)
    bare = bare.replace(' esc:exceptional="true"', "")
    assert "candidateGroups" not in bare and "esc:exceptional" not in bare
    back = import_bpmn(bare).track("iro")
    stages = protocol.track("iro").stages
    assert [s.to for s in back.stages] == [s.to[:1] for s in stages]
    assert [s.exceptional for s in back.stages] == [s.exceptional for s in stages]
    assert any(s.exceptional for s in stages)
