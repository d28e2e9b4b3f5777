"""Each authority's ladders as BPMN diagrams in the browser (bpmn-js's viewer from npm, ``make assets``),
and the diagram behind an escalation's page, with where it is and the path it took marked.

* ``/protocols/{key}/diagram``: a diagram per track; ``/protocols/{key}/diagram.bpmn?track=T``: the XML
  (``escalate protocol bpmn``), for the viewer or to open in a modeler.
* ``/assets/bpmn-viewer.js`` and ``/assets/bpmn-js.css``: bpmn-js's navigated viewer and its styles.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from activities.settings import PROJECT_ROOT
from protocols.bpmn import export_bpmn
from protocols.bpmn.layout import Canvas
from schemas.escalation import EscalationView, EventKind
from starter.web.protocol import no_such_protocol, protocol_named
from starter.web.render import ENV, page, person_of

router = APIRouter()

BPMN_JS = PROJECT_ROOT / "node_modules" / "bpmn-js" / "dist"


class ViewerMissing(RuntimeError):
    pass


def _dist() -> Any:
    if not (BPMN_JS / "bpmn-navigated-viewer.production.min.js").is_file():
        raise ViewerMissing(f"bpmn-js is not installed ({BPMN_JS}): run `make assets` (npm ci) first")
    return BPMN_JS


@cache
def viewer_script() -> str:
    js = (_dist() / "bpmn-navigated-viewer.production.min.js").read_text()
    return re.sub(r"//# sourceMappingURL=\S*", "", js)


@cache
def viewer_styles() -> str:
    css = "\n".join((_dist() / "assets" / name).read_text() for name in ("diagram-js.css", "bpmn-js.css"))
    return re.sub(r"/\*# sourceMappingURL=[^*]*\*/", "", css)


def _sanitise(text: str) -> str:
    """The id the exporter gives a stage's user task, from ``{track}_{stage}`` (``layout.Canvas.new_id``)."""
    return Canvas.sanitise(text)


def path_marks(view: EscalationView) -> dict[str, list[str]]:
    """The stage tasks to mark on an escalation's diagram: where it is, the stages it passed through,
    those it bypassed and those whose time ran out."""

    def ids(found: list[str]) -> list[str]:
        return [_sanitise(f"{view.track}_{s}") for s in dict.fromkeys(found)]

    def stages(kind: EventKind) -> list[str]:
        return [e.stage for e in view.timeline if e.kind is kind and e.stage]

    current = _sanitise(f"{view.track}_{view.stage}")
    passed = [i for i in ids(stages(EventKind.SENT_TO_STAGE)) if i != current]
    return {
        "current": [current],
        "passed": passed,
        "bypassed": [i for i in ids(_skipped(view)) if i not in passed and i != current],
        "timed-out": ids(stages(EventKind.DEADLINE_PASSED)),
    }


def _skipped(view: EscalationView) -> list[str]:
    """The stages a bypass jumped over: those after the one it left (none, at the start) and before the one
    it went to."""
    protocol = protocol_named(view.authority)
    track = next((t for t in protocol.tracks if t.key == view.track), None) if protocol else None
    keys = [s.key for s in track.stages] if track is not None else []
    found: list[str] = []
    for e in view.timeline:
        if e.kind is not EventKind.BYPASSED or e.data.get("to") not in keys:
            continue
        left = e.data.get("from")
        first = keys.index(left) + 1 if left in keys else 0
        found += keys[first : keys.index(e.data["to"])]
    return found


ENV.globals["bpmn_path_marks"] = path_marks  # for escalation.html's diagram block


@router.get("/assets/bpmn-viewer.js", include_in_schema=False)
async def script() -> Response:
    return Response(viewer_script(), media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})


@router.get("/assets/bpmn-js.css", include_in_schema=False)
async def styles() -> Response:
    return Response(viewer_styles(), media_type="text/css", headers={"Cache-Control": "max-age=3600"})


@router.get("/protocols/{key}/diagram.bpmn")
async def diagram_xml(request: Request, key: str, track: str | None = None) -> Response:
    if person_of(request) is None:
        return RedirectResponse("/sign-in", status_code=303)
    protocol = protocol_named(key)
    if protocol is None or (track is not None and track not in {t.key for t in protocol.tracks}):
        return Response("There is no such protocol or track.\n", status_code=404, media_type="text/plain")
    name = f"{key}-{track}.bpmn" if track else f"{key}.bpmn"
    return Response(
        export_bpmn(protocol, track),
        media_type="application/xml",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


@router.get("/protocols/{key}/diagram")
async def diagram_page(request: Request, key: str) -> Response:
    person = person_of(request)
    if person is None:
        return RedirectResponse("/sign-in", status_code=303)
    protocol = protocol_named(key)
    if protocol is None:
        return no_such_protocol(request, person)
    return page(
        request,
        "diagram.html",
        title=f"{protocol.authority}: escalation protocol as diagrams",
        nav="protocol" if key == person.authority else "",
        protocol=protocol,
        person=person,
    )
