"""A real PostgreSQL server for the test session, from the machine's PostgreSQL binaries.

Fixture (made available to every test by ``tests/conftest.py``):

* ``postgres_url``: ``postgresql+psycopg2://postgres@127.0.0.1:PORT/escalations`` on a throwaway cluster in
  a temporary folder (trust authentication, listening on 127.0.0.1 only, socket in the folder, fsync off),
  started on first use and stopped at the end of the session. ``fresh_database(postgres_url)`` gives a
  test its own empty database on the same server.

``initdb`` and ``pg_ctl`` are looked for on PATH, then in ``/usr/lib/postgresql/*/bin`` (Debian's
``postgresql`` package; ``.ci/run`` installs it). initdb refuses to run as root, so as root the cluster
belongs to the ``postgres`` user and the binaries run through ``runuser -u postgres --``. Missing
binaries or a server that cannot start skip the tests locally and fail them in CI (``CI=true``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.temporal_servers import free_port, require_or_skip

__all__ = ["find_postgres_bin", "fresh_database", "postgres_url"]

DATABASE = "escalations"
_START_TIMEOUT_S = 60


def find_postgres_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: PATH first, then the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    candidates = [c for c in candidates if (c / "pg_ctl").exists()]

    def version(folder: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", folder.parent.name)) or (0,)

    return max(candidates, key=version) if candidates else None


class _Cluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.as_root = os.geteuid() == 0
        owner = None
        if self.as_root:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                require_or_skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        # As root, in /tmp: the postgres user must reach the folder (root's own TMPDIR may be private).
        self.root = Path(tempfile.mkdtemp(prefix="escalation-pg-", dir="/tmp" if self.as_root else None))
        if owner is not None:
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0

    def _cmd(self, tool: str, *args: str) -> list[str]:
        cmd = [str(self.bindir / tool), *args]
        return ["runuser", "-u", "postgres", "--", *cmd] if self.as_root else cmd

    def _run(self, tool: str, *args: str, timeout: float = _START_TIMEOUT_S) -> None:
        done = subprocess.run(
            self._cmd(tool, *args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            cwd=self.root,
            check=False,
        )
        if done.returncode != 0:
            output = done.stdout.decode(errors="replace").strip()
            raise RuntimeError(f"{tool} {' '.join(args)} failed ({done.returncode}): {output[-2000:]}")

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        self._run(
            "pg_ctl",
            "start",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            str(_START_TIMEOUT_S),
            "-o",
            options,
        )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", timeout=30)

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"


def _admin(url: str, statement: str) -> None:
    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A running PostgreSQL server's URL, database ``escalations``, for the whole session."""
    bindir = find_postgres_bin()
    if bindir is None:
        require_or_skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in /usr/lib/postgresql/*/bin; "
            "install Debian's 'postgresql' package"
        )
    cluster = _Cluster(bindir)
    started = False
    try:
        try:
            cluster.init()
            for attempt in range(3):  # the free port may be taken between choosing and binding it
                cluster.port = free_port()
                try:
                    cluster.start()
                    break
                except RuntimeError:
                    if attempt == 2:
                        raise
            started = True
            _admin(cluster.url(), f'CREATE DATABASE "{DATABASE}"')
        except Exception as exc:
            require_or_skip(f"PostgreSQL ({bindir}) could not start: {exc}\n{cluster.log_tail()}")
        yield cluster.url()
    finally:
        if started:
            cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new, empty database on the server at ``url``, dropped afterwards (connections and all)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    _admin(url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
