"""Commands that act on an escalation: each is the update of the same name, sent through the application layer
as the person ``--as-id`` names (``starter.cli.service.act``)."""

from __future__ import annotations

import argparse

from schemas.escalation import (
    Accept,
    Actor,
    AddNote,
    Bypass,
    Close,
    DecideExtension,
    Escalate,
    RecordConsultation,
    RecordMeeting,
    RecordStep,
    RecordViews,
    ReferToCafcass,
    ReplaceOfficer,
    RequestExtension,
    Respond,
    SetTimescale,
    Withdraw,
)
from starter.cli.common import CliError, at_most, build
from starter.cli.service import act, actor_of

MAX_ATTENDEES = 50
MAX_CONSULTED = 20


async def cmd_respond(args: argparse.Namespace) -> int:
    if args.action_plan_due and not args.action_plan:
        raise CliError("--action-plan-due needs --action-plan")
    return await act(
        args,
        build(
            Respond,
            actor=actor_of(args),
            answer=args.answer,
            action_plan=args.action_plan,
            action_plan_due=args.action_plan_due,
            on_behalf_of=args.on_behalf_of,
        ),
    )


async def cmd_replace_officer(args: argparse.Namespace) -> int:
    new = build(
        Actor,
        {"id": "--new-officer-id", "role": "--new-officer-role"},
        id=args.new_officer_id,
        role=args.new_officer_role,
    )
    return await act(args, build(ReplaceOfficer, actor=actor_of(args), new_officer=new, reason=args.reason))


async def cmd_request_extension(args: argparse.Namespace) -> int:
    action = build(RequestExtension, actor=actor_of(args), until=args.until, reason=args.reason)
    return await act(args, action)


async def cmd_decide_extension(args: argparse.Namespace) -> int:
    if args.decline and not (args.reason or "").strip():
        raise CliError("--decline needs --reason: say why")
    action = build(
        DecideExtension,
        actor=actor_of(args),
        approve=args.approve,
        reason=args.reason or "",
        exceed_total_limit=args.exceed_total_limit,
    )
    return await act(args, action)


async def cmd_set_timescale(args: argparse.Namespace) -> int:
    action = build(
        SetTimescale,
        actor=actor_of(args),
        working_days=args.working_days,
        until=args.until,
        reason=args.reason,
    )
    return await act(args, action)


async def cmd_accept(args: argparse.Namespace) -> int:
    if args.action_plan_due and not args.action_plan:
        raise CliError("--action-plan-due needs --action-plan")
    action = build(
        Accept,
        actor=actor_of(args),
        note=args.note or "",
        action_plan=args.action_plan,
        action_plan_due=args.action_plan_due,
    )
    return await act(args, action)


async def cmd_escalate(args: argparse.Namespace) -> int:
    action = build(Escalate, actor=actor_of(args), reason=args.reason, exceptional=args.exceptional)
    return await act(args, action)


async def cmd_bypass(args: argparse.Namespace) -> int:
    action = build(
        Bypass,
        actor=actor_of(args),
        to_stage=args.to_stage,
        reason=args.reason,
        emergency=args.emergency,
        discussed_with=args.discussed_with,
    )
    return await act(args, action)


async def cmd_refer_cafcass(args: argparse.Namespace) -> int:
    action = build(
        ReferToCafcass,
        actor=actor_of(args),
        reason=args.reason,
        consulted=at_most(args.consulted or [], MAX_CONSULTED, "--consulted", "roles"),
    )
    return await act(args, action)


async def cmd_record_consultation(args: argparse.Namespace) -> int:
    action = build(
        RecordConsultation,
        actor=actor_of(args),
        stage=args.stage,
        with_role=args.with_role,
        agreed=args.agreed,
        summary=args.summary,
        held_on=args.held_on,
    )
    return await act(args, action)


async def cmd_record_meeting(args: argparse.Namespace) -> int:
    action = build(
        RecordMeeting,
        actor=actor_of(args),
        held_on=args.held_on,
        attendees=at_most(args.attendee, MAX_ATTENDEES, "--attendee", "attendees"),
        outcome=args.outcome,
    )
    return await act(args, action)


async def cmd_withdraw(args: argparse.Namespace) -> int:
    return await act(args, build(Withdraw, actor=actor_of(args), reason=args.reason))


async def cmd_close(args: argparse.Namespace) -> int:
    return await act(args, build(Close, actor=actor_of(args), reason=args.reason))


async def cmd_note(args: argparse.Namespace) -> int:
    return await act(args, build(AddNote, actor=actor_of(args), text=args.text))


async def cmd_step(args: argparse.Namespace) -> int:
    """Record a duty done now: the officer's own task, or a step such as the child told (who and how)."""
    step = build(
        RecordStep, actor=actor_of(args), step=args.step, told=args.told, how=args.how, note=args.note
    )
    return await act(args, step)


async def cmd_views(args: argparse.Namespace) -> int:
    return await act(args, build(RecordViews, actor=actor_of(args), whose=args.whose, views=args.views))
