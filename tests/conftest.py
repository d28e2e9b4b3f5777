"""Test-session setup: Temporal server fixtures and a hard exit once pytest has reported.

temporalio 1.30-1.35 on Python 3.11 can abort or segfault during interpreter teardown (see
``starter/clean_exit.py``), which would turn a green run into a crash. So the session ends with
``os._exit(status)`` after pytest has printed its summary and finished its own unconfigure hooks.

Every Temporal client and worker of the session (and every process a test starts, which inherits the
environment) encrypts payloads with one fresh key, set here in ``ESCALATION_PAYLOAD_KEYS``.
"""

from __future__ import annotations

import os
import sys

import pytest

from starter.codec import new_key
from tests.databases import db_url
from tests.postgres_server import postgres_url
from tests.smtp_server import smtp_server
from tests.temporal_servers import dev_server_env, require_or_skip, time_skipping_env

# Read lazily, at a client's first payload or connect(): setting it after the imports is in time.
os.environ["ESCALATION_PAYLOAD_KEYS"] = f"test-session:{new_key()}"

__all__ = [
    "db_url",
    "dev_server_env",
    "postgres_url",
    "require_or_skip",
    "smtp_server",
    "time_skipping_env",
]

_session: pytest.Session | None = None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _session
    _session = session


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _session is None:  # no session ran (e.g. --help): let pytest exit normally
        return
    status = int(_session.exitstatus)
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    os._exit(status)
