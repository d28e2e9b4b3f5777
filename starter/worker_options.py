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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's own options (both front doors add ``--address``/``--namespace`` themselves)."""
    parser.add_argument("--task-queue", default=TASK_QUEUE)
    parser.add_argument("--data-dir", help="Where records and the outbox go (default ESCALATION_DATA_DIR)")
    parser.add_argument(
        "--database-url",
        help="record store (default ESCALATION_DATABASE_URL); keep a URL with a password in the environment",
    )
    parser.add_argument("--smtp-host", help="SMTP server (default ESCALATION_SMTP_HOST)")
    parser.add_argument("--smtp-port", type=int, help="SMTP port (default ESCALATION_SMTP_PORT)")
    parser.add_argument("--smoke", action="store_true", help="run one short escalation, then exit")


def apply_settings(args: argparse.Namespace) -> None:
    """A setting given as a flag wins over the environment: put it there, where ``Settings`` reads it."""
    for option, variable in _SETTINGS.items():
        value = getattr(args, option)
        if value is not None:
            os.environ[variable] = str(value)
