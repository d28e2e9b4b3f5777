"""Case notes written when more time is approved show the new deadline, not the one it replaced.

On the time-skipping server with the database record store (SQLite): the note of the approval and the
escalation's row in the records carry the deadline the approval set.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from activities.db_records import DbRecordStore
from activities.working_days import long_date
from schemas.escalation import Actor, DecideExtension, Escalate, EventKind, RequestExtension, Withdraw
from tests.databases import DIRECTORIES, migrated_engine
from tests.driver import make_raise
from tests.workflow_harness import running, with_unique_id

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_note_of_an_approved_extension_shows_the_new_deadline(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    with migrated_engine(f"sqlite:///{tmp_path / 'records.db'}", directories=DIRECTORIES) as engine:
        records = DbRecordStore(engine)
        raise_ = with_unique_id(make_raise("gloucestershire"))
        officer = raise_.officer
        async with running(time_skipping_env, raise_, tmp_path, records=records) as run:
            await run.update("escalate", Escalate(actor=officer, reason="Informal route did not work."))
            view = await run.view()
            assert view.deadline_date is not None
            old = view.deadline_date
            manager = Actor(id="glo-team-manager-a", role=view.held_by[0])
            new = old + timedelta(days=2)
            await run.update(
                "request_extension", RequestExtension(actor=manager, until=new, reason="Panel on Thursday.")
            )
            await run.update("decide_extension", DecideExtension(actor=officer, approve=True))
            view = await run.view()
            assert view.deadline_date == new
            decided = next(e for e in view.timeline if e.kind is EventKind.EXTENSION_DECIDED)
            row = records.state(raise_.escalation_id)
            assert row is not None and row.deadline_date == new, "the records' row shows the old deadline"
            await run.update("withdraw", Withdraw(actor=officer, reason="Resolved at the panel."))
        notes = {n.seq: n for n in records.case_notes(escalation_id=raise_.escalation_id)}
        body = notes[decided.seq].body
        assert f"Response due by the end of {long_date(new)}." in body, body
        assert long_date(old) not in body, body
