"""The write-back journal: every change apply or undo sends, recorded before it is sent.

A *batch* is one apply (or undo) run against one directory; it has one row in ``batches`` and one
row in ``changes`` per (object, attribute) change. Rows that share ``seq`` are one modify request.

States of a change (the ``state`` column, plus what its message says while it is pending):

``queued``   pending, never sent (the batch stopped, or was killed, before its turn);
``unknown``  pending, handed to the server but no answer recorded (killed or disconnected in
             flight): only reading the object tells whether it was applied (``apply --resume``);
``applied``  the server applied it (or ``--resume`` read the object and found it applied);
``failed``   the server refused it, or ``--resume`` found neither the old nor the new values;
``undone``   an undo batch reverted it.

Rows are only ever added or moved forward (pending -> applied/failed, applied -> undone); the
values, object and batch of a row never change, a batch's note only grows, and nothing is deleted.
Triggers enforce this in the workspace file itself.

Durability: the rows of a whole batch are committed with ``synchronous = FULL`` (the WAL is synced)
before the first request goes out, and the rows of each group of requests are marked ``sending``
in one synced transaction before that group is sent; results are written with ``NORMAL`` (a
later synced commit or checkpoint makes them durable, and a result lost in a power cut leaves
the row pending, which ``--resume`` settles by reading the object).
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import WorkspaceError
from .workspace import Workspace

Value = str | bytes

SENDING = "sending"  # the message of a pending row whose request is going out

TRIGGERS = (
    # What a change row records never changes (any UPDATE naming these columns is refused) ...
    """CREATE TRIGGER IF NOT EXISTS changes_fixed
BEFORE UPDATE OF id, batch_id, seq, dn, attribute, old_values, new_values, finding_ids ON changes
BEGIN SELECT RAISE(ABORT, 'the write-back journal only moves forward'); END""",
    # ... its state only moves forward: pending -> applied | failed, applied -> undone ...
    """CREATE TRIGGER IF NOT EXISTS changes_state_forward BEFORE UPDATE OF state ON changes
WHEN NEW.state IS NOT OLD.state AND NOT (
    (OLD.state = 'pending' AND NEW.state IN ('applied', 'failed')) OR (OLD.state = 'applied' AND NEW.state = 'undone')
)
BEGIN SELECT RAISE(ABORT, 'the write-back journal only moves forward'); END""",
    # ... and the server's answer, once recorded, stays.
    """CREATE TRIGGER IF NOT EXISTS changes_answer_kept BEFORE UPDATE OF server_message ON changes
WHEN OLD.state != 'pending' AND NEW.server_message IS NOT OLD.server_message
BEGIN SELECT RAISE(ABORT, 'the write-back journal only moves forward'); END""",
    # A batch keeps its identity; it is finished once; its note only grows.
    """CREATE TRIGGER IF NOT EXISTS batches_forward_only BEFORE UPDATE ON batches
