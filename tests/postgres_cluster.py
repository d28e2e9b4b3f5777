"""A throwaway PostgreSQL cluster outside pytest (for the benchmarks), as ``tests/postgres_server.py`` starts
one for the test session: Debian's binaries, a temporary folder, 127.0.0.1 on a free port, fsync off."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

from tests.postgres_server import DATABASE, _admin, _Cluster, find_postgres_bin
from tests.temporal_servers import free_port


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """The URL of database ``escalations`` on a new cluster, stopped and removed afterwards."""
    bindir = find_postgres_bin()
    if bindir is None:
        raise SystemExit("PostgreSQL's initdb and pg_ctl were not found: install Debian's 'postgresql'")
    cluster = _Cluster(bindir)
    try:
        cluster.init()
        cluster.port = free_port()
        cluster.start()
        _admin(cluster.url(), f'CREATE DATABASE "{DATABASE}"')
        yield cluster.url()
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)
