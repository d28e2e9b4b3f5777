"""``escalate collective raise``: a collective alert, one theme across several children or carers.

    escalate collective raise --authority waltham-forest --track iro --category "..." --team team-a \\
        --officer-id wf-iro-a --officer-role iro --theme "..." --subject C0001 --subject C0002 \\
        --qa-consulted-with qa_practice_manager --qa-consulted-on 2026-03-02 --qa-consultation "..." \\
        --summary "..." --impact "..." --request "..." [--start-at-stage stage-2] [--request-id ID]

The protocol's ``collective_alerts`` section says who leads one and whom they consult on the level it is
raised at (``--start-at-stage``: that level, with no bypass reason). It then runs as ``escalate raise``
raises any concern, with the child reference ``COLLECTIVE``: nothing goes on any child's file. An
escalation for one of the children names it with ``escalate raise --part-of ID``. Exit status as
``escalate raise``.
"""

from __future__ import annotations

import argparse
from typing import Any

from schemas.escalation import COLLECTIVE_REF, Collective
from starter.cli.acting import cmd_raise
from starter.cli.common import build

_OPTIONS = {
    "theme": "--theme",
    "subjects": "--subject",
    "consulted_with": "--qa-consulted-with",
    "consulted_on": "--qa-consulted-on",
    "consultation": "--qa-consultation",
}

_RAISE_DEFAULTS: dict[str, Any] = {
    "child_ref": COLLECTIVE_REF,
    "service_area": None,
    "child_views": None,
    "parents_views": None,
    "severity": None,
    "bypass_reason": None,
    "emergency": False,
    "discussed_with": None,
    "external_contact": None,
    "sequence": None,
    "part_of": None,
}
"""The options of ``escalate raise`` a collective alert does not take."""


async def cmd_collective_raise(args: argparse.Namespace) -> int:
    for name, value in _RAISE_DEFAULTS.items():  # what `escalate raise` takes that an alert does not
        setattr(args, name, value)
    args.collective = build(
        Collective,
        _OPTIONS,
        theme=args.theme,
        subjects=args.subject,
        consulted_with=args.qa_consulted_with,
        consulted_on=args.qa_consulted_on,
        consultation=args.qa_consultation,
    )
    return await cmd_raise(args)
