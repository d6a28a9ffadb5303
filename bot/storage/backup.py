"""An online copy of a live database (``mjbot backup``): consistent while the bot writes."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BackupInfo:
    jobs: int
    schema_version: int
    size_bytes: int


def backup_database(source: str | Path, target: str | Path) -> BackupInfo:
    """Copy the live database at ``source`` to ``target`` with SQLite's online backup: a consistent
    snapshot even while the bot writes (WAL lets it go on meanwhile). The copy is a single
    self-contained file, checked before it replaces ``target``; a failed backup leaves ``target``
    as it was."""
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise FileNotFoundError(f"no database at {str(source)!r} (storage.path)")
    if target.exists() and target.resolve() == source.resolve():
        raise ValueError("the backup must go to another file than the database itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    # mode=rw: never create an empty database where the admin mistyped a path.
    live = sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=30)
    try:
        copy = sqlite3.connect(partial)
        try:
            live.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # no -wal file beside the copy
            (check,) = copy.execute("PRAGMA integrity_check").fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(f"the copy fails its integrity check: {check}")
            (version,) = copy.execute("PRAGMA user_version").fetchone()
            has_jobs = copy.execute("SELECT 1 FROM sqlite_master WHERE name = 'jobs'").fetchone()
            jobs = copy.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] if has_jobs else 0
        finally:
            copy.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        live.close()
    os.replace(partial, target)
    return BackupInfo(jobs=int(jobs), schema_version=int(version), size_bytes=target.stat().st_size)
