"""The workspace: one SQLite file with scans, findings, decisions and the write-back journal.

Findings keep their identity across rescans (:func:`finding_key`), so a decision made on a
finding survives the next scan; a finding a rescan no longer sees is marked ``resolved``, never
deleted, and comes back ``open`` with its decision if a later scan sees it again.

The file is versioned with ``PRAGMA user_version`` and marked as syncprep's with
``PRAGMA application_id``; it runs in WAL mode and every write is one transaction. The journal
tables (``batches``, ``changes``) are append-only: triggers refuse to delete from them.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import __version__
from .engine import ScanOptions, ScanResult
from .errors import WorkspaceError
from .model import Action, ErrorType, Finding, Holder, ObjectKind, Safety, Severity

DEFAULT_PATH = "syncprep.db"
SCHEMA_VERSION = 1
# "SYNP": tells a syncprep workspace from any other SQLite file.
APPLICATION_ID = int.from_bytes(b"SYNP", "big")
_SQLITE_HEADER = b"SQLite format 3\x00"

SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per recorded scan.
CREATE TABLE scans (
    id                INTEGER PRIMARY KEY,
    started_at        TEXT NOT NULL,     -- UTC, ISO 8601
    recorded_at       TEXT NOT NULL,
    syncprep_version  TEXT NOT NULL,
    sources           TEXT NOT NULL,     -- JSON list of source names / URLs
    profile           TEXT NOT NULL,
    options           TEXT NOT NULL,     -- JSON object: every ScanOptions field
    seconds           REAL NOT NULL,
    objects_read      INTEGER NOT NULL,
    objects_in_scope  INTEGER NOT NULL,
    skipped           TEXT NOT NULL,     -- JSON object: reason -> count
    findings          INTEGER NOT NULL,  -- findings this scan saw
    new_findings      INTEGER NOT NULL,  -- never seen before
    reopened_findings INTEGER NOT NULL,  -- resolved before, seen again
    resolved_findings INTEGER NOT NULL   -- open before, not seen by this scan
);

-- One row per problem value ever seen; ``key`` is its identity across scans.
CREATE TABLE findings (
    id              INTEGER PRIMARY KEY,
    key             TEXT NOT NULL UNIQUE,
    dn              TEXT NOT NULL,       -- as the latest scan saw it
    dn_norm         TEXT NOT NULL,       -- lower case, no spaces around separators
    cn              TEXT NOT NULL,
    object_class    TEXT NOT NULL,
    attribute       TEXT NOT NULL,       -- AD spelling
    attribute_lower TEXT NOT NULL,
    value           TEXT NOT NULL,
    errors          TEXT NOT NULL,       -- comma-separated error types
    rule            TEXT NOT NULL,
    rules           TEXT NOT NULL,       -- comma-separated rule codes
    severity        TEXT NOT NULL,
    proposed_update TEXT,
    safety          TEXT NOT NULL,
    proposed_action TEXT NOT NULL,
    holders         TEXT NOT NULL,       -- JSON list of {dn, attribute, object_class}
    note            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    first_scan      INTEGER NOT NULL REFERENCES scans(id),
    last_scan       INTEGER NOT NULL REFERENCES scans(id),
    resolved_scan   INTEGER REFERENCES scans(id)
);
CREATE INDEX findings_by_scan ON findings(last_scan, status);

-- Which findings each scan saw (scan history, diffs).
CREATE TABLE scan_findings (
    scan_id    INTEGER NOT NULL REFERENCES scans(id),
    finding_id INTEGER NOT NULL REFERENCES findings(id),
    PRIMARY KEY (scan_id, finding_id)
) WITHOUT ROWID;

-- The current decision on a finding. Planned and applied: EDIT and REMOVE.
CREATE TABLE decisions (
    finding_id   INTEGER PRIMARY KEY REFERENCES findings(id),
    action       TEXT NOT NULL CHECK (action IN ('EDIT', 'REMOVE', 'COMPLETE', 'SKIP')),
    update_value TEXT,
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'failed', 'undone')),
    origin       TEXT NOT NULL,          -- accept / edit / import FILE
    decided_at   TEXT NOT NULL,
    warning      TEXT NOT NULL DEFAULT '',
    batch_id     INTEGER REFERENCES batches(id),  -- the write-back batch that applied it
    CHECK ((action = 'EDIT') = (update_value IS NOT NULL))
);

-- Every decision ever made or cleared (action NULL), oldest first. Append-only.
CREATE TABLE decision_log (
    id           INTEGER PRIMARY KEY,
    finding_id   INTEGER NOT NULL REFERENCES findings(id),
    action       TEXT,
    update_value TEXT,
    origin       TEXT NOT NULL,
    decided_at   TEXT NOT NULL
);

-- Write-back journal: one batch per apply (or undo) run ...
CREATE TABLE batches (
    id          INTEGER PRIMARY KEY,
    created_at  TEXT NOT NULL,
    finished_at TEXT,
    source_url  TEXT NOT NULL,           -- the directory written to
    scan_id     INTEGER REFERENCES scans(id),
    kind        TEXT NOT NULL DEFAULT 'apply' CHECK (kind IN ('apply', 'undo')),
    undoes      INTEGER REFERENCES batches(id),
    note        TEXT NOT NULL DEFAULT ''
);

-- ... and one row per (object, attribute) change, recorded before it is sent.
CREATE TABLE changes (
    id             INTEGER PRIMARY KEY,
    batch_id       INTEGER NOT NULL REFERENCES batches(id),
    seq            INTEGER NOT NULL,     -- order within the batch; one modify per dn
    dn             TEXT NOT NULL,
    attribute      TEXT NOT NULL,
    old_values     TEXT NOT NULL,        -- JSON list; binary values as {"base64": "..."}
    new_values     TEXT NOT NULL,
    finding_ids    TEXT NOT NULL,        -- JSON list
    state          TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'failed', 'undone')),
    server_message TEXT NOT NULL DEFAULT '',
    updated_at     TEXT
);
CREATE INDEX changes_by_batch ON changes(batch_id, seq);

CREATE TRIGGER batches_append_only BEFORE DELETE ON batches
BEGIN SELECT RAISE(ABORT, 'the write-back journal is append-only'); END;
CREATE TRIGGER changes_append_only BEFORE DELETE ON changes
BEGIN SELECT RAISE(ABORT, 'the write-back journal is append-only'); END;
CREATE TRIGGER decision_log_append_only BEFORE DELETE ON decision_log
BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
"""