WHEN NOT (
    NEW.id = OLD.id AND NEW.created_at = OLD.created_at AND NEW.source_url = OLD.source_url
    AND NEW.scan_id IS OLD.scan_id AND NEW.kind = OLD.kind AND NEW.undoes IS OLD.undoes
    AND (OLD.finished_at IS NULL OR NEW.finished_at IS OLD.finished_at)
    AND substr(NEW.note, 1, length(OLD.note)) = OLD.note
)
BEGIN SELECT RAISE(ABORT, 'the write-back journal only moves forward'); END""",
)

# The decisions of an apply batch follow its journal: set-based, when the batch stops or ends
# (the journal is the truth meanwhile; no new batch starts while one is unfinished).
_SYNC_DECISIONS = """UPDATE decisions SET state = c.state
FROM changes AS c, json_each(c.finding_ids) AS j
WHERE c.batch_id = ? AND c.state IN ('applied', 'failed') AND decisions.finding_id = j.value
    AND decisions.batch_id = c.batch_id AND decisions.state = 'pending'"""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# ---------------------------------------------------------------------------------------------
# values


_PLAIN_JSON = re.compile(r"[ !#-\[\]-~]*")  # printable ASCII but '"' and '\\': a JSON string as it is


def dump_values(values: Iterable[Value]) -> str:
    """JSON list; text as strings, binary as {"base64": ...}. ASCII only (lone surrogates survive)."""
    items = list(values)
    texts = [v for v in items if isinstance(v, str) and _PLAIN_JSON.fullmatch(v)]
    if len(texts) == len(items):  # the common case, fast
        return "[" + ", ".join(f'"{v}"' for v in texts) + "]"
    return json.dumps([{"base64": base64.b64encode(v).decode("ascii")} if isinstance(v, bytes) else v for v in items])


def dump_ids(ids: Iterable[int]) -> str:
    return "[" + ", ".join(str(int(i)) for i in ids) + "]"


def load_values(text: str) -> tuple[Value, ...]:
    out: list[Value] = []
    for item in json.loads(text):
        out.append(base64.b64decode(item["base64"]) if isinstance(item, dict) else item)
    return tuple(out)


def show_value(value: Value) -> str:
    """A value for a message or table: binary as base64, invisible characters made visible."""
    if isinstance(value, bytes):
        text = "base64:" + base64.b64encode(value).decode("ascii")
    elif value.isprintable() and value.strip() == value and value:
        text = value
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


# ---------------------------------------------------------------------------------------------
# records


@dataclass(slots=True)
class Change:
    """One journal row: one attribute of one object, the exact values deleted and added.
    (A snapshot: changing it changes nothing in the journal.)"""

    id: int
    batch_id: int
    seq: int
    dn: str
    attribute: str
    old: tuple[Value, ...]
    new: tuple[Value, ...]
    finding_ids: tuple[int, ...]
    state: str
    message: str = ""
    updated_at: str | None = None

    @property
    def shown_state(self) -> str:
        """applied, failed, undone, or for pending rows queued (never sent) / unknown (sent, no answer)."""
        if self.state != "pending":
            return self.state
        return "unknown" if self.message else "queued"

    def to_dict(self) -> dict[str, object]:
        def plain(values: tuple[Value, ...]) -> list[object]:
            return [{"base64": base64.b64encode(v).decode("ascii")} if isinstance(v, bytes) else v for v in values]

        return {
            "batch": self.batch_id,
            "seq": self.seq,
            "dn": self.dn,
            "attribute": self.attribute,
            "old": plain(self.old),
            "new": plain(self.new),
            "findings": list(self.finding_ids),
            "state": self.shown_state,
            "message": "" if self.message == SENDING else self.message,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Batch:
    id: int
    created_at: str
    finished_at: str | None
    source_url: str
    scan_id: int | None
    kind: str
    undoes: int | None
    note: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self, status: str | None = None) -> dict[str, object]:
        return {
            "batch": self.id,
            "kind": self.kind,
            "undoes": self.undoes,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "status": status or ("finished" if self.finished else "interrupted"),
            "source_url": self.source_url,
            "scan": self.scan_id,
            "changes": self.total,
            "counts": dict(self.counts),
            "note": self.note,
        }


@dataclass(frozen=True)
class NewChange:
    """A change to journal: (seq, dn, attribute, old values, new values, finding ids)."""

    seq: int
    dn: str
    attribute: str
    old: tuple[Value, ...]
    new: tuple[Value, ...]
    finding_ids: tuple[int, ...]


@dataclass(frozen=True)
class Outcome:
    """What became of one change: applied or failed, with the server's (or our) message."""

    change: Change
    state: str
    message: str = ""


# ---------------------------------------------------------------------------------------------
# the journal


