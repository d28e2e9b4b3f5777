"""The worker's command-line options, shared by ``python worker.py`` and ``escalate worker``.

Kept apart from ``worker.py`` so that ``escalate`` can build its parser without importing the worker
(SQLAlchemy, Alembic and the activities take half a second to import, which every command would pay).
"""

from __future__ import annotations

import argparse
import os

from workflows.names import TASK_QUEUE

# Each option that stands for a setting, and the environment variable ``activities.settings`` reads.
_SETTINGS = {
    "data_dir": "ESCALATION_DATA_DIR",
    "database_url": "ESCALATION_DATABASE_URL",
    "smtp_host": "ESCALATION_SMTP_HOST",
    "smtp_port": "ESCALATION_SMTP_PORT",
}


TASK_QUEUE_MAX = 200

CACHED_WORKFLOWS = 150
"""Escalations kept in the worker's memory between workflow tasks (the SDK's default is 1,000). Measured
with ``benchmarks/scale.py`` at 10,000 open: 246 MiB with 120 cached, 249 with 150, 265 with 200, so about
0.25 MiB each; the rest is what a busy worker holds to work (its imports, threads and connections), not
the open count. Most open escalations wait days between changes, so a small cache costs a replay now and
then; a worker that must carry large deadline waves quickly is given more (``--cached-workflows``) and the
memory that goes with it."""
CACHED_WORKFLOWS_MAX = 100_000


def _cache_size(text: str) -> int:
    """A cache size: a whole number from 0 (no cache) to ``CACHED_WORKFLOWS_MAX``."""
    try:
        size = int(text)
    except ValueError:
        size = -1
    if not 0 <= size <= CACHED_WORKFLOWS_MAX:
        raise argparse.ArgumentTypeError(
            f"{text[:20]!r}: give a whole number of escalations from 0 to {CACHED_WORKFLOWS_MAX:,} "
            f"(default {CACHED_WORKFLOWS})"
        )
    return size


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
    parser.add_argument(
        "--cached-workflows",
        type=_cache_size,
        default=CACHED_WORKFLOWS,
        help=f"escalations kept in memory between tasks (default {CACHED_WORKFLOWS}, about 0.25 MiB each)",
    )
    parser.add_argument("--smoke", action="store_true", help="run one short escalation, then exit")


def apply_settings(args: argparse.Namespace) -> None:
    """A setting given as a flag wins over the environment: put it there, where ``Settings`` reads it."""
    for option, variable in _SETTINGS.items():
        value = getattr(args, option)
        if value is not None:
            os.environ[variable] = str(value)
