"""Reloading the directory while the worker runs (``escalate directory sync``), and finding who waits on it.

The directory files live with the worker (``ESCALATION_DIRECTORY_DIR``) and the record store is the
worker's, so the command does not touch either: it starts ``DirectorySyncWorkflow``, whose activity here
validates and stores the files (all before any is stored) and lists the open escalations that are stalled
in those authorities (from the record store's state rows, which needs no search attributes). The workflow
then tells each of them to try its held notices again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio import activity

from activities.db.record_models import EscalationRecord
from activities.directory import DirectoryError, directory_files, load_directory_file, sync_directory
from activities.escalation_activities import _sorted_errors
from schemas.escalation import Flag, Status


class SyncRequest(BaseModel):
    authorities: list[str] = Field(default_factory=list, description="Empty: every directory file.")


class SyncResult(BaseModel):
    synced: dict[str, int] = Field(default_factory=dict, description="Authority -> assignments stored.")
    stalled: list[str] = Field(default_factory=list, description="Open stalled escalations there.")


class DirectorySyncActivities:
    def __init__(self, engine: Engine, folder: Path) -> None:
        self.engine = engine
        self.folder = folder

    @activity.defn(name="sync_directory_files")
    def sync_directory_files(self, request: SyncRequest) -> SyncResult:
        """Load, check and store the directory files asked for; list the stalled escalations there.

        A missing or invalid file is bad input (``InvalidInput``, naming the file and the fix), and then
        nothing is stored.
        """
        with _sorted_errors():
            files = {path.stem: path for path in directory_files(self.folder)}
            wanted = request.authorities or sorted(files)
            missing = [a for a in wanted if a not in files]
            if missing:
                known = ", ".join(sorted(files)) or "none"
                raise DirectoryError(
                    f"no directory file for {', '.join(missing)} in {self.folder} (it has: {known})"
                )
            loaded = [(a, load_directory_file(files[a])) for a in wanted]
            synced = {a: sync_directory(self.engine, a, directory) for a, directory in loaded}
            return SyncResult(synced=synced, stalled=self.stalled(wanted))

    def stalled(self, authorities: list[str]) -> list[str]:
        """Open escalations of ``authorities`` whose recorded state is stalled (each id once)."""
        closed = [s.value for s in Status if s.is_closed]
        query = select(EscalationRecord.escalation_id, EscalationRecord.flags).where(
            EscalationRecord.authority.in_(authorities), EscalationRecord.status.not_in(closed)
        )
        with Session(self.engine) as session:
            rows = session.execute(query).all()
        return sorted({eid for eid, flags in rows if Flag.STALLED.value in (flags or [])})

    def all(self) -> list[Callable[..., Any]]:
        return [self.sync_directory_files]