class Journal:
    """The journal tables of one open workspace."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        with ws.errors():
            for trigger in TRIGGERS:
                ws.conn.execute(trigger)

    @contextlib.contextmanager
    def _commit(self, durable: bool) -> Iterator[sqlite3.Connection]:
        """One transaction; ``durable`` syncs the WAL at commit (and so every commit before it)."""
        conn = self.ws.conn
        with self.ws.errors():
            conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        with self.ws.transaction() as db:
            yield db

    # -- writing

    def create_batch(
        self,
        kind: str,
        source_url: str,
        scan_id: int | None,
        changes: Sequence[NewChange],
        *,
        undoes: int | None = None,
        note: str = "",
    ) -> tuple[int, list[Change]]:
        """Record a batch and all its changes (pending), durably, before anything is sent.
        Returns the batch id and its change rows."""
        stamp = now()
        with self._commit(durable=True) as db, self.ws.errors():
            cur = db.execute(
                "INSERT INTO batches (created_at, source_url, scan_id, kind, undoes, note) VALUES (?, ?, ?, ?, ?, ?)",
                (stamp, source_url, scan_id, kind, undoes, note),
            )
            batch_id = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO changes (batch_id, seq, dn, attribute, old_values, new_values, finding_ids, state,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                [
                    (
                        batch_id,
                        c.seq,
                        c.dn,
                        c.attribute,
                        dump_values(c.old),
                        dump_values(c.new),
                        dump_ids(c.finding_ids),
                        stamp,
                    )
                    for c in changes
                ],
            )
            ids = [row[0] for row in db.execute("SELECT id FROM changes WHERE batch_id = ? ORDER BY id", (batch_id,))]
            if kind == "apply":
                db.execute(
                    "UPDATE decisions SET batch_id = ? WHERE state = 'pending' AND finding_id IN"
                    " (SELECT j.value FROM changes AS c, json_each(c.finding_ids) AS j WHERE c.batch_id = ?)",
                    (batch_id, batch_id),
                )
        rows = [
            Change(i, batch_id, c.seq, c.dn, c.attribute, c.old, c.new, c.finding_ids, "pending", "", stamp)
            for i, c in zip(ids, changes, strict=True)
        ]
        return batch_id, rows

    def record(
        self,
        batch: Batch,
        outcomes: Sequence[Outcome] = (),
        *,
        sending: Sequence[Change] = (),
        unknown: Sequence[tuple[Change, str]] = (),
        reverted: Sequence[Change] = (),
        finish: bool = False,
        note: str | None = None,
        durable: bool = False,
    ) -> None:
        """In one transaction: the outcomes of changes, pending changes about to be sent
        (``sending``) or left without an answer (``unknown``, with why), the changes of an earlier
        batch an undo reverted (``reverted``: now undone, and their decisions), and the batch
        finished or noted. The decisions of an apply batch follow when it stops or finishes."""
        stamp = now()
        with self._commit(durable=durable or bool(sending) or finish) as db, self.ws.errors():
            # Plain 'applied' answers (nearly all) and 'sending' marks in one statement each.
            plain = [o.change.id for o in outcomes if o.state == "applied" and not o.message]
            if plain:
                db.execute(
                    "UPDATE changes SET state = 'applied', server_message = '', updated_at = ?"
                    " WHERE id IN (SELECT value FROM json_each(?)) AND state = 'pending'",
                    (stamp, dump_ids(plain)),
                )
            db.executemany(
                "UPDATE changes SET state = ?, server_message = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
                [(o.state, o.message, stamp, o.change.id) for o in outcomes if o.state != "applied" or o.message],
            )
            if sending:
                db.execute(
                    "UPDATE changes SET server_message = ?, updated_at = ?"
                    " WHERE id IN (SELECT value FROM json_each(?)) AND state = 'pending'",
                    (SENDING, stamp, dump_ids(c.id for c in sending)),
                )
            db.executemany(
                "UPDATE changes SET server_message = ?, updated_at = ? WHERE id = ? AND state = 'pending'",
                [(m, stamp, c.id) for c, m in unknown],
            )
            if batch.kind == "apply" and (finish or note):
                db.execute(_SYNC_DECISIONS, (batch.id,))
            db.executemany(
                "UPDATE changes SET state = 'undone', updated_at = ? WHERE id = ? AND state = 'applied'",
                [(stamp, c.id) for c in reverted],
            )
            db.executemany(
                "UPDATE decisions SET state = 'undone' WHERE finding_id = ? AND state = 'applied' AND batch_id = ?",
                [(fid, c.batch_id) for c in reverted for fid in c.finding_ids],
            )
            if note:
                db.execute(
                    "UPDATE batches SET note = note || ? WHERE id = ?",
                    (("\n" if self._note(db, batch.id) else "") + f"{stamp} {note}", batch.id),
                )
            if finish:
                db.execute("UPDATE batches SET finished_at = ? WHERE id = ? AND finished_at IS NULL", (stamp, batch.id))

    @staticmethod
    def _note(db: sqlite3.Connection, batch_id: int) -> str:
        row = db.execute("SELECT note FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return str(row[0]) if row else ""

    # -- reading

    def batches(self) -> list[Batch]:
        with self.ws.errors():
            rows = self.ws.conn.execute(
                "SELECT id, created_at, finished_at, source_url, scan_id, kind, undoes, note FROM batches ORDER BY id"
            ).fetchall()
            counts: dict[int, dict[str, int]] = {}
            for batch_id, state, message, n in self.ws.conn.execute(
                "SELECT batch_id, state, state = 'pending' AND server_message != '', count(*) FROM changes"
                " GROUP BY batch_id, state, 2"
            ):
                shown = ("unknown" if message else "queued") if state == "pending" else state
                by = counts.setdefault(batch_id, {})
                by[shown] = by.get(shown, 0) + n
        return [
            Batch(i, created, finished, url, scan, kind, undoes, note, counts.get(i, {}))
            for i, created, finished, url, scan, kind, undoes, note in rows
        ]

    def batch(self, batch_id: int) -> Batch:
        for b in self.batches():
            if b.id == batch_id:
                return b
        raise WorkspaceError(f"{self.ws.path}: no batch {batch_id} ('syncprep journal' lists them)")

    def unfinished(self) -> list[Batch]:
        return [b for b in self.batches() if not b.finished]

    def changes(self, batch_id: int, states: Sequence[str] = ()) -> list[Change]:
        sql = (
            "SELECT id, batch_id, seq, dn, attribute, old_values, new_values, finding_ids, state, server_message,"
            " updated_at FROM changes WHERE batch_id = ?"
        )
        params: list[Any] = [batch_id]
        if states:
            sql += f" AND state IN ({', '.join('?' * len(states))})"
            params.extend(states)
        sql += " ORDER BY seq, id"
        with self.ws.errors():
            rows = self.ws.conn.execute(sql, params).fetchall()
        return [
            Change(i, b, seq, dn, attr, load_values(old), load_values(new), tuple(json.loads(fids)), state, msg, at)
            for i, b, seq, dn, attr, old, new, fids, state, msg, at in rows
        ]


# ---------------------------------------------------------------------------------------------
# one writer at a time


@contextlib.contextmanager
def writer_lock(workspace: Path) -> Iterator[None]:
    """Hold the workspace's writer lock (a lock on ``<workspace>-lock``) while applying, resuming
    or undoing, so two runs never send one batch twice. Released by the OS when the process ends,
    however it ends."""
    path = Path(f"{workspace}-lock")
    try:
        handle = open(path, "a+b")  # noqa: SIM115
    except OSError as exc:
        raise WorkspaceError(f"{path}: cannot open the writer lock: {exc.strerror}") from None
    with handle:
        if not _try_lock(handle):
            raise WorkspaceError(
                f"{workspace}: another syncprep apply, undo or resume is writing from this workspace; "
                "wait until it has finished"
            )
        yield


def is_locked(workspace: Path) -> bool:
    """Whether some process holds the writer lock now (its batch is running, not interrupted)."""
    path = Path(f"{workspace}-lock")
    if not path.exists():
        return False
    try:
        with open(path, "a+b") as handle:
            return not _try_lock(handle)
    except OSError:
        return False


def _try_lock(handle: Any) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


__all__ = [
    "SENDING",
    "Batch",
    "Change",
    "Journal",
    "NewChange",
    "Outcome",
    "dump_values",
    "is_locked",
    "load_values",
    "now",
    "show_value",
    "writer_lock",
]
