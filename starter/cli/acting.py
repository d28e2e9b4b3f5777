"""``escalate raise``: a concern checked against its protocol here, then raised through the application layer
(the actions on an escalation are ``starter.cli.actions``)."""

from __future__ import annotations

import argparse
import re
import uuid

from pydantic import ValidationError

from app.errors import AppError, BadInput, Unavailable
from protocols import ProtocolError, load_protocol
from schemas.escalation import (
    Actor,
    Bypass,
    Concern,
    ExternalContact,
    RecordConsultation,
)
from schemas.protocol import EntryPoint, Protocol, Track
from schemas.wording import with_article
from starter.cli.common import (
    EXIT_UNAVAILABLE,
    CliError,
    build,
    describe_validation,
    long_day,
    name_options,
    refused,
    rule_refusal,
    words,
)
from starter.cli.identity import acting, cli_error, open_app
from starter.escalations import BadInput as PrepareBadInput
from starter.escalations import prepare
from workflows import rules

_RAISE_OPTIONS = {
    "part_of": "--part-of",
    "collective.theme": "--theme",
    "collective.subjects": "--subject",
    "collective.consultation": "--qa-consultation",
    "start_bypass.to_stage": "--start-at-stage",
    "start_bypass.reason": "--bypass-reason",
    "external_contacts": "--external-contact",
}
"""Options of ``raise`` whose names differ from the fields of ``RaiseConcern`` they fill."""
_CONCERN_OPTIONS = {"impact_on_child": "--impact", "requested_action": "--request"}
"""Options of ``raise`` whose names differ from the fields of ``Concern`` they fill."""


def _track_for(protocol: Protocol, key: str | None, officer_role: str) -> Track:
    if key:
        try:
            return protocol.track(key)
        except KeyError:
            known = ", ".join(t.key for t in protocol.tracks)
            raise CliError(f"{protocol.key} has no track {key!r}; its tracks: {known}") from None
    fitting = [t for t in protocol.tracks if officer_role in t.officer_roles]
    if len(fitting) > 1:  # a track to people outside the directory (partner agencies) is chosen by name
        outside = set(protocol.external_roles)
        internal = [t for t in fitting if not any(outside & {*s.to, *s.cc} for s in t.stages)]
        fitting = internal if len(internal) == 1 else fitting
    if len(fitting) != 1:
        known = ", ".join(f"{t.key} ({'/'.join(t.officer_roles)})" for t in protocol.tracks)
        raise CliError(f"give --track: {protocol.key}'s tracks are {known}")
    return fitting[0]


def _category(track: Track, given: str) -> str:
    """The category's text, or its number (1-based) in the track's list as ``protocol show`` prints it."""
    if given.isdigit():
        n = int(given)
        if not 1 <= n <= len(track.categories):
            raise CliError(f"--category {n}: the {track.key} track has categories 1-{len(track.categories)}")
        return track.categories[n - 1]
    return given


_CONSULTATION_OPTIONS = {
    "with_role": "--consulted-with",
    "held_on": "--consulted-on",
    "summary": "--consultation",
    "agreed": "--consultation-agreed",
    "stage": "--start-at-stage",
}
"""Options of ``raise`` that fill the consultation it gives."""