class DecisionAction(StrEnum):
    """What the admin decided for a finding (the ACTION column).

    ``EDIT`` writes the decision's value, ``REMOVE`` deletes the finding's value; ``COMPLETE``
    (fine as it is / done) and ``SKIP`` (leave it) write nothing.
    """

    EDIT = "EDIT"
    REMOVE = "REMOVE"
    COMPLETE = "COMPLETE"
    SKIP = "SKIP"


WRITING_ACTIONS = frozenset({DecisionAction.EDIT, DecisionAction.REMOVE})


@dataclass(frozen=True, slots=True)
class Decision:
    action: DecisionAction
    update: str | None
    state: str
    origin: str
    decided_at: str
    warning: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "action": self.action.value,
            "update": self.update,
            "state": self.state,
            "origin": self.origin,
            "decided_at": self.decided_at,
            "warning": self.warning,
        }


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding as the workspace keeps it: its id, identity, status and decision."""

    id: int
    key: str
    status: str
    first_scan: int
    last_scan: int
    resolved_scan: int | None
    finding: Finding
    decision: Decision | None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "key": self.key, "status": self.status}
        out.update(self.finding.to_dict())
        out["decision"] = self.decision.to_dict() if self.decision else None
        return out


@dataclass(frozen=True, slots=True)
class ScanRecord:
    id: int
    started_at: str
    recorded_at: str
    sources: tuple[str, ...]
    profile: str
    options: ScanOptions
    seconds: float
    objects_read: int
    objects_in_scope: int
    findings: int
    new_findings: int
    reopened_findings: int
    resolved_findings: int


@dataclass(frozen=True)
class Filters:
    """Which findings a command works on. Empty fields select everything; fields are ANDed,
    the values within one field ORed. Ex) Filters(errors=("duplicate",), kinds=("user",))."""

    errors: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    dn_suffixes: tuple[str, ...] = ()
    safeties: tuple[str, ...] = ()
    ids: tuple[int, ...] = ()
    decided: bool | None = None

    def __post_init__(self) -> None:
        _check_choices("--error", self.errors, [e.value for e in ErrorType])
        _check_choices("--kind", self.kinds, [k.value for k in ObjectKind])
        _check_choices("--safety", self.safeties, [s.value for s in Safety])
        for code in self.rules:
            if not re.fullmatch(r"[A-Za-z0-9]+", code):
                raise WorkspaceError(f"--rule {code!r}: a rule code (U008) or code prefix (U, X00)")

    @property
    def empty(self) -> bool:
        return not (
            self.errors
            or self.rules
            or self.attributes
            or self.kinds
            or self.dn_suffixes
            or self.safeties
            or self.ids
            or self.decided is not None
        )

    def sql(self) -> tuple[str, list[Any]]:
        """A WHERE fragment over ``findings f LEFT JOIN decisions d`` and its parameters."""
        parts: list[str] = []
        params: list[Any] = []

        def any_of(template: str, values: Iterable[Any]) -> None:
            values = list(values)
            if values:
                parts.append("(" + " OR ".join([template] * len(values)) + ")")
                for v in values:
                    params.extend([v] * template.count("?"))

        any_of("instr(',' || f.errors || ',', ',' || ? || ',') > 0", (e.lower() for e in self.errors))
        any_of("(',' || f.rules) LIKE ('%,' || ? || '%')", (r.upper() for r in self.rules))
        any_of("f.attribute_lower = ?", (a.lower() for a in self.attributes))
        any_of("f.object_class = ?", (k.lower() for k in self.kinds))
        any_of("f.safety = ?", (s.lower() for s in self.safeties))
        any_of("f.id = ?", self.ids)
        suffixes = [normalize_dn(s) for s in self.dn_suffixes]
        if suffixes:
            parts.append(
                "(" + " OR ".join(["(f.dn_norm = ? OR substr(f.dn_norm, -length(?)) = ?)"] * len(suffixes)) + ")"
            )
            for s in suffixes:
                params.extend([s, "," + s, "," + s])
        if self.decided is True:
            parts.append("d.finding_id IS NOT NULL")
        elif self.decided is False:
            parts.append("d.finding_id IS NULL")
        return (" AND ".join(parts) or "1"), params


def _check_choices(option: str, given: Sequence[str], allowed: Sequence[str]) -> None:
    for value in given:
        if value.lower() not in allowed:
            raise WorkspaceError(f"{option} {value!r}: choose from {', '.join(allowed)}")


# ---------------------------------------------------------------------------------------------
# identity


_DN_SPECIAL = set(',+"\\<>;=')


# A DN with nothing to unescape: one '=' per RDN, no escapes, quotes or specials.
_PLAIN_PART = r'[^,=+\\"<>;#\x00-\x1f\x7f]+'
_PLAIN_DN = re.compile(f"{_PLAIN_PART}={_PLAIN_PART}(?:,{_PLAIN_PART}={_PLAIN_PART})*")


@lru_cache(maxsize=1 << 16)
def normalize_dn(dn: str) -> str:
    """A DN's comparison form: lower case, no spaces around separators, escapes made canonical.

    AD compares DNs case-insensitively and ignores spaces around ',' '+' '='; escapes can be
    written several ways (``\\,`` or ``\\2C``). Ex) "CN=Smith\\2C Bob , OU=Staff" ->
    "cn=smith\\, bob,ou=staff".
    """
    if _PLAIN_DN.fullmatch(dn):
        if " ," in dn or ", " in dn or " =" in dn or "= " in dn or dn[:1] == " " or dn[-1:] == " ":
            dn = ",".join("=".join(p.strip(" ") for p in rdn.split("=")) for rdn in dn.split(","))
        return dn.lower()
    try:
        rdns = _parse_dn(dn)
    except ValueError:
        return re.sub(r"\s*([,=+])\s*", r"\1", dn.strip().lower())
    return ",".join("+".join(f"{t}={_escape_dn_value(v)}" for t, v in rdn) for rdn in rdns)


def _parse_dn(dn: str) -> list[list[tuple[str, str]]]:
    rdns: list[list[tuple[str, str]]] = []
    avas: list[tuple[str, str]] = []
    i, n = 0, len(dn)
    if not dn.strip():
        return []
    while True:
        eq = i
        while eq < n and dn[eq] != "=":
            if dn[eq] in ",+\\":
                raise ValueError(dn)
            eq += 1
        if eq >= n:
            raise ValueError(dn)
        attr = dn[i:eq].strip().lower()
        i = eq + 1
        while i < n and dn[i] == " ":
            i += 1
        raw = bytearray()
        trailing_spaces = 0  # unescaped spaces at the end, dropped when the value ends
        quoted = i < n and dn[i] == '"'
        if quoted:
            i += 1
            while i < n and dn[i] != '"':
                if dn[i] == "\\" and i + 1 < n:
                    i += 1
                raw += dn[i].encode("utf-8", "surrogateescape")
                i += 1
            if i >= n:
                raise ValueError(dn)
            i += 1
            while i < n and dn[i] == " ":
                i += 1
        else:
            while i < n and dn[i] not in ",+;":
                ch = dn[i]
                if ch == "\\":
                    if i + 1 >= n:
                        raise ValueError(dn)
                    pair = dn[i + 1 : i + 3]
                    if re.fullmatch(r"[0-9A-Fa-f]{2}", pair):
                        raw.append(int(pair, 16))
                        i += 3
                    else:
                        raw += dn[i + 1].encode("utf-8", "surrogateescape")
                        i += 2
                    trailing_spaces = 0
                    continue
                if ch == " ":
                    trailing_spaces += 1
                else:
                    trailing_spaces = 0
                raw += ch.encode("utf-8", "surrogateescape")
                i += 1
            if trailing_spaces:
                del raw[-trailing_spaces:]
        value = raw.decode("utf-8", "surrogateescape").lower()
        if not attr:
            raise ValueError(dn)
        avas.append((attr, value))
        if i >= n:
            rdns.append(avas)
            return rdns
        sep = dn[i]
        i += 1
        if sep in ",;":
            rdns.append(avas)
            avas = []
        while i < n and dn[i] == " ":
            i += 1


def _escape_dn_value(value: str) -> str:
    out = []
    for k, ch in enumerate(value):
        if ch in _DN_SPECIAL or (ch == "#" and k == 0) or (ch == " " and (k == 0 or k == len(value) - 1)):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out)


def finding_key(dn: str, attribute: str, value: str, errors: Iterable[str]) -> str:
    """A finding's identity across scans: the same object (DN compared as AD does), attribute
    (any case), exact value and set of error types give the same key."""
    # The value goes last: it is the only part that may hold the NUL separator.
    text = "\x00".join((normalize_dn(dn), attribute.lower(), ",".join(sorted(set(errors))), value))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def value_key(dn: str, attribute: str, value: str) -> tuple[str, str, str]:
    """How an imported row finds its finding: (normalised DN, attribute, exact value)."""
    return normalize_dn(dn), attribute.lower(), value


# ---------------------------------------------------------------------------------------------
# storage of text that may hold lone surrogates (bytes a source could not decode)


def _store(text: str | None) -> str | bytes | None:
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")
    return text


def _load(value: str | bytes | None) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _options_json(options: ScanOptions) -> str:
    return json.dumps({f.name: getattr(options, f.name) for f in fields(options)}, sort_keys=True)


def options_from_json(text: str) -> ScanOptions:
    data = json.loads(text)
    known = {f.name: f for f in fields(ScanOptions)}
    kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
    return ScanOptions(**kwargs)


# ---------------------------------------------------------------------------------------------
# the workspace


@dataclass
class RecordedScan:
    """What recording a scan changed."""

    scan_id: int
    findings: int
    new: int
    reopened: int
    resolved: int
    seconds: float


@dataclass
class Workspace:
    """An open workspace file. Use :func:`open_workspace`; close it (or use ``with``)."""

    path: Path
    conn: sqlite3.Connection
    _in_transaction: bool = field(default=False, repr=False)

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    # -- transactions and errors

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything inside is committed together or not at all."""
        if self._in_transaction:
            yield self.conn
            return
        with self.errors():
            self.conn.execute("BEGIN IMMEDIATE")
        self._in_transaction = True
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            with self.errors():
                self.conn.execute("COMMIT")
        finally:
            self._in_transaction = False

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn SQLite's errors into one-line WorkspaceErrors that name the file."""
        try:
            yield
        except sqlite3.Error as exc:
            raise _workspace_error(self.path, exc) from None

    # -- scans

    def record_scan(self, result: ScanResult, *, started_at: str | None = None) -> RecordedScan:
        """Record a scan: its settings and counts, and every finding under its stable identity.

        Findings seen before keep their id (and decision) and are refreshed; findings the scan
        does not see any more become ``resolved``. One transaction.
        """
        began = time.perf_counter()
        started = started_at or datetime.fromtimestamp(time.time() - result.seconds, UTC).isoformat(timespec="seconds")
        rows = []
        keys = []
        for f in result.findings:
            errors = ",".join(f.errors)  # StrEnum members are their values
            dn = f.dn
            keys.append(finding_key(dn, f.attribute, f.value, f.errors))
            rows.append(
                (
                    _store(dn),
                    _store(normalize_dn(dn)),
                    _store(f.cn),
                    f.object_class,
                    f.attribute,
                    f.attribute.lower(),
                    _store(f.value),
                    errors,
                    f.rule,
                    ",".join(f.rules),
                    f.severity,
                    _store(f.update),
                    f.safety,
                    f.action,
                    json.dumps([h.to_dict() for h in f.holders]) if f.holders else "[]",
                    f.note,
                )
            )
        if len(set(keys)) != len(keys):
            # Two findings with one identity would share a decision: keep the first of each.
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            keep = sorted(first.values())
            keys, rows = [keys[i] for i in keep], [rows[i] for i in keep]
        with self.errors(), self.transaction() as db:
            cur = db.execute(
                "INSERT INTO scans (started_at, recorded_at, syncprep_version, sources, profile, options, seconds,"
                " objects_read, objects_in_scope, skipped, findings, new_findings, reopened_findings,"
                " resolved_findings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0)",
                (
                    started,
                    _now(),
                    __version__,
                    json.dumps(list(result.sources)),
                    result.options.profile,
                    _options_json(result.options),
                    result.seconds,
                    result.objects_read,
                    result.objects_in_scope,
                    json.dumps(dict(sorted(result.skipped.items()))),
                    len(rows),
                ),
            )
            scan_id = int(cur.lastrowid or 0)
            existing = dict(db.execute("SELECT key, id FROM findings").fetchall())
            statuses = dict(db.execute("SELECT id, status FROM findings WHERE status = 'resolved'").fetchall())
            new_rows = [(k, *r, scan_id, scan_id) for k, r in zip(keys, rows, strict=True) if k not in existing]
            old_rows = [(*r, scan_id, existing[k]) for k, r in zip(keys, rows, strict=True) if k in existing]
            reopened = sum(1 for k in keys if k in existing and existing[k] in statuses)
            db.executemany(
                "INSERT INTO findings (key, dn, dn_norm, cn, object_class, attribute, attribute_lower, value, errors,"
                " rule, rules, severity, proposed_update, safety, proposed_action, holders, note, status, first_scan,"
                " last_scan) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                new_rows,
            )
            db.executemany(
                "UPDATE findings SET dn = ?, dn_norm = ?, cn = ?, object_class = ?, attribute = ?,"
                " attribute_lower = ?, value = ?, errors = ?, rule = ?, rules = ?, severity = ?, proposed_update = ?,"
                " safety = ?, proposed_action = ?, holders = ?, note = ?, status = 'open', last_scan = ?,"
                " resolved_scan = NULL WHERE id = ?",
                old_rows,
            )
            resolved = db.execute(
                "UPDATE findings SET status = 'resolved', resolved_scan = ? WHERE status = 'open' AND last_scan != ?",
                (scan_id, scan_id),
            ).rowcount
            db.execute(
                "INSERT INTO scan_findings (scan_id, finding_id) SELECT ?, id FROM findings WHERE last_scan = ?",
                (scan_id, scan_id),
            )
            db.execute(
                "UPDATE scans SET new_findings = ?, reopened_findings = ?, resolved_findings = ? WHERE id = ?",
                (len(new_rows), reopened, resolved, scan_id),
            )
        return RecordedScan(scan_id, len(rows), len(new_rows), reopened, resolved, time.perf_counter() - began)

    def latest_scan(self) -> ScanRecord | None:
        with self.errors():
            row = self.conn.execute("SELECT * FROM scans ORDER BY id DESC LIMIT 1").fetchone()
        return _scan_record(row) if row else None

    def scan(self, scan_id: int) -> ScanRecord:
        with self.errors():
            row = self.conn.execute("SELECT * FROM scans WHERE id = ?", (scan_id,)).fetchone()
        if row is None:
            raise WorkspaceError(f"{self.path}: no scan {scan_id}")
        return _scan_record(row)

    def require_scan(self) -> ScanRecord:
        latest = self.latest_scan()
        if latest is None:
            raise WorkspaceError(f"{self.path}: no scan recorded yet: run 'syncprep scan SOURCE --db {self.path}'")
        return latest

    # -- findings

    def findings(
        self,
        filters: Filters | None = None,
        *,
        status: str = "open",
        scan_id: int | None = None,
        limit: int | None = None,
    ) -> list[StoredFinding]:
        """Findings with their decisions, in DN order. ``status``: open (those the latest scan
        saw, or ``scan_id``), resolved, or all."""
        where, params = (filters or Filters()).sql()
        if status == "open":
            scan = scan_id if scan_id is not None else self.require_scan().id
            where += " AND f.status = 'open' AND f.last_scan = ?"
            params.append(scan)
        elif status == "resolved":
            where += " AND f.status = 'resolved'"
        elif status != "all":
            raise WorkspaceError(f"unknown status {status!r}: open, resolved or all")
        sql = f"{_SELECT} WHERE {where} ORDER BY f.dn_norm, f.attribute_lower, f.value, f.id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self.errors():
            return [_stored(r) for r in self.conn.execute(sql, params)]

    def count(self, filters: Filters | None = None, *, status: str = "open") -> int:
        where, params = (filters or Filters()).sql()
        if status == "open":
            where += " AND f.status = 'open' AND f.last_scan = ?"
            params.append(self.require_scan().id)
        elif status == "resolved":
            where += " AND f.status = 'resolved'"
        with self.errors():
            row = self.conn.execute(
                f"SELECT count(*) FROM findings f LEFT JOIN decisions d ON d.finding_id = f.id WHERE {where}", params
            ).fetchone()
        return int(row[0])

    def finding(self, finding_id: int) -> StoredFinding:
        with self.errors():
            row = self.conn.execute(f"{_SELECT} WHERE f.id = ?", (finding_id,)).fetchone()
        if row is None:
            raise WorkspaceError(f"{self.path}: no finding {finding_id} ('syncprep findings' lists them)")
        return _stored(row)

    def by_value(self) -> dict[tuple[str, str, str], list[StoredFinding]]:
        """Every finding by (normalised DN, lower-case attribute, value), open ones first."""
        out: dict[tuple[str, str, str], list[StoredFinding]] = {}
        with self.errors():
            rows = self.conn.execute(f"{_SELECT} ORDER BY f.status = 'open' DESC, f.last_scan DESC, f.id").fetchall()
        for row in rows:
            sf = _stored(row)
            out.setdefault(value_key(sf.finding.dn, sf.finding.attribute, sf.finding.value), []).append(sf)
        return out

    # -- decisions

    def set_decisions(
        self, decisions: Iterable[tuple[int, DecisionAction | None, str | None, str]], origin: str
    ) -> int:
        """Set (or clear, with action None) decisions: (finding id, action, update, warning).
        Logged in ``decision_log``. Joins the caller's transaction, if any."""
        now = _now()
        sets = []
        clears = []
        log = []
        for finding_id, action, update, warning in decisions:
            if action is None:
                clears.append((finding_id,))
            else:
                if (action == DecisionAction.EDIT) != (update is not None):
                    raise WorkspaceError(f"finding {finding_id}: EDIT needs a value, other actions none")
                sets.append((finding_id, action.value, _store(update), origin, now, warning))
            log.append((finding_id, action.value if action else None, _store(update), origin, now))
        with self.errors(), self.transaction() as db:
            db.executemany("DELETE FROM decisions WHERE finding_id = ?", clears)
            db.executemany(
                "INSERT INTO decisions (finding_id, action, update_value, state, origin, decided_at, warning)"
                " VALUES (?, ?, ?, 'pending', ?, ?, ?)"
                " ON CONFLICT(finding_id) DO UPDATE SET action = excluded.action,"
                " update_value = excluded.update_value, state = 'pending', origin = excluded.origin,"
                " decided_at = excluded.decided_at, warning = excluded.warning, batch_id = NULL",
                sets,
            )
            db.executemany(
                "INSERT INTO decision_log (finding_id, action, update_value, origin, decided_at)"
                " VALUES (?, ?, ?, ?, ?)",
                log,
            )
        return len(log)


