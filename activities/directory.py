"""The staff directory: who holds each protocol role, per team or authority-wide, and how to reach them.

Protocols name roles, never people. Each authority has a directory file,
``protocols/directories/<authority>.yaml`` (folder: ``Settings.directory_dir``)::

    authority: wigan
    people:
      - {id: wig-team-manager-a, name: Indigo Example, email: indigo.example@example.org}
      - {id: wig-service-lead-a, name: Lane Fictional, email: lane.fictional@example.org,
         absent_from: 2026-12-01, absent_until: 2026-12-24}   # on leave: the protocol's cover acts
    assignments:
      - {role: team_manager, team: team-a, person: wig-team-manager-a}
      - {role: director_of_childrens_services, team: null, person: wig-director}

``load_directory_file`` validates a file against the authority's protocol (an unknown role key is refused
with a message naming the file, the role and the fix); ``sync_directory`` stores it in the database
(``directory_people``, ``directory_assignments``), replacing what was there for that authority; ``resolve``
finds the person who holds a role for a team, falling back to the authority-wide holder. A role nobody holds
raises ``RoleUnfilled``: the notify activities of older escalations retry it; newer ones report it and stall
visibly until the directory is filled in and synced (``escalate directory sync``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from typing import Protocol as TypingProtocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import Engine, delete, or_, select
from sqlalchemy.orm import Session

from activities.db.mail_models import DirectoryAssignment, DirectoryPerson
from protocols import (
    ProtocolError,
    check_named_after_file,
    describe_errors,
    load_protocol,
    read_yaml_mapping,
)
from schemas.escalation import valid_email
from schemas.protocol import RAISING_OFFICER, Protocol

PersonId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
"""The opaque staff reference also used as ``Actor.id`` in escalations."""
Team = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class DirectoryError(ValueError):
    """A directory file could not be loaded; the message names the file, the entry and the fix."""


class RoleUnfilled(LookupError):
    """Nobody holds a role for the escalation's team nor authority-wide (or the officer is not listed).

    Retryable: the notice waits until the directory is filled in and synced.
    """

    def __init__(
        self,
        *,
        authority: str,
        team: str | None,
        role: str,
        role_name: str,
        person_id: str | None = None,
    ) -> None:
        self.authority = authority
        self.team = team
        self.role = role
        self.role_name = role_name
        self.person_id = person_id
        file = f"the directory file {authority}.yaml"
        if role == RAISING_OFFICER:
            message = (
                f"the raising officer ({role!r}, person id {person_id!r}) is not in the {authority!r} "
                f"directory (escalation team {team!r}): add them under 'people' in {file} with id "
                f"{person_id!r} and their e-mail address, then sync the directory; "
                "the notice is retried until then"
            )
        else:
            if team:
                scope = f"neither for team {team!r} nor authority-wide"
                fix = f"role: {role}, team: {team}; or team: null for the whole authority"
            else:
                scope = "authority-wide (the escalation has no team)"
                fix = f"role: {role}, team: null"
            message = (
                f"nobody holds the role {role_name} ({role!r}) in the {authority!r} directory, {scope}: "
                f"fill it in {file} (under 'assignments': {fix}), then sync the directory; "
                "the notice is retried until then"
            )
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_unfilled, (self.authority, self.team, self.role, self.role_name, self.person_id))


def _rebuild_unfilled(
    authority: str, team: str | None, role: str, role_name: str, person_id: str | None
) -> RoleUnfilled:
    return RoleUnfilled(authority=authority, team=team, role=role, role_name=role_name, person_id=person_id)


# --- the file -------------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_Strict):
    id: PersonId
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    email: str = Field(max_length=254)
    absent_from: date | None = Field(
        default=None, description="Marked absent (leave, sickness) from this day: the protocol's cover acts."
    )
    absent_until: date | None = Field(
        default=None, description="The last day of the absence (inclusive); none: until the mark is removed."
    )

    @model_validator(mode="after")
    def _absence(self) -> Person:
        if self.absent_until is not None and self.absent_from is None:
            raise ValueError("absent_until needs absent_from: give the first day of the absence too")
        if self.absent_from and self.absent_until and self.absent_until < self.absent_from:
            raise ValueError(
                f"absent_until {self.absent_until} is before absent_from {self.absent_from}: swap them"
            )
        return self

    def absent_on(self, day: date) -> bool:
        """Whether the directory marks this person absent on ``day`` (London date)."""
        if self.absent_from is None or day < self.absent_from:
            return False
        return self.absent_until is None or day <= self.absent_until

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        if not valid_email(value):
            raise ValueError(f"{value!r} is not an e-mail address: write it as name@example.org")
        return value


class Assignment(_Strict):
    role: str = Field(min_length=1, max_length=64)
    team: Team | None = Field(description="The team, or null for an authority-wide role.")
    person: PersonId


class Directory(_Strict):
    authority: str | None = Field(default=None, description="The protocol key; the file name if omitted.")
    people: list[Person] = Field(default_factory=list)
    assignments: list[Assignment] = Field(default_factory=list)

    @field_validator("people")
    @classmethod
    def _unique_people(cls, people: list[Person]) -> list[Person]:
        ids = [p.id for p in people]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"person ids must be unique; repeated: {', '.join(dupes)}")
        return people

    def person(self, person_id: str) -> Person | None:
        return next((p for p in self.people if p.id == person_id), None)


def check_directory(directory: Directory, protocol: Protocol) -> list[str]:
    """Problems of ``directory`` against ``protocol`` and within itself, each with its fix."""
    problems: list[str] = []
    known = set(protocol.roles)
    ids = {p.id for p in directory.people}
    seen: dict[tuple[str, str | None], int] = {}
    for i, a in enumerate(directory.assignments):
        where = f"assignments[{i}] (role {a.role!r}, team {a.team!r})"
        if a.role == RAISING_OFFICER:
            problems.append(
                f"{where}: {RAISING_OFFICER!r} is not assigned: it is the officer who raised the escalation, "
                "found by their person id; list the officer under 'people' instead"
            )
        elif a.role not in known:
            close = difflib.get_close_matches(a.role, sorted(known), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            problems.append(
                f"{where}: unknown role {a.role!r}: the {protocol.key} protocol has no such role; {hint}"
                f"use one of its role keys: {', '.join(sorted(known))}"
            )
        if a.person not in ids:
            problems.append(
                f"{where}: person {a.person!r} is not listed under 'people': add them or fix the id"
            )
        key = (a.role, a.team)
        if key in seen:
            problems.append(
                f"{where}: the same role and team is already assigned at assignments[{seen[key]}]; "
                "keep one holder per role and team"
            )
        else:
            seen[key] = i
    return problems


def load_directory_file(path: str | Path, protocol: Protocol | None = None) -> Directory:
    """Parse and validate one directory file; raise DirectoryError saying what is wrong and how to fix it.

    The authority is the file's name (``wigan.yaml``: ``wigan``), and its protocol is loaded to check the
    role keys unless ``protocol`` is given.
    """
    path = Path(path)
    raw = read_yaml_mapping(path, DirectoryError, "a mapping with 'people' and 'assignments'")
    check_named_after_file(raw, "authority", path, DirectoryError)
    try:
        directory = Directory.model_validate(raw)
    except ValidationError as exc:
        raise DirectoryError(f"{path}: " + describe_errors(exc, raw, "directory", _labelled)) from exc
    if protocol is None:
        try:
            protocol = load_protocol(path.stem)
        except ProtocolError as exc:
            raise DirectoryError(f"{path}: no protocol to check the roles against: {exc}") from exc
    elif protocol.key != path.stem:
        raise DirectoryError(
            f"{path}: checked against the {protocol.key!r} protocol; name it {protocol.key}.yaml"
        )
    problems = check_directory(directory, protocol)
    if problems:
        raise DirectoryError(f"{path}: " + "; ".join(problems))
    return directory.model_copy(update={"authority": path.stem})


def _labelled(index: int, item: object) -> str:
    """A list item in a field's path: ``assignments.0 (team_manager)``, by its person id or role."""
    label = item.get("id") or item.get("role") if isinstance(item, dict) else None
    return f"{index} ({label})" if label else str(index)


