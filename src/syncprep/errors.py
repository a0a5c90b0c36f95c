"""One error family per boundary. The CLI turns each into one stderr line and exit code 2."""

from __future__ import annotations


class SyncprepError(Exception):
    """Base of every error syncprep reports to the user instead of a traceback."""


class SourceError(SyncprepError):
    """An input could not be read: missing file, malformed LDIF/CSV, wrong encoding."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(where + message)
        self.source = source
        self.line = line


class ConfigError(SyncprepError):
    """An option or setting is invalid: unknown rule code, bad domain mapping, unreadable @file."""


class WorkspaceError(SyncprepError):
    """The workspace database cannot be used: not a SQLite file, written by a newer syncprep,
    locked by another program, unwritable; or a finding, decision or plan it was asked about."""