_SELECT = (
    "SELECT f.id, f.key, f.status, f.first_scan, f.last_scan, f.resolved_scan, f.dn, f.cn, f.object_class,"
    " f.attribute, f.value, f.errors, f.rule, f.rules, f.severity, f.proposed_update, f.safety, f.proposed_action,"
    " f.holders, f.note, d.action, d.update_value, d.state, d.origin, d.decided_at, d.warning"
    " FROM findings f LEFT JOIN decisions d ON d.finding_id = f.id"
)


_ERRORS = {e.value: e for e in ErrorType}
_KINDS = {k.value: k for k in ObjectKind}
_SEVERITIES = {s.value: s for s in Severity}
_SAFETIES = {s.value: s for s in Safety}
_ACTIONS = {a.value: a for a in Action}
_DECISIONS = {a.value: a for a in DecisionAction}


def _stored(row: Sequence[Any]) -> StoredFinding:
    (fid, key, status, first, last, resolved, dn, cn, kind, attr, value, errors, rule, rules, severity, update,
     safety, action, holders, note, d_action, d_update, d_state, d_origin, d_at, d_warning) = row  # fmt: skip
    finding = Finding(
        dn=_load(dn) or "",
        cn=_load(cn) or "",
        object_class=_KINDS[kind],
        attribute=attr,
        value=_load(value) or "",
        errors=tuple(_ERRORS[e] for e in errors.split(",") if e),
        rule=rule,
        rules=tuple(r for r in rules.split(",") if r),
        severity=_SEVERITIES[severity],
        update=_load(update),
        safety=_SAFETIES[safety],
        action=_ACTIONS[action],
        holders=()
        if holders == "[]"
        else tuple(Holder(h["dn"], h["attribute"], _KINDS[h["object_class"]]) for h in json.loads(holders)),
        note=note,
    )
    decision = (
        Decision(_DECISIONS[d_action], _load(d_update), d_state, d_origin, d_at, d_warning or "") if d_action else None
    )
    return StoredFinding(fid, key, status, first, last, resolved, finding, decision)