def directory_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


# --- the database ---------------------------------------------------------------------------------------


def sync_directory(engine: Engine, authority: str, directory: Directory) -> int:
    """Replace the stored directory of ``authority`` with ``directory`` in one transaction.

    Returns the number of assignments stored. Escalations that already sent their notices are unaffected;
    the next notice is addressed from the new directory.
    """
    if directory.authority not in (None, authority):
        raise DirectoryError(f"the directory is for {directory.authority!r}, not {authority!r}")
    with Session(engine) as session, session.begin():
        session.execute(delete(DirectoryAssignment).where(DirectoryAssignment.authority == authority))
        session.execute(delete(DirectoryPerson).where(DirectoryPerson.authority == authority))
        session.add_all(
            DirectoryPerson(
                authority=authority,
                person_id=p.id,
                name=p.name,
                email=p.email,
                absent_from=p.absent_from,
                absent_until=p.absent_until,
            )
            for p in directory.people
        )
        session.flush()
        session.add_all(
            DirectoryAssignment(authority=authority, role=a.role, team=a.team, person_id=a.person)
            for a in directory.assignments
        )
    return len(directory.assignments)


def sync_directories(engine: Engine, folder: Path) -> list[str]:
    """Load and store every directory file in ``folder``; all are validated before any is stored."""
    loaded = [(path.stem, load_directory_file(path)) for path in directory_files(folder)]
    for authority, directory in loaded:
        sync_directory(engine, authority, directory)
    return [authority for authority, _ in loaded]


