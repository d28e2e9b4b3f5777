"""`escalate protocol bpmn` and `escalate protocol import`: a protocol as BPMN 2.0 and back (docs/bpmn.md)."""

from __future__ import annotations

import argparse
import sys

import yaml

from protocols import ProtocolError, load_protocol
from protocols.bpmn import BpmnImportError, export_bpmn, import_bpmn
from schemas.protocol import Protocol
from starter.cli.common import CliError

BPMN_FILE_MAX = 8 * 1024 * 1024
"""A drawn protocol is tens of kilobytes; anything over 8 MiB is not one."""


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