def _consultations_at_raise(
    args: argparse.Namespace,
    protocol: Protocol,
    track: Track,
    officer: Actor,
    start_key: str | None = None,
) -> list[RecordConsultation]:
    """The consultation the stage the escalation starts at needs, from the ``--consulted-*`` options; a
    refusal naming the options when that stage needs one and they are missing or incomplete."""
    given = {
        "--consulted-with": args.consulted_with,
        "--consulted-on": args.consulted_on,
        "--consultation": args.consultation,
    }
    key = start_key or args.start_at_stage or track.stages[0].key  # start_key: where it starts (entry points)
    try:
        stage = track.stages[track.stage_index(key)]
    except KeyError as exc:
        raise CliError(f"--start-at-stage: {exc.args[0]}") from None
    gate = stage.entry_gate
    if not any(given.values()) and not args.consultation_agreed:
        if gate is None:
            return []
        agreed = " and --consultation-agreed" if gate.kind.value == "agreement" else ""
        raise CliError(  # options missing: bad input (exit 2), nothing sent
            f"{stage.name} needs {with_article(gate.kind.value)} with {protocol.role_names(gate.with_roles)} "
            f"before it: give --consulted-with ROLE ({', '.join(gate.with_roles)}), --consulted-on DATE and "
            f"--consultation TEXT{agreed}"
        )
    if gate is None:
        raise CliError(
            f"{stage.name} needs no consultation before it: leave out --consulted-with, --consulted-on, "
            "--consultation and --consultation-agreed"
        )
    missing = [option for option, value in given.items() if not value]
    if missing:
        raise CliError(f"a consultation at raise needs {', '.join(missing)} too")
    if gate.kind.value == "agreement" and not args.consultation_agreed:
        raise refused(
            f"{stage.name} needs the agreement of {protocol.role_names(gate.with_roles)}: give "
            "--consultation-agreed once they have agreed (without it, it cannot start there)"
        )
    consultation = build(
        RecordConsultation,
        _CONSULTATION_OPTIONS,
        actor=officer,
        stage=stage.key,
        with_role=args.consulted_with,
        agreed=True if args.consultation_agreed else None,
        summary=args.consultation,
        held_on=args.consulted_on,
    )
    return [consultation]


def _child_and_severity(args: argparse.Namespace, protocol: Protocol) -> None:
    """``--child-status`` is required where the protocol declares statuses, and must be one of them;
    ``--severity`` must be one the protocol declares."""
    for option, given, declared, required in (
        ("--child-status", args.child_status, protocol.child_statuses, True),
        ("--severity", args.severity, protocol.severities, False),
    ):
        known = "; ".join(f"{k} ({v})" for k, v in declared.items())
        if given is None and required and declared:
            raise CliError(
                f"{option}: give the child's status under the {protocol.authority} protocol: {known}"
            )
        if given is not None and given not in declared:
            raise CliError(
                f"{option}: {given!r} is not one under the {protocol.authority} protocol; "
                + (f"give one of: {known}" if declared else "it declares none: leave it out")
            )


def _officer(args: argparse.Namespace, protocol: Protocol) -> Actor:
    """The raising officer: the person ``--officer-id`` names, in ``--officer-role`` or else the one role
    the directory gives them that raises on one of the protocol's tracks."""
    who = acting(args, raising=True)
    person = who.caller.person
    if person.authority != protocol.key:
        raise CliError(f"--authority: {person.id} is in {person.authority}'s directory, not {protocol.key}'s")
    role = who.role
    if role is None:
        raising = {r for t in protocol.tracks for r in t.officer_roles}
        fitting = [r for r in dict.fromkeys(h.role for h in person.holdings) if r in raising]
        if len(fitting) != 1:
            held = ", ".join(dict.fromkeys(h.role for h in person.holdings)) or "none"
            raise CliError(f"--officer-role: say which role {person.id} raises in (theirs: {held})")
        role = fitting[0]
    return build(Actor, {"id": "--officer-id", "role": "--officer-role"}, id=person.id, role=role)


