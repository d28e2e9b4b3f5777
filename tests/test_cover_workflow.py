"""Cover, a covering officer, joint judging and an external recipient, end to end on the time-skipping server.

The cover and the external recipient run with the database record store and directory (SQLite) and a real
SMTP server (aiosmtpd), as the mail is what they change; the covering officer and joint judging run on the
file worker. Histories are recorded under the names below (``RECORD_HISTORIES=1``).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment

from activities.directory import load_directory_file, sync_directory
from activities.mail import find_reply_token
from schemas.escalation import (
    Accept,
    Actor,
    Escalate,
    EventKind,
    ReplaceOfficer,
    Respond,
    Status,
)
from tests.databases import DIRECTORIES, migrated_engine
from tests.driver import make_raise
from tests.smtp_server import Capture
from tests.test_stalled_delivery import delivered, escalation
from tests.workflow_harness import running, with_unique_id
from workflows import rules

pytestmark = pytest.mark.asyncio(loop_scope="session")

COVER = "cover-absent-recipient"
COVERING_OFFICER = "covering-officer"
JOINT = "joint-judging-exclusive-escalation"
EXTERNAL = "external-recipient-by-email"
"""The names their histories are recorded under."""

IRO = Actor(id="wig-iro-a", role="iro")
IRO_TM = Actor(id="wig-iro-team-manager", role="iro_team_manager")


@pytest.fixture
def directories(tmp_path: Path) -> Path:
    folder = tmp_path / "directories"
    shutil.copytree(DIRECTORIES, folder)
    return folder


@pytest.fixture
def engine(tmp_path: Path, directories: Path) -> Iterator[Engine]:
    with migrated_engine(f"sqlite:///{tmp_path / 'records.db'}", directories=directories) as engine:
        yield engine


def email(person_id: str) -> str:
    person = load_directory_file(DIRECTORIES / "wigan.yaml").person(person_id)
    assert person is not None
    return person.email


def mark_absent(directories: Path, engine: Engine, person_id: str, first: str, last: str) -> None:
    """Mark ``person_id`` absent in the copy of the Wigan directory file, and sync it."""
    path = directories / "wigan.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"- id: {person_id}"))
    lines.insert(at + 3, f"    absent_from: {first}\n    absent_until: {last}\n")
    path.write_text("".join(lines), encoding="utf-8")
    sync_directory(engine, "wigan", load_directory_file(path))


async def test_an_absent_recipients_notice_goes_to_their_cover_who_answers(
    time_skipping_env: WorkflowEnvironment,
    tmp_path: Path,
    engine: Engine,
    directories: Path,
    smtp_server: tuple[Capture, int],
) -> None:
    capture, port = smtp_server
    today = (await time_skipping_env.get_current_time()).astimezone(rules.LONDON).date()
    first, last = today - timedelta(days=1), today + timedelta(days=30)
    mark_absent(directories, engine, "wig-team-manager-a", first.isoformat(), last.isoformat())
    raise_ = with_unique_id(make_raise("wigan", "iro", officer=IRO)).model_copy(update={"team": "team-a"})
    async with escalation(time_skipping_env, engine, directories, port, raise_, tmp_path, COVER) as run:
        await delivered(capture, email("wig-service-lead-a"))
        view = await run.eventually(lambda v: any(e.kind is EventKind.COVERED for e in v.timeline))
        covered = next(e for e in view.timeline if e.kind is EventKind.COVERED)
        assert covered.data == {
            "role": "team_manager",
            "cover_role": "service_lead",
            "until": last.isoformat(),
        }
        assert f"until {last:%A %-d %B %Y}" in covered.text
        sent_to = {r for d in capture.deliveries for r in d.rcpt_tos}
        assert email("wig-team-manager-a") not in sent_to  # the absent holder is not written to
        await delivered(capture, email("wig-iro-a"))  # the officer is told of the cover
        lead = Actor(id="wig-service-lead-a", role="service_lead")
        assert "respond" in await run.actions_for(lead)
        await run.update("respond", Respond(actor=lead, answer="Covering: the plan is agreed."))
        result = await run.update("accept", Accept(actor=IRO))
        assert result.status is Status.RESOLVED
        kinds = [e.kind for e in (await run.view()).timeline]
        assert kinds.count(EventKind.COVERED) == 1


async def test_a_covering_officer_takes_over_and_is_told(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("wigan", "iro", officer=IRO))
    cover = Actor(id="wig-iro-b", role="iro")
    async with running(time_skipping_env, raise_, tmp_path, record_as=COVERING_OFFICER) as run:
        assert "replace_officer" not in await run.actions_for(Actor(id="x", role="team_manager"))
        await run.update(
            "replace_officer",
            ReplaceOfficer(actor=IRO_TM, new_officer=cover, reason="Alex is on leave for a month."),
        )
        manager = Actor(id="wig-team-manager-a", role="team_manager")
        await run.update("respond", Respond(actor=manager, answer="Plan updated."))
        reason = await run.refused("accept", Accept(actor=IRO))
        assert "only the raising officer" in reason or "may accept" in reason
        result = await run.update("accept", Accept(actor=cover))
        assert result.status is Status.RESOLVED
        await run.result()
    mails = run.outbox.sent(raise_.escalation_id)
    replaced = [m for m in mails if m.kind is EventKind.OFFICER_REPLACED]
    assert len(replaced) == 1 and replaced[0].to_roles == ["raising_officer"]
    assert replaced[0].officer == cover  # addressed to the covering officer
    records = [e.entry for e in run.records.events(raise_.escalation_id)]
    handed = next(e for e in records if e.kind is EventKind.OFFICER_REPLACED)
    assert handed.actor == IRO_TM and "Reason: Alex is on leave for a month." in handed.text


async def test_joint_judges_all_accept_and_only_the_owner_escalates(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    raise_ = with_unique_id(make_raise("wigan", "partner-agencies", officer=IRO))
    strategic = Actor(id="wig-strategic-lead-safeguarding", role="strategic_lead_safeguarding")
    async with running(time_skipping_env, raise_, tmp_path, record_as=JOINT) as run:
        await run.update(
            "respond",
            Respond(actor=IRO, answer="They keep their plan.", on_behalf_of="partner_agency_manager"),
        )
        assert "escalate" not in await run.actions_for(IRO)
        reason = await run.refused("escalate", Escalate(actor=IRO, reason="Not resolved."))
        assert "only IRO Team Manager may escalate to Partner Stage 2" in reason
        await run.update("escalate", Escalate(actor=IRO_TM, reason="Agreed with the IRO."))
        await run.update("respond", Respond(actor=strategic, answer="The agencies meet on Friday."))
        waiting = await run.update("accept", Accept(actor=IRO, note="Content."))
        assert (
            waiting.status is Status.AWAITING_DECISION and "waiting for iro_team_manager" in waiting.outcome
        )
        again = await run.refused("accept", Accept(actor=IRO))
        assert "already accepted" in again
        done = await run.update("accept", Accept(actor=IRO_TM))
        assert done.status is Status.RESOLVED
        await run.result()
    satisfied = [m for m in run.outbox.sent(raise_.escalation_id) if m.kind is EventKind.JUDGE_SATISFIED]
    assert len(satisfied) == 1 and satisfied[0].to_roles == ["iro_team_manager"]


async def test_an_external_recipient_is_mailed_with_a_reply_token_and_the_officer_records_the_answer(
    time_skipping_env: WorkflowEnvironment,
    tmp_path: Path,
    engine: Engine,
    directories: Path,
    smtp_server: tuple[Capture, int],
) -> None:
    capture, port = smtp_server
    raise_ = with_unique_id(make_raise("wigan", "partner-agencies", officer=IRO))
    raise_ = raise_.model_copy(update={"team": "team-a"})
    partner = raise_.external_contacts[0]
    async with escalation(time_skipping_env, engine, directories, port, raise_, tmp_path, EXTERNAL) as run:
        await delivered(capture, partner.email)
        mail = next(d for d in capture.deliveries if partner.email in d.rcpt_tos)
        assert partner.name in str(mail.message["To"])
        token = re.fullmatch(r"escalations\+(.+)@replies\.example\.org", str(mail.message["Reply-To"]))
        assert token is not None
        issued = find_reply_token(engine, token.group(1))
        assert issued is not None and issued.role == "partner_agency_manager"
        assert issued.escalation_id == raise_.escalation_id and issued.stage == "partner-1"
        await delivered(capture, email("wig-iro-team-manager"))  # copied, from the directory
        await run.update(
            "respond",
            Respond(actor=IRO, answer="We will share the plan.", on_behalf_of="partner_agency_manager"),
        )
        view = await run.view()
        answer = next(e for e in reversed(view.timeline) if e.kind is EventKind.RESPONSE)
        assert answer.text.startswith(f"Answer from {partner.name} (")
        assert answer.data["on_behalf_of"] == "partner_agency_manager"
        result = await run.update("accept", Accept(actor=IRO))
        assert result.status is Status.RESOLVED
