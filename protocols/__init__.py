"""The authorities' protocols: one YAML file each in this folder, validated on load.

A new authority is a new file here (or in a folder named by ``ESCALATION_PROTOCOLS_DIR``); no code change.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from schemas.protocol import Protocol

PROTOCOLS_DIR = Path(__file__).resolve().parent


class ProtocolError(ValueError):
    """A protocol file could not be loaded; the message names the file, the field and the fix."""


def protocol_dirs() -> list[Path]:
    extra = os.environ.get("ESCALATION_PROTOCOLS_DIR")
    return [Path(extra), PROTOCOLS_DIR] if extra else [PROTOCOLS_DIR]


def available_protocols() -> list[str]:
    """Keys of every protocol file found, sorted."""
    keys = {p.stem for d in protocol_dirs() if d.is_dir() for p in d.glob("*.yaml")}
    return sorted(keys)


def protocol_path(key: str) -> Path:
    for directory in protocol_dirs():
        candidate = directory / f"{key}.yaml"
        if candidate.is_file():
            return candidate
    raise ProtocolError(
        f"unknown authority {key!r}: no file {key}.yaml in {', '.join(str(d) for d in protocol_dirs())}; "
        f"known: {', '.join(available_protocols()) or 'none'}"
    )


def load_protocol(key: str) -> Protocol:
    """Load the protocol of authority ``key`` (e.g. ``"wigan"``)."""
    return load_protocol_file(protocol_path(key))


_loaded: dict[Path, tuple[int, Protocol]] = {}


def load_protocol_file(path: str | Path) -> Protocol:
    """Parse and validate one file; raise ProtocolError saying what is wrong and how to fix it.

    Protocols are immutable, so a file is parsed again only when it changes on disk.
    """
    path = Path(path).resolve()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as exc:
        raise ProtocolError(f"{path}: cannot read the file ({exc.strerror})") from exc
    cached = _loaded.get(path)
    if cached and cached[0] == stamp:
        return cached[1]
    protocol = _parse(path)
    _loaded[path] = (stamp, protocol)
    return protocol


def _parse(path: Path) -> Protocol:
    raw = read_yaml_mapping(path, ProtocolError, "a mapping of protocol fields")
    check_named_after_file(raw, "key", path, ProtocolError)
    raw.setdefault("key", path.stem)
    try:
        return Protocol.model_validate(raw)
    except ValidationError as exc:
        raise ProtocolError(f"{path}: " + describe_errors(exc, raw, "protocol", _key_of, _HINTS)) from exc


_HINTS = {
    "response_working_days": "write null where the protocol sets no response time",
}


def _key_of(index: int, item: object) -> str:
    """``tracks.0.stages.3.to`` becomes ``tracks.iro.stages.stage-4.to``: list items named by their key."""
    key = item.get("key") if isinstance(item, dict) else None
    return key if isinstance(key, str) else str(index)


# --- shared with the directory files (``activities.directory``) ------------------------------------------


_FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML has it: the same data ten times faster (every ``escalate`` command
reads every directory file and its protocol to know who acts)."""


def read_yaml_mapping(path: Path, error: type[ValueError], expected: str) -> dict[str, Any]:
    """The top-level mapping of the YAML file ``path``; else ``error`` naming the file and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
        try:
            raw = yaml.load(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:  # said as the pure-Python parser says it (its line, column and words)
            raw = yaml.safe_load(text)
    except OSError as exc:
        raise error(f"{path}: cannot read the file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise error(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise error(f"{path}: expected {expected} at the top level")
    return raw


def check_named_after_file(raw: dict[str, Any], field: str, path: Path, error: type[ValueError]) -> None:
    """Refuse a ``field`` (the authority's key) that is given and differs from the file's name."""
    value = raw.get(field, path.stem)
    if value != path.stem:
        raise error(
            f"{path}: field {field!r} is {value!r} but the file is named {path.name}; "
            f"make them match ({field}: {path.stem})"
        )


def describe_errors(
    exc: ValidationError,
    raw: object,
    noun: str,
    name_item: Callable[[int, object], str],
    hints: Mapping[str, str] | None = None,
) -> str:
    """Each of ``exc``'s errors as ``field 'a.b': what is wrong``, with the fix where there is a usual one.

    ``name_item(index, item)`` names a list item in the field's path; ``hints`` adds a fix by field name.
    """
    return "; ".join(_describe(err, raw, noun, name_item, hints or {}) for err in exc.errors())


def _describe(
    err: ErrorDetails,
    raw: object,
    noun: str,
    name_item: Callable[[int, object], str],
    hints: Mapping[str, str],
) -> str:
    loc = tuple(err["loc"])
    parts: list[str] = []
    node = raw
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            parts.append(name_item(part, node[part]))
            node = node[part]
        else:
            parts.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    field = ".".join(parts)
    msg = err["msg"].removeprefix("Value error, ")
    if not field:  # a rule across fields: its message names the fields itself
        return msg
    if err["type"] == "missing":
        return f"field {field!r} is missing: add it"
    if err["type"] == "extra_forbidden":
        return f"field {field!r} is not a {noun} field: remove it or check its spelling"
    hint = hints.get(str(loc[-1]))
    return f"field {field!r}: {msg}" + (f" ({hint})" if hint else "")
