"""Raise one sample concern against a running service and print its state: ``python -m starter.demo``.

Start the service first (``make run``), then open the Temporal UI to follow the escalation's history.
"""

from __future__ import annotations

import argparse
import uuid

from protocols import load_protocol
from schemas.escalation import Concern, EscalationView
from starter.clean_exit import run_then_exit
from starter.connection import connect
from starter.escalations import prepare, raise_concern
from starter.sample_data import TEAM, person
from workflows.escalation import EscalationWorkflow


async def main() -> int:
    parser = argparse.ArgumentParser(description="Raise a sample concern")
    parser.add_argument("--authority", default="gloucestershire")
    parser.add_argument("--address")
    args = parser.parse_args()
    track = load_protocol(args.authority).tracks[0]
    ref = "D" + uuid.uuid4().hex[:8].upper()
    raise_ = prepare(
        authority=args.authority,
        track=track.key,
        category=track.categories[0],
        child_ref=ref,
        sequence=1,
        team=TEAM,
        officer=person(args.authority, track.officer_roles[0]),
        concern=Concern(
            summary="The care plan has not been updated since the last review.",
            impact_on_child="Decisions about school and contact are drifting.",
            requested_action="Update the care plan and share it before the next review.",
        ),
    )
    client = await connect(args.address)
    handle = await raise_concern(client, raise_)
    view: EscalationView = await handle.query(EscalationWorkflow.state)
    print(f"raised {raise_.escalation_id}: {view.status.value} at {view.stage_name}")
    print(f"held by {', '.join(view.held_by)}; the Temporal UI shows its history under that id")
    return 0


if __name__ == "__main__":
    run_then_exit(main)