@contextmanager
def _session(session_or_engine: Session | Engine) -> Iterator[Session]:
    if isinstance(session_or_engine, Session):
        yield session_or_engine
    else:
        with Session(session_or_engine) as session:
            yield session


def _person(row: DirectoryPerson) -> Person:
    # Built without validation: what was stored was validated when synced, and a bad address is caught
    # (as a non-retryable error) where the mail is addressed.
    return Person.model_construct(
        id=row.person_id,
        name=row.name,
        email=row.email,
        absent_from=row.absent_from,
        absent_until=row.absent_until,
    )


def resolve(
    session_or_engine: Session | Engine,
    authority: str,
    team: str | None,
    role: str,
    *,
    officer_id: str | None = None,
    protocol: Protocol | None = None,
) -> Person:
    """The person holding ``role`` for ``team`` in ``authority``, else its authority-wide holder.

    ``raising_officer`` is the officer who raised the escalation, found by ``officer_id``. Raises
    ``RoleUnfilled`` (naming the role's display name from ``protocol``, loaded if not given) when nobody
    holds it.
    """
    with _session(session_or_engine) as session:
        if role == RAISING_OFFICER:
            found = session.get(DirectoryPerson, (authority, officer_id)) if officer_id is not None else None
            if found is not None:
                return _person(found)
        else:
            for scope in [team, None] if team is not None else [None]:
                query = (
                    select(DirectoryPerson)
                    .join(
                        DirectoryAssignment,
                        (DirectoryAssignment.authority == DirectoryPerson.authority)
                        & (DirectoryAssignment.person_id == DirectoryPerson.person_id),
                    )
                    .where(DirectoryAssignment.authority == authority, DirectoryAssignment.role == role)
                    .where(
                        DirectoryAssignment.team == scope
                        if scope is not None
                        else DirectoryAssignment.team.is_(None)
                    )
                    .order_by(DirectoryAssignment.id)
                    .limit(1)
                )
                row = session.scalars(query).first()
                if row is not None:
                    return _person(row)
    raise RoleUnfilled(
        authority=authority,
        team=team,
        role=role,
        role_name=_role_name(authority, role, protocol),
        person_id=officer_id if role == RAISING_OFFICER else None,
    )


def resolve_roles(
    session: Session,
    authority: str,
    team: str | None,
    roles: list[str],
    *,
    officer_id: str | None = None,
    protocol: Protocol | None = None,
) -> dict[str, Person]:
    """``resolve`` for several roles at once, in one query (and one more for ``raising_officer``).

    The same people as ``resolve`` role by role: the team's holder with the lowest assignment id, else
    the authority-wide one's. Raises ``RoleUnfilled`` for the first role, in the order given, that nobody
    holds.
    """
    found: dict[str, Person] = {}
    if RAISING_OFFICER in roles and officer_id is not None:
        officer = session.get(DirectoryPerson, (authority, officer_id))
        if officer is not None:
            found[RAISING_OFFICER] = _person(officer)
    wanted = [role for role in dict.fromkeys(roles) if role != RAISING_OFFICER]
    if wanted:
        scope = (
            or_(DirectoryAssignment.team == team, DirectoryAssignment.team.is_(None))
            if team is not None
            else DirectoryAssignment.team.is_(None)
        )
        query = (
            select(DirectoryAssignment.role, DirectoryAssignment.team, DirectoryPerson)
            .join(
                DirectoryPerson,
                (DirectoryAssignment.authority == DirectoryPerson.authority)
                & (DirectoryAssignment.person_id == DirectoryPerson.person_id),
            )
            .where(DirectoryAssignment.authority == authority, DirectoryAssignment.role.in_(wanted), scope)
            .order_by(DirectoryAssignment.id)
        )
        authority_wide: dict[str, Person] = {}
        for role, row_team, row in session.execute(query):
            if row_team is not None:
                found.setdefault(role, _person(row))
            else:
                authority_wide.setdefault(role, _person(row))
        for role, person in authority_wide.items():
            found.setdefault(role, person)
    for role in roles:
        if role not in found:
            raise RoleUnfilled(
                authority=authority,
                team=team,
                role=role,
                role_name=_role_name(authority, role, protocol),
                person_id=officer_id if role == RAISING_OFFICER else None,
            )
    return found


def _role_name(authority: str, role: str, protocol: Protocol | None) -> str:
    if protocol is None:
        try:
            protocol = load_protocol(authority)
        except ProtocolError:
            return role
    return protocol.role_name(role)


class Resolver(TypingProtocol):
    """What ``SmtpNotifier`` needs of the directory: ``resolve``'s signature."""

    def __call__(
        self,
        session_or_engine: Session | Engine,
        authority: str,
        team: str | None,
        role: str,
        *,
        officer_id: str | None = None,
        protocol: Protocol | None = None,
    ) -> Person: ...
