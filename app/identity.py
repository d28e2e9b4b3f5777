"""Who a signed-in person is: a person in an authority's directory and the roles it gives them.

People and their roles come only from the directory files (``protocols/directories/<authority>.yaml``,
folder ``ESCALATION_DIRECTORY_DIR``): a front door never takes a role from the person. ``Person.roles_for``
says which roles they hold for a team, authority-wide roles included, as the notices look roles up.

Sign-in maps an identity provider's claims to one directory person (``person_for_claims``): by e-mail
address (``email``, then ``preferred_username`` and ``upn``, which Microsoft Entra ID fills with the
user's address), case-insensitively, else by the object id (``oid``) where the directory uses it as the
person's id. An address in more than one directory is ambiguous and refused: the directory must say.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from activities.directory import DirectoryError, directory_files, load_directory_file
from activities.settings import Settings
from app.errors import NotSignedIn


class Holding(BaseModel):
    """A role held for a team, or authority-wide (``team`` None)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: str
    team: str | None


class Person(BaseModel):
    """A directory person, as signed in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    authority: str
    id: str
    name: str
    email: str
    holdings: tuple[Holding, ...]

    @property
    def key(self) -> str:
        """``<authority>/<person id>``: what a session remembers."""
        return f"{self.authority}/{self.id}"

    def roles_for(self, team: str | None) -> list[str]:
        """The roles held for ``team`` or authority-wide, in the directory's order."""
        return list(dict.fromkeys(h.role for h in self.holdings if h.team is None or h.team == team))

    def teams_for(self, role: str) -> list[str | None]:
        """The teams ``role`` is held for (None: authority-wide)."""
        return [h.team for h in self.holdings if h.role == role]


class People:
    """Everyone in every directory file of a folder, read once (``load``)."""

    def __init__(self, people: Iterable[Person]) -> None:
        self._by_key = {p.key: p for p in people}

    @classmethod
    def load(cls, folder: Path | None = None) -> People:
        """Every directory in ``folder`` (default ``ESCALATION_DIRECTORY_DIR``), each checked against its
        authority's protocol; a file that does not load is left out (its problem is the worker's to say)."""
        found: list[Person] = []
        for path in directory_files(folder or Settings().directory_dir):
            try:
                directory = load_directory_file(path)
            except DirectoryError:
                continue
            authority = directory.authority or path.stem
            for p in directory.people:
                holdings = tuple(
                    Holding(role=a.role, team=a.team) for a in directory.assignments if a.person == p.id
                )
                found.append(
                    Person(authority=authority, id=p.id, name=p.name, email=p.email, holdings=holdings)
                )
        return cls(found)

    def all(self) -> list[Person]:
        return sorted(self._by_key.values(), key=lambda p: (p.authority, p.name))

    def get(self, key: str) -> Person | None:
        """The person a session remembers (``Person.key``), or None when the directory no longer has them."""
        return self._by_key.get(key)

    def require(self, key: str) -> Person:
        person = self.get(key)
        if person is None:
            raise NotSignedIn("You are not in the staff directory any more: sign in again.")
        return person

    def person_for_claims(self, claims: Mapping[str, Any]) -> Person:
        """The one directory person an identity provider's claims name; ``NotSignedIn`` otherwise."""
        addresses = [
            str(claims[name]).strip().lower()
            for name in ("email", "preferred_username", "upn")
            if isinstance(claims.get(name), str) and "@" in str(claims[name])
        ]
        for address in dict.fromkeys(addresses):
            matches = [p for p in self._by_key.values() if p.email.lower() == address]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                where = ", ".join(sorted(p.authority for p in matches))
                raise NotSignedIn(
                    f"Your e-mail address is in more than one directory ({where}): ask for it to be in one."
                )
        oid = claims.get("oid")
        if isinstance(oid, str) and oid:
            matches = [p for p in self._by_key.values() if p.id == oid]
            if len(matches) == 1:
                return matches[0]
        raise NotSignedIn(
            "You signed in, but you are not in any authority's staff directory: ask for your e-mail "
            "address to be added."
        )
