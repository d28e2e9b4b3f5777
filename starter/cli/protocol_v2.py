"""Protocol language v2 at the command line: what `protocol show` prints of it, and `protocol upgrade`."""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from protocols import ProtocolError, load_protocol_file
from schemas.protocol import Protocol
from starter.cli.common import CliError, one_line
from workflows import rules

_VERSION_LINE = re.compile(r"^schema_version:[ \t]*1[ \t]*(#.*)?$", re.M)
_FIRST_FIELD = re.compile(r"^[a-z_]+:", re.M)


def protocol_v2_lines(p: Protocol) -> list[str]:
    """The child's statuses, severities, CAFCASS limits and each track's own rules, for people."""

    def statuses(keys: list[str], empty: str = "any") -> str:
        return ", ".join(f"{p.child_statuses.get(k, k)} [{k}]" for k in keys) or empty

    def who(roles: list[str]) -> str:
        return ", ".join(f"{p.role_name(r)} [{r}]" for r in roles) or "nobody"

    out = [
        "child's status (escalate raise --child-status): "
        + (
            statuses(list(p.child_statuses), "none declared")
            + (" (required at raise)" if p.child_statuses else "")
        ),
        "severities (escalate raise --severity): "
        + (", ".join(f"{name} [{key}]" for key, name in p.severities.items()) or "none declared"),
    ]
    for where, rule in [
        ("protocol", p.cafcass),
        *((f"track {t.key}", t.cafcass) for t in p.tracks if t.cafcass),
    ]:
        alongside = "runs alongside the local process" if rule.alongside else "ends the local process"
        out.append(
            f"CAFCASS referral ({where}): for a child who is {statuses(rule.child_statuses)}; {alongside}"
        )
    for t in p.tracks:
        out.append(f"track {t.key}, its own rules:")
        track_rules = [
            ("total formal limit", t.total_formal_working_days, "working days"),
            ("reminder lead", t.reminder_lead_working_days, "working days before a deadline"),
        ]
        for label, value, unit in track_rules:
            out.append(
                f"  {label}: {f'{value} {unit}' if value is not None else 'the protocol' + chr(39) + 's'}"
            )
        if t.bypass:
            out.append(
                f"  bypass: {'allowed' if t.bypass.allowed else 'not allowed'}; prior discussion with: "
                f"{who(t.bypass.prior_discussion_with)}; no discussion needed in an emergency: "
                f"{'yes' if t.bypass.emergency_exempt else 'no'}"
                + (f"; condition: {one_line(t.bypass.condition)}" if t.bypass.condition else "")
            )
        if t.cafcass:
            out.append(
                f"  CAFCASS referral by: {who(t.cafcass.officer_roles)}; consult first: "
                f"{who(t.cafcass.consult)}; inform: {who(t.cafcass.inform)}"
                + (f"; note: {one_line(t.cafcass.note)}" if t.cafcass.note else "")
            )
        if t.extensions:
            out.append(
                f"  extensions approved by: {who([t.extensions.approved_by])}"
                + (f"; note: {one_line(t.extensions.note)}" if t.extensions.note else "")
            )
        out.append(f"  for a child who is: {statuses(t.child_statuses)}")
        for category, keys in t.category_statuses.items():
            out.append(f"  category {category!r} for a child who is: {statuses(keys)}")
        for e in rules.entry_points(t):
            tied = [*(f"category {c!r}" for c in e.categories), *(f"severity {v}" for v in e.severities)]
            note = f" ({one_line(e.note)})" if e.note else ""
            out.append(f"  entry point: {e.stage}, for {' or '.join(tied) if tied else 'any concern'}{note}")
    return out


def upgraded_text(text: str) -> str:
    """A version-1 file's text as version 2: only the version line changes (comments and layout kept)."""
    if _VERSION_LINE.search(text):
        return _VERSION_LINE.sub("schema_version: 2", text, count=1)
    first = _FIRST_FIELD.search(text)
    at = first.start() if first else len(text)
    return f"{text[:at]}schema_version: 2\n{text[at:]}"


def _load_as(path: Path, text: str) -> Protocol:
    """``text`` loaded as if it were the file ``path`` (whose name gives the key)."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / path.name
        copy.write_text(text, encoding="utf-8")
        try:
            return load_protocol_file(copy)
        except ProtocolError as exc:
            raise CliError(str(exc).replace(str(copy), str(path))) from None


async def cmd_protocol_upgrade(args: argparse.Namespace) -> int:
    """Rewrite a version-1 protocol file as version 2: to stdout, or in place with ``--write``."""
    from starter.cli.tools import PROTOCOL_FILE_MAX, _readable_file

    path: Path = _readable_file(args.file, PROTOCOL_FILE_MAX, "a protocol file (YAML)")
    text = path.read_text(encoding="utf-8")
    before = _load_as(path, text)
    if before.schema_version == 2:
        new = text
        said = f"{path}: already schema version 2; nothing to change"
    else:
        new = upgraded_text(text)
        after = _load_as(path, new)
        if after.model_dump(exclude={"schema_version"}) != before.model_dump(exclude={"schema_version"}):
            raise CliError(f"{path}: the upgraded file would mean something else; upgrade it by hand")
        said = f"{path}: upgraded to schema version 2"
    if not args.write:
        sys.stdout.write(new)
        return 0
    if new != text:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(new)
            os.chmod(tmp, path.stat().st_mode & 0o777)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    print(said, file=sys.stderr)
    return 0
