"""The authorities' protocols: one YAML file each in this folder, validated on load.

A new authority is a new file here (or in a folder named by ``ESCALATION_PROTOCOLS_DIR``); no code change.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import ValidationError

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
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProtocolError(f"{path}: cannot read the file ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ProtocolError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(raw, dict):
        raise ProtocolError(f"{path}: expected a mapping of protocol fields at the top level")
    if raw.get("key", path.stem) != path.stem:
        raise ProtocolError(
            f"{path}: field 'key' is {raw.get('key')!r} but the file is named {path.name}; "
            f"make them match (key: {path.stem})"
        )
    raw.setdefault("key", path.stem)
    try:
        return Protocol.model_validate(raw)
    except ValidationError as exc:
        raise ProtocolError(f"{path}: " + "; ".join(_describe(err, raw) for err in exc.errors())) from exc


_HINTS = {
    "response_working_days": "write null where the protocol sets no response time",
}


def _field_path(loc: tuple[object, ...], raw: object) -> str:
    """``tracks.0.stages.3.to`` becomes ``tracks.iro.stages.stage-4.to``: list items named by their key."""
    parts: list[str] = []
    node = raw
    for part in loc:
        if isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            item = node[part]
            named = isinstance(item, dict) and isinstance(item.get("key"), str)
            parts.append(item["key"] if named else str(part))
            node = item
        else:
            parts.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
    return ".".join(parts)


def _describe(err: object, raw: object) -> str:
    assert isinstance(err, dict)
    loc = tuple(err.get("loc", ()))
    field = _field_path(loc, raw)
    kind = err.get("type", "")
    msg = str(err.get("msg", "")).removeprefix("Value error, ")
    if not field:  # a rule across fields: its message names the fields itself
        return msg
    if kind == "missing":
        return f"field {field!r} is missing: add it"
    if kind == "extra_forbidden":
        return f"field {field!r} is not a protocol field: remove it or check its spelling"
    hint = _HINTS.get(str(loc[-1])) if loc else None
    return f"field {field!r}: {msg}" + (f" ({hint})" if hint else "")
