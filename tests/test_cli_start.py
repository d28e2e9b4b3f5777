"""``escalate`` starts light: its parser imports no command's implementation, and ``status`` imports none of
the other commands' (checked by the modules a fresh interpreter holds, never by timing)."""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys

from starter.cli.options import Handler
from starter.cli.parser import build_parser

HEAVY = (
    "sqlalchemy",
    "alembic",
    "temporalio",
    "pydantic",
    "yaml",
    "asyncio",
    "app",
    "activities",
    "schemas",
    "protocols",
    "workflows.escalation",
    "workflows.rules",
    "openpyxl",
    "fpdf",
    "jinja2",
    "starter.cli.acting",
    "starter.cli.reading",
    "starter.cli.common",
)
"""What building the parser and printing any command's help must not import (a package and its modules)."""

NOT_FOR_STATUS = (
    "workflows.escalation",
    "workflows.rules",
    "app.raising",
    "app.lists",
    "app.reporting",
    "starter.read_model",
    "starter.escalations",
    "holidays",
    "openpyxl",
    "fpdf",
    "jinja2",
    "temporalio.worker",
    "starter.cli.acting",
    "starter.cli.actions",
    "starter.cli.processes",
    "starter.cli.report",
    "starter.cli.bpmn",
)
"""What ``escalate status`` does not need: the workflow, raising, lists, reports, other commands."""


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def _found(loaded: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in names))


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(_parsers(sub))
    return found


def test_the_parser_and_every_help_import_nothing_heavy() -> None:
    code = (
        "import argparse\n"
        "from starter.cli.parser import build_parser\n"
        "def walk(p):\n"
        "    p.format_help()\n"
        "    for a in p._actions:\n"
        "        if isinstance(a, argparse._SubParsersAction):\n"
        "            for s in a.choices.values():\n"
        "                walk(s)\n"
        "walk(build_parser())\n"
        "build_parser().parse_args(['status', 'wigan-C4F2A9-0003'])"
    )
    loaded = _loaded_after(code)
    assert "starter.cli.parser" in loaded
    assert _found(loaded, HEAVY) == []


def test_status_imports_only_what_it_needs() -> None:
    loaded = _loaded_after("import starter.cli.reading, starter.cli.service")
    assert {"app.core", "app.identity", "temporalio.client"} <= loaded  # it does read through the app layer
    assert _found(loaded, NOT_FOR_STATUS) == []


def test_an_action_imports_nothing_of_raising() -> None:
    loaded = _loaded_after("import starter.cli.actions, starter.cli.identity")  # identity: when it runs
    assert {"app.core", "schemas.escalation"} <= loaded
    others = tuple(m for m in NOT_FOR_STATUS if m != "starter.cli.actions")
    assert _found(loaded, ("starter.escalations", "workflows.rules", "app.raising", *others)) == []


def test_every_command_names_a_command_function() -> None:
    handlers = [p._defaults["run"] for p in _parsers(build_parser()) if "run" in p._defaults]
    assert len(handlers) > 50
    for handler in handlers:
        assert isinstance(handler, Handler), handler
        assert inspect.iscoroutinefunction(handler.resolve()), handler


def test_a_record_store_already_at_head_is_recognised_without_alembic(tmp_path: object) -> None:
    """Every command's start checks the audit database's schema: at head, one query, Alembic not imported."""
    from activities.db import migrate

    assert migrate.head() == migrate.HEAD, "set migrate.HEAD to the newest revision"
    url = f"sqlite:///{tmp_path}/records.db"
    migrate.upgrade(url)
    loaded = _loaded_after(f"from activities.db import migrate\nmigrate.upgrade({url!r})")
    assert "activities.db.migrate" in loaded
    assert _found(loaded, ("alembic",)) == []
