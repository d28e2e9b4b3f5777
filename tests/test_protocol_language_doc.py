"""docs/protocol-language.md keeps up with the schema and its guide's examples are true.

Every field of every model reachable from ``Protocol`` has an entry in the reference (and every entry is a
field), with the parts a reader relies on; a field's "required" and simple default agree with the schema.
The guide's example files are checked as its commands check them, with the output it shows; each common
mistake, applied to the example, gives exactly the message the guide prints; and the guide's directory file
and `escalate raise` pass the checks raising makes before anything starts.
"""

from __future__ import annotations

import json
import re
import shlex
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from activities.directory import load_directory_file
from protocols import load_protocol_file
from schemas.escalation import Actor, Concern
from schemas.protocol import Protocol
from starter.cli import _main as escalate_in_process
from starter.cli import build_parser
from starter.escalations import prepare
from tests.cli_runner import Cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol-language.md"
TEXT = DOC.read_text(encoding="utf-8")
DOC_ROOT = "/home/analyst/escalation/"
"""Where the guide's examples say the project is checked out; messages print the file's full path."""

REQUIRED_IN_SCHEMA_BUT_NOT_IN_A_FILE = {"key": "the loader fills it in from the file's name"}
ENTRY_PARTS = ("- **Means:**", "- **Type:**", "- **Required:**", "- **Limits:**", "- **Example")


# --- the schema's fields --------------------------------------------------------------------------------


def _nested(annotation: Any) -> list[tuple[type[BaseModel], bool]]:
    """The models inside a field's type, each with whether it sits in a list (``stages[]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, False)]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple, set, frozenset):
        return [(model, True) for arg in args for model, _ in _nested(arg)]
    if origin is dict:
        return [(model, True) for model, _ in _nested(args[1])] if len(args) == 2 else []
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return [found for arg in args for found in _nested(arg)]
    return []


def schema_fields(
    model: type[BaseModel] = Protocol, prefix: str = ""
) -> dict[str, tuple[type[BaseModel], str]]:
    """Every field reachable from ``model``, by its place in a file (``tracks[].stages[].to``), with the
    model that declares it and its name there."""
    found: dict[str, tuple[type[BaseModel], str]] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        found[path] = (model, name)
        for inner, in_list in _nested(info.annotation):
            found.update(schema_fields(inner, f"{path}{'[]' if in_list else ''}."))
    return found


FIELDS = schema_fields()


# --- the reference's entries ----------------------------------------------------------------------------


def documented_entries() -> dict[str, str]:
    """Each ``#### `field.path``` heading of the reference, with its text up to the next heading."""
    entries: dict[str, str] = {}
    for match in re.finditer(r"^#### `([^`]+)`\n(.*?)(?=^#)", TEXT + "\n#", re.S | re.M):
        path, body = match.group(1), match.group(2)
        assert path not in entries, f"{path} is described twice in {DOC.name}"
        entries[path] = body
    return entries


ENTRIES = documented_entries()


def test_the_field_walk_reaches_every_level_of_the_schema() -> None:
    # A walk that stopped at the top level would make the next test pass on a fraction of the schema.
    for deep in ("tracks[].stages[].entry_gate.kind", "tracks[].stages[].routes[].cc", "child_ref.example"):
        assert deep in FIELDS, deep
    assert len(FIELDS) >= 50


def test_every_schema_field_is_described_and_every_entry_is_a_field() -> None:
    missing = sorted(set(FIELDS) - set(ENTRIES))
    stale = sorted(set(ENTRIES) - set(FIELDS))
    assert not missing, (
        f"fields of the protocol schema with no entry in {DOC}: {missing}; add a '#### `<path>`' entry "
        "with its meaning, type, whether required, default, limits and an example from a seed"
    )
    assert not stale, f"entries in {DOC} for fields the schema no longer has: {stale}; remove or rename them"


@pytest.mark.parametrize("path", sorted(FIELDS))
def test_each_entry_says_what_a_writer_needs(path: str) -> None:
    body = ENTRIES.get(path)
    if body is None:
        pytest.skip(f"{path} has no entry (reported by the test above)")
    for part in ENTRY_PARTS:
        assert part in body, f"the entry for {path} has no '{part}' line"


def _yaml_scalar(value: object) -> str | None:
    """How a simple default is written in a file; None when the entry's words are the only way to say it."""
    if isinstance(value, BaseModel) or value == "":
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()
    if isinstance(value, list | dict):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return None


@pytest.mark.parametrize("path", sorted(FIELDS))
def test_each_entry_states_the_schemas_requirement_and_default(path: str) -> None:
    body = ENTRIES.get(path)
    if body is None:
        pytest.skip(f"{path} has no entry (reported by the test above)")
    model, name = FIELDS[path]
    info = model.model_fields[name]
    line = next(x for x in body.splitlines() if x.startswith("- **Required:**"))
    says_required = line.removeprefix("- **Required:**").strip().startswith("yes")
    if path in REQUIRED_IN_SCHEMA_BUT_NOT_IN_A_FILE:
        assert info.is_required() and not says_required, path
        return
    assert says_required == info.is_required(), f"{path}: the schema says required={info.is_required()}"
    if info.is_required():
        return
    default = info.default
    if default is PydanticUndefined:
        default = info.get_default(call_default_factory=True)
    written = _yaml_scalar(default)
    if written is not None:
        assert f"`{written}`" in line or f'`"{written}"`' in line, (
            f"{path}: the schema's default is {written}; the entry says: {line}"
        )


