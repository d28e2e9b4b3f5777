"""Protocol language v2 at the command line: `raise --child-status/--severity` checked before anything
is sent (refusals name the option), `protocol show` prints the v2 fields, `protocol upgrade`."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocols import PROTOCOLS_DIR, load_protocol_file
from starter.cli import _main as escalate

RAISE = [
    "raise", "--authority", "waltham-forest-fwi", "--track", "cp", "--category", "1", "--child-ref", "C4F2A9",
    "--officer-id", "wff-cp-coordinator-a", "--officer-role", "cp_coordinator",
    "--summary", "s", "--impact", "i", "--request", "r",
    "--address", "127.0.0.1:1",
]  # fmt: skip


async def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await escalate(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], "--child-status: give the child's status under the London Borough of Waltham Forest"),
        (["--child-status", "adopted"], "--child-status: 'adopted' is not one under"),
        (["--child-status", "looked_after", "--severity", "huge"], "--severity: 'huge' is not one under"),
        (
            ["--child-status", "child_protection_plan", "--start-at-stage", "level-3"],
            "--start-at-stage level-3 is a bypass at the start (not an entry point for this concern): give "
            "--bypass-reason too",
        ),
    ],
)
async def test_raise_refuses_a_missing_or_unknown_status_naming_the_option(
    extra: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await _run(capsys, *RAISE, *extra)
    assert code == 2 and out == "" and expected in err and len(err.strip().splitlines()) == 1


async def test_protocol_show_prints_the_v2_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await _run(capsys, "protocol", "show", "waltham-forest-fwi")
    assert code == 0
    assert "total formal limit: 23 working days" in out
    assert "entry point: level-2, for severity subsequent_low_level" in out
    assert "CAFCASS referral (protocol): for a child who is Looked after" in out and "runs alongside" in out


async def test_upgrade_prints_the_v2_file_and_writes_it_in_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (PROTOCOLS_DIR / "gloucestershire.yaml").read_text(encoding="utf-8")
    # A version-1 file: the v2 fields taken out, the version line put back.
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    skipping = False
    for line in lines:
        if line.startswith("schema_version:"):
            line = "schema_version: 1\n"
        if line.startswith("child_statuses:"):
            skipping = True
            continue
        if skipping and line.startswith("  "):
            continue
        skipping = False
        if line.strip().startswith("child_statuses: [looked_after]"):
            continue
        kept.append(line)
    v1 = "".join(kept)
    path = tmp_path / "gloucestershire.yaml"
    path.write_text(v1, encoding="utf-8")
    assert load_protocol_file(path).schema_version == 1
    code, out, _ = await _run(capsys, "protocol", "upgrade", str(path))
    assert code == 0 and out == v1.replace("schema_version: 1\n", "schema_version: 2\n")
    assert path.read_text(encoding="utf-8") == v1  # unchanged without --write
    code, out, err = await _run(capsys, "protocol", "upgrade", str(path), "--write")
    assert code == 0 and out == "" and "upgraded to schema version 2" in err
    assert load_protocol_file(path).schema_version == 2
    code, _, err = await _run(capsys, "protocol", "upgrade", str(path), "--write")
    assert code == 0 and "already schema version 2" in err
    code, _, err = await _run(capsys, "protocol", "upgrade", str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read the file" in err
