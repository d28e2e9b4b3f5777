"""The worker's command-line options, shared by ``python worker.py`` and ``escalate worker``.

Kept apart from ``worker.py`` so that ``escalate`` can build its parser without importing the worker
(SQLAlchemy, Alembic and the activities take half a second to import, which every command would pay).
"""

from __future__ import annotations

import argparse
import os

from workflows.escalation import TASK_QUEUE

# Each option that stands for a setting, and the environment variable ``activities.settings`` reads.
_SETTINGS = {
    "data_dir": "ESCALATION_DATA_DIR",
    "database_url": "ESCALATION_DATABASE_URL",
    "smtp_host": "ESCALATION_SMTP_HOST",
    "smtp_port": "ESCALATION_SMTP_PORT",
}


TASK_QUEUE_MAX = 200


def _port(text: str) -> int:
    """A TCP port number."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a port: give a number from 1 to 65535")
    return port


def _task_queue(text: str) -> str:
    """A task queue's name: not empty, no surrounding spaces, at most ``TASK_QUEUE_MAX`` characters."""
    if not text or text != text.strip() or len(text) > TASK_QUEUE_MAX:
        raise argparse.ArgumentTypeError(
            f"give a name of 1 to {TASK_QUEUE_MAX} characters, no surrounding spaces (default {TASK_QUEUE})"
        )
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's own options (both front doors add ``--address``/``--namespace`` themselves)."""
    parser.add_argument("--task-queue", type=_task_queue, default=TASK_QUEUE)
    parser.add_argument("--data-dir", help="Where records and the outbox go (default ESCALATION_DATA_DIR)")
    parser.add_argument(
        "--database-url",
        help="record store (default ESCALATION_DATABASE_URL); keep a URL with a password in the environment",
    )
    parser.add_argument("--smtp-host", help="SMTP server (default ESCALATION_SMTP_HOST)")
    parser.add_argument("--smtp-port", type=_port, help="SMTP port (default ESCALATION_SMTP_PORT)")
    parser.add_argument("--smoke", action="store_true", help="run one short escalation, then exit")


def apply_settings(args: argparse.Namespace) -> None:
    """A setting given as a flag wins over the environment: put it there, where ``Settings`` reads it."""
    for option, variable in _SETTINGS.items():
        value = getattr(args, option)
        if value is not None:
            os.environ[variable] = str(value)