# --- the guide's examples -------------------------------------------------------------------------------


def example_files() -> dict[str, str]:
    """The guide's files: each ```yaml file=NAME block."""
    blocks = re.finditer(r"^```yaml file=(\S+)\n(.*?)^```$", TEXT, re.S | re.M)
    return {m.group(1): m.group(2) for m in blocks}


def console_blocks() -> list[tuple[str | None, str, list[str]]]:
    """Each ```console block with one command: (the mistake comment before it, if any; the command after
    `$ `; the lines it shows printed)."""
    found = []
    pattern = r"(?:<!-- mistake (\{.*?\}) -->\n)?^```console\n(.*?)^```$"
    for match in re.finditer(pattern, TEXT, re.S | re.M):
        lines = match.group(2).splitlines()
        command = lines[0].removeprefix("$ ")
        rest = lines[1:]
        while rest and rest[0].startswith("    "):  # a command continued over lines with `\`
            command = command.removesuffix("\\") + rest.pop(0)
        found.append((match.group(1), command, rest))
    return found


FILES = example_files()
CHECKS = [c for c in console_blocks() if c[1].startswith(".venv/bin/escalate protocol check ")]
PASSING = [c for c in CHECKS if c[0] is None]
MISTAKES = [c for c in CHECKS if c[0] is not None]


def _write_examples(root: Path) -> None:
    for name, text in FILES.items():
        target = root / "protocols" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def test_the_guide_has_examples_to_run() -> None:
    assert {"northshire.yaml", "directories/northshire.yaml"} <= set(FILES)
    assert PASSING, "the guide shows no passing `escalate protocol check`"
    assert len(MISTAKES) >= 10, "the guide's common mistakes are missing"


async def test_the_guides_protocol_checks_pass_with_the_output_it_shows(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    _write_examples(root)
    cli = Cli("127.0.0.1:1", root)  # these commands need no server
    for _, command, shown in PASSING:
        args = shlex.split(command)[1:]
        out = await cli.ok(*args)
        assert out.splitlines() == shown, f"`{command}` printed {out!r}; the guide shows {shown}"
    protocols = str(root / "protocols")
    shown_protocol = await cli.ok("protocol", "show", "northshire", ESCALATION_PROTOCOLS_DIR=protocols)
    assert "track iro-cp: IRO and CP Chair escalation" in shown_protocol
    as_json = json.loads(
        await cli.ok("protocol", "show", "northshire", "--json", ESCALATION_PROTOCOLS_DIR=protocols)
    )
    assert Protocol.model_validate(as_json) == load_protocol_file(root / "protocols" / "northshire.yaml")


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: str(MISTAKES.index(m)))
async def test_each_common_mistake_gives_the_message_the_guide_shows(
    mistake: tuple[str, str, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change_text, command, shown = mistake
    change = json.loads(change_text)
    original = FILES["northshire.yaml"]
    assert original.count(change["replace"]) == 1, f"the mistake's text must be in the example once: {change}"
    root = tmp_path.resolve()
    broken = root / "protocols" / "northshire.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text(original.replace(change["replace"], change["with"]), encoding="utf-8")
    args = shlex.split(command)[1:]
    args[-1] = str(broken)
    code = await escalate_in_process(args)
    captured = capsys.readouterr()
    expected = [line.replace(DOC_ROOT, f"{root}/") for line in shown]
    assert (code, captured.out, captured.err.splitlines()) == (2, "", expected)


def test_the_guides_directory_and_raise_pass_the_checks_raising_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path.resolve()
    _write_examples(root)
    monkeypatch.setenv("ESCALATION_PROTOCOLS_DIR", str(root / "protocols"))
    protocol = load_protocol_file(root / "protocols" / "northshire.yaml")
    directory = load_directory_file(root / "protocols" / "directories" / "northshire.yaml", protocol)
    raises = [c for c in console_blocks() if c[1].startswith(".venv/bin/escalate raise ")]
    assert len(raises) == 1
    args = build_parser().parse_args(shlex.split(raises[0][1])[1:])
    track = protocol.track(args.track)
    raise_ = prepare(
        authority=args.authority,
        track=track.key,
        category=track.categories[int(args.category) - 1] if args.category.isdigit() else args.category,
        child_ref=args.child_ref,
        officer=Actor(id=args.as_id, role=args.as_role),
        concern=Concern(summary=args.summary, impact_on_child=args.impact, requested_action=args.request),
        team=args.team,
        directory=directory,
        request_id="guide-example",
    )
    assert raise_.escalation_id.startswith("northshire-NS004211-")
    shown = raises[0][2][0]
    assert shown.startswith("raised northshire-NS004211-") and "held by Social Worker" in shown


def test_every_link_within_the_page_finds_its_heading() -> None:
    slugs: list[str] = []
    prose = re.sub(r"^```.*?^```$", "", TEXT, flags=re.S | re.M)  # YAML comments are not headings
    for heading in re.findall(r"^#+ (.+)$", prose, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        slugs.append(slug if slug not in slugs else f"{slug}-{slugs.count(slug)}")
    broken = sorted({link for link in re.findall(r"\]\(#([^)]+)\)", TEXT) if link not in slugs})
    assert not broken, f"links in {DOC.name} to no heading: {broken}"