async def cmd_raise(args: argparse.Namespace) -> int:
    try:
        protocol = load_protocol(args.authority or acting(args, raising=True).caller.person.authority)
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    officer = _officer(args, protocol)
    track = _track_for(protocol, args.track, officer.role)
    _child_and_severity(args, protocol)
    category = _category(track, args.category)
    try:
        start, entry = rules.start_index(track, category, args.severity, args.start_at_stage)
    except rules.Refused as exc:
        raise CliError(f"--start-at-stage: {name_options(exc.reason, _RAISE_OPTIONS)}") from None
    if getattr(args, "collective", None) is not None:  # the level chosen with QA: not a bypass
        entry = entry or EntryPoint(stage=track.stages[start].key)
    if entry is None and not args.bypass_reason:
        raise CliError(
            f"--start-at-stage {args.start_at_stage} is a bypass at the start (not an entry point for this "
            "concern): give --bypass-reason too"
        )
    if args.team is not None and args.team.strip() == "":
        raise CliError("--team: give the team's key, or leave it out")
    concern = build(
        Concern,
        _CONCERN_OPTIONS,
        summary=args.summary,
        impact_on_child=args.impact,
        requested_action=args.request,
        child_views=args.child_views,
        parents_views=args.parents_views,
    )
    start_bypass = None
    if args.start_at_stage and entry is None:
        start_bypass = build(
            Bypass,
            {"to_stage": "--start-at-stage", "reason": "--bypass-reason"},
            actor=officer,
            to_stage=args.start_at_stage,
            reason=args.bypass_reason,
            emergency=args.emergency,
            discussed_with=args.discussed_with,
        )
    consultations = _consultations_at_raise(args, protocol, track, officer, track.stages[start].key)
    request_id = None if args.sequence is not None else args.request_id or str(uuid.uuid4())
    try:
        raise_ = prepare(
            authority=protocol.key,
            track=track.key,
            category=category,
            child_ref=args.child_ref,
            child_status=args.child_status,
            severity=args.severity,
            sequence=args.sequence,
            request_id=request_id,
            officer=officer,
            concern=concern,
            service_area=args.service_area,
            team=args.team,
            start_at_stage=args.start_at_stage,
            start_bypass=start_bypass,
            consultations=consultations,
            external_contacts=[_external_contact(text) for text in args.external_contact or []],
            collective=getattr(args, "collective", None),  # escalate collective raise
            part_of=getattr(args, "part_of", None),
        )
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    except ValidationError as exc:
        raise CliError(describe_validation(exc, _RAISE_OPTIONS)) from None
    except PrepareBadInput as exc:  # the team or officer is not in the directory, a bad request id
        raise CliError(exc.reason) from None
    except rules.Refused as exc:
        raise rule_refusal(exc.reason, {**_RAISE_OPTIONS, **_CONSULTATION_OPTIONS}) from None
    # Said on every failure from here: the raise may have gone through, and this retries it safely.
    retry = f"--request-id {request_id}" if request_id else f"--sequence {args.sequence}"
    app = await open_app(args)
    caller = acting(args, raising=True).caller
    try:
        raised = await app.raise_prepared(caller, raise_)
    except Unavailable as exc:
        raise CliError(
            f"cannot start {raise_.escalation_id}: {exc.message} Retry with {retry} (it will not raise the "
            "concern twice)",
            EXIT_UNAVAILABLE,
        ) from None
    except BadInput as exc:  # this request id (or sequence) already raised another concern
        raise CliError(next(iter(exc.fields.values()), exc.message)) from None
    except AppError as exc:
        raise cli_error(exc, {**_RAISE_OPTIONS, **_CONSULTATION_OPTIONS}) from None
    stage = track.stages[start]
    timed = stage.response_working_days is not None
    try:
        view = await app.settled(caller, raise_.escalation_id, timed, min(args.wait, 15.0))
    except AppError as exc:
        failure = cli_error(exc)
        raise CliError(
            f"{failure.message} (escalation {raise_.escalation_id} was started; {retry} returns it)",
            failure.code,
        ) from None
    name = protocol.role_name
    due = f"; due {long_day(view.deadline_date)}" if view.deadline_date else ""
    print(
        f"{'already raised' if raised.existing else 'raised'} {view.escalation_id}: {words(view.status)} "
        f"at {view.stage_name}, held by {', '.join(name(r) for r in view.held_by)}{due}"
    )
    return 0


EXTERNAL_CONTACT = re.compile(
    r"^\s*([a-z0-9][a-z0-9_-]{0,63})\s*=\s*([^<>]{1,200}?)\s*<([^<>\s]{3,254})>\s*$"
)


def _external_contact(text: str) -> ExternalContact:
    """``ROLE=Name <address>`` (``--external-contact``), checked as the workflow input checks it."""
    found = EXTERNAL_CONTACT.match(text)
    if found is None:
        raise CliError(
            f"--external-contact {text[:80]!r}: write it as ROLE=Name <address>, for example "
            "'partner_agency_manager=Robin Partner <robin.partner@partner.example.org>'"
        )
    role, name, email = found.groups()
    return build(
        ExternalContact,
        {
            "role": "--external-contact (role)",
            "name": "--external-contact (name)",
            "email": "--external-contact (address)",
        },
        role=role,
        name=name,
        email=email,
    )
