"""Every field of the protocol schema is acted on: a field the engine does not act on must not exist.

The engine is the workflow and its rules, the activities and the front doors; ``protocol show`` displaying
a field does not count, except for prose that is there for people (the file's interpretation notes, the
wording of the bypass condition), which it must then show.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from pydantic import BaseModel

import schemas.protocol as schema

ROOT = Path(__file__).resolve().parents[1]
SHOWN_BY = ROOT / "starter" / "cli" / "tools.py"

THROUGH_THE_SCHEMA = {
    ("Stage", "routes"): ".addressees(",
    ("Stage", "judged_by"): ".judges(",
    ("CaseNoteNaming", "officer_labels"): ".case_note_label(",
    ("Protocol", "schema_version"): "Literal[1, 2]",
}
"""Fields the engine uses through a method of the schema (or the schema's own check of the version)."""
PROSE = {("BypassRule", "condition"), ("Protocol", "notes")}
"""Text for people: shown by ``protocol show``, never a rule."""


def _engine_text() -> str:
    folders = [ROOT / "workflows", ROOT / "activities", ROOT / "starter"]
    files = [p for folder in folders for p in folder.rglob("*.py") if p != SHOWN_BY]
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


def _fields() -> list[tuple[str, str]]:
    models = [
        m
        for name, m in vars(schema).items()
        if inspect.isclass(m) and issubclass(m, BaseModel) and m.__module__ == schema.__name__
    ]
    assert len(models) >= 10
    return [(m.__name__, f) for m in models if not m.__name__.startswith("_") for f in m.model_fields]


def test_every_protocol_field_is_acted_on_by_the_engine() -> None:
    engine = _engine_text()
    unused = {(model, field) for model, field in _fields() if not re.search(rf"\.{field}\b", engine)}
    assert unused - set(THROUGH_THE_SCHEMA) - PROSE == set(), "fields nothing acts on: honour or remove them"


def test_fields_used_through_the_schema_are_and_prose_is_shown() -> None:
    engine = _engine_text()
    source = Path(schema.__file__).read_text(encoding="utf-8")
    for (_, field), use in THROUGH_THE_SCHEMA.items():
        assert use in engine or use in source, f"{field}: {use} is no longer used"
        assert re.search(rf"\b{field}\b", source)
    shown = SHOWN_BY.read_text(encoding="utf-8")
    for _, field in PROSE:
        assert re.search(rf"\.{field}\b", shown), f"{field} is prose for people but protocol show omits it"
