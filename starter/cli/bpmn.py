"""`escalate protocol bpmn` and `escalate protocol import`: a protocol as BPMN 2.0 and back (docs/bpmn.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from protocols import ProtocolError, load_protocol
from protocols.bpmn import BpmnImportError, export_bpmn, import_bpmn
from schemas.protocol import Protocol
from starter.cli.common import CliError

BPMN_FILE_MAX = 8 * 1024 * 1024
"""A drawn protocol is tens of kilobytes; anything over 8 MiB is not one."""


def add_commands(psub: argparse._SubParsersAction[Any], key: Callable[[str], str]) -> None:
    """The two subcommands, under `escalate protocol`."""
    q = psub.add_parser("bpmn", help="a protocol as BPMN 2.0 XML with its diagram (to stdout)")
    q.add_argument("key", type=key, metavar="AUTHORITY")
    q.add_argument("--track", type=key, help="only this track (default: every track and the other processes)")
    q.set_defaults(run=cmd_protocol_bpmn)
    q = psub.add_parser("import", help="a BPMN 2.0 file as a protocol file (YAML, to stdout)")
    q.add_argument("file", type=Path)
    q.add_argument(
        "--authority",
        type=key,
        help="the authority's key; its protocol file, if any, supplies what the diagram does not say",
    )
    q.set_defaults(run=cmd_protocol_import)


def protocol_yaml(protocol: Protocol) -> str:
    """A protocol file's text for ``protocol``: the fields that differ from their defaults."""
    head = (
        f"# {protocol.authority}: imported from BPMN (escalate protocol import). Save as "
        f"protocols/{protocol.key}.yaml.\n"
    )
    body = yaml.safe_dump(
        protocol.model_dump(mode="json", exclude_defaults=True),
        sort_keys=False,
        allow_unicode=True,
        width=110,
    )
    return head + body


async def cmd_protocol_bpmn(args: argparse.Namespace) -> int:
    try:
        protocol = load_protocol(args.key)
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    if args.track is not None and args.track not in {t.key for t in protocol.tracks}:
        raise CliError(
            f"--track {args.track}: {protocol.key} has no such track; tracks: "
            f"{', '.join(t.key for t in protocol.tracks)}"
        )
    sys.stdout.write(export_bpmn(protocol, args.track))
    return 0


async def cmd_protocol_import(args: argparse.Namespace) -> int:
    from starter.cli.tools import _readable_file

    path = _readable_file(args.file, BPMN_FILE_MAX, "a BPMN 2.0 file")
    try:
        protocol = import_bpmn(path.read_bytes(), args.authority)
    except BpmnImportError as exc:
        raise CliError(f"{path}: {exc}") from None
    sys.stdout.write(protocol_yaml(protocol))
    return 0