def _scan_record(row: Sequence[Any]) -> ScanRecord:
    (sid, started, recorded, _version, sources, profile, options, seconds, read, in_scope, _skipped, count, new,
     reopened, resolved) = row  # fmt: skip
    return ScanRecord(
        id=sid,
        started_at=started,
        recorded_at=recorded,
        sources=tuple(json.loads(sources)),
        profile=profile,
        options=options_from_json(options),
        seconds=seconds,
        objects_read=read,
        objects_in_scope=in_scope,
        findings=count,
        new_findings=new,
        reopened_findings=reopened,
        resolved_findings=resolved,
    )


# ---------------------------------------------------------------------------------------------
# opening


def open_workspace(path: str | Path = DEFAULT_PATH, *, create: bool = False, timeout: float = 5.0) -> Workspace:
    """Open a workspace file (``create``: make it when missing).

    Raises WorkspaceError, with one line naming the file, when it is missing (and not to be
    created), not a SQLite file, another program's database, written by a newer syncprep,
    locked (for longer than ``timeout`` seconds), or cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise WorkspaceError(f"{path}: is a directory, not a workspace file")
    exists = path.exists()
    if not exists and not create:
        raise WorkspaceError(f"{path}: no workspace here: record a scan first with 'syncprep scan SOURCE --db {path}'")
    if exists:
        try:
            with open(path, "rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
        except OSError as exc:
            raise WorkspaceError(f"{path}: cannot read the workspace: {exc.strerror}") from None
        if header and header != _SQLITE_HEADER:
            raise WorkspaceError(f"{path}: not a syncprep workspace (not a SQLite database)")
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise _workspace_error(path, exc) from None
    ws = Workspace(path, conn)
    try:
        with ws.errors():
            _prepare(ws, create)
    except BaseException:
        conn.close()
        raise
    return ws


def _prepare(ws: Workspace, create: bool) -> None:
    conn = ws.conn
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: random key inserts stay in memory
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if version == 0 and tables == 0:
        if not create:
            raise WorkspaceError(f"{ws.path}: empty file, not a workspace yet: record a scan with --db {ws.path}")
        conn.execute("PRAGMA journal_mode = WAL")
        with ws.transaction() as db:
            for statement in _statements(SCHEMA):
                db.execute(statement)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("created_at", _now()), ("created_by", f"syncprep {__version__}")],
            )
        return
    if app != APPLICATION_ID:
        raise WorkspaceError(f"{ws.path}: not a syncprep workspace (a SQLite database of another program)")
    if version > SCHEMA_VERSION:
        raise WorkspaceError(
            f"{ws.path}: written by a newer syncprep (workspace schema {version}; this syncprep "
            f"{__version__} reads up to {SCHEMA_VERSION}): upgrade syncprep"
        )
    if version < 1:
        raise WorkspaceError(f"{ws.path}: unknown workspace schema {version}")
    conn.execute("PRAGMA synchronous = NORMAL")


def _statements(script: str) -> list[str]:
    """Split the schema into statements (triggers hold ';' inside BEGIN ... END)."""
    out: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out


def _workspace_error(path: Path, exc: sqlite3.Error) -> WorkspaceError:
    text = str(exc)
    low = text.lower()
    if "locked" in low or "busy" in low:
        return WorkspaceError(f"{path}: the workspace is locked by another program; try again when it has finished")
    if "not a database" in low or "malformed" in low:
        return WorkspaceError(f"{path}: not a syncprep workspace (not a SQLite database, or damaged)")
    if "readonly" in low or "read-only" in low:
        return WorkspaceError(f"{path}: cannot write the workspace (read-only file or folder)")
    if "unable to open" in low:
        return WorkspaceError(f"{path}: cannot open the workspace (missing folder or no permission)")
    if "full" in low:
        return WorkspaceError(f"{path}: cannot write the workspace: the disk is full")
    return WorkspaceError(f"{path}: workspace error: {text}")


__all__ = [
    "APPLICATION_ID",
    "DEFAULT_PATH",
    "SCHEMA_VERSION",
    "WRITING_ACTIONS",
    "Decision",
    "DecisionAction",
    "Filters",
    "RecordedScan",
    "ScanRecord",
    "StoredFinding",
    "Workspace",
    "finding_key",
    "normalize_dn",
    "open_workspace",
    "options_from_json",
    "value_key",
]
