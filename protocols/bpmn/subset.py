"""The BPMN subset that ``escalate protocol import`` reads, and the words for what lies outside it: each
refusal names the element, what is not supported and what to use instead."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from protocols.bpmn.fields import BPMN, BPMNDI, b

FLOW_NODES = {"startEvent", "endEvent", "userTask", "task", "manualTask", "exclusiveGateway", "boundaryEvent"}
ALLOWED_IN_PROCESS = FLOW_NODES | {
    "sequenceFlow",
    "subProcess",
    "callActivity",
    "textAnnotation",
    "association",
    "laneSet",
    "documentation",
    "extensionElements",
}
ALLOWED_EVENT_DEFINITIONS = {"timerEventDefinition", "messageEventDefinition"}

INSTEAD = {
    "parallelGateway": "a stage is sent to all its addressees at once: list them as the user task's "
    "candidate groups, and use an exclusive gateway for 'resolved / not resolved'",
    "inclusiveGateway": "use an exclusive gateway for 'resolved / not resolved'",
    "complexGateway": "use an exclusive gateway for 'resolved / not resolved'",
    "eventBasedGateway": "put an interrupting boundary timer on the stage's user task for its deadline",
    "serviceTask": "the engine sends notices and records itself: draw a stage as a user task",
    "scriptTask": "the engine sends notices and records itself: draw a stage as a user task",
    "sendTask": "the engine sends notices itself: draw a stage as a user task for the roles who answer",
    "receiveTask": "an answer completes the stage's user task: draw the stage as a user task",
    "businessRuleTask": "draw a stage as a user task, and the decision as an exclusive gateway",
    "intermediateCatchEvent": "put a boundary timer or message event on the stage's user task",
    "intermediateThrowEvent": "the engine sends notices itself: leave it out",
    "subProcess": "draw the stages flat in the process; only event sub-processes (withdrawal, closure, "
    "CAFCASS referral, bypass) are read",
    "callActivity": "only the review-decisions process may call a track (its informal resolution)",
    "transaction": "draw the stages flat in the process",
    "adHocSubProcess": "draw the stages in order in the process",
    "dataObject": "leave data objects out: the protocol's fields are extension attributes (docs/bpmn.md)",
    "dataObjectReference": "leave data objects out: the protocol's fields are extension attributes",
    "dataStoreReference": "leave data stores out: the engine keeps its own records",
    "errorEventDefinition": "use a timer (the deadline, a reminder) or a message (extension request, note)",
    "signalEventDefinition": "use a message event",
    "escalationEventDefinition": "a stage escalates through its 'not resolved' flow to the next stage",
    "conditionalEventDefinition": "use a timer or a message event",
    "compensateEventDefinition": "leave compensation out",
    "cancelEventDefinition": "leave it out: withdrawal is an event sub-process with a message start",
    "terminateEventDefinition": "use a plain end event",
    "linkEventDefinition": "draw the sequence flow itself",
    "multiInstanceLoopCharacteristics": "a stage is sent once: list every addressee as candidate groups",
    "standardLoopCharacteristics": "a stage is sent once; escalation goes on to the next stage",
    "messageFlow": "each pool is a process of its own: leave message flows between pools out",
    "choreography": "draw a process (a pool per track)",
    "conversation": "draw a process (a pool per track)",
}


class SubsetError(ValueError):
    """An element outside the subset; the message says which, why and what to use instead."""


def refuse(el: ET.Element, what: str, instead: str) -> SubsetError:
    return SubsetError(f"element {el.get('id') or '(no id)'} ({_local(el.tag)}): {what}; instead, {instead}")


def _local(tag: str) -> str:
    return tag.split("}", 1)[-1]


def check_definitions(root: ET.Element) -> None:
    """Refuse any element outside the subset anywhere in the file."""
    if root.tag != b("definitions"):
        raise SubsetError(
            f"the file's root is {_local(root.tag)}, not BPMN 2.0 definitions: save it as BPMN 2.0 XML"
        )
    for child in root:
        name = _local(child.tag)
        if child.tag.startswith(f"{{{BPMNDI}}}") or name in {"message", "extensionElements", "documentation"}:
            continue
        if child.tag == b("collaboration"):
            for part in child:
                local = _local(part.tag)
                if local in {
                    "participant",
                    "extensionElements",
                    "documentation",
                    "textAnnotation",
                    "association",
                }:
                    continue
                raise refuse(part, f"{local} is not supported", INSTEAD.get(local, "leave it out"))
            continue
        if child.tag == b("process"):
            _check_container(child, top=True)
            continue
        if child.tag.startswith(f"{{{BPMN}}}"):
            raise refuse(
                child, f"{name} is not supported", INSTEAD.get(name, "draw a process with a pool per track")
            )


def _check_container(container: ET.Element, top: bool) -> None:
    for el in container:
        if not el.tag.startswith(f"{{{BPMN}}}"):
            continue
        name = _local(el.tag)
        if name not in ALLOWED_IN_PROCESS:
            raise refuse(el, f"{name} is not supported", INSTEAD.get(name, "see docs/bpmn.md for the subset"))
        if name == "subProcess":
            if el.get("triggeredByEvent") != "true" or not top:
                raise refuse(el, "an embedded sub-process is not supported", INSTEAD["subProcess"])
            _check_container(el, top=False)
        if (
            name == "callActivity"
            and container.get("{https://escalation-engine.example/schema/bpmn/1.0}process")
            != "deemed_agreement"
        ):
            raise refuse(el, "a call activity is not supported in a track", INSTEAD["callActivity"])
        for inner in el:
            local = _local(inner.tag)
            if local.endswith("EventDefinition") and local not in ALLOWED_EVENT_DEFINITIONS:
                raise refuse(el, f"a {local} is not supported", INSTEAD.get(local, "use a timer or message"))
            if local.endswith("LoopCharacteristics"):
                raise refuse(el, f"{local} is not supported", INSTEAD[local])
        definitions = [i for i in el if _local(i.tag).endswith("EventDefinition")]
        if len(definitions) > 1:
            raise refuse(
                el, "an event with more than one trigger is not supported", "use one event per trigger"
            )
