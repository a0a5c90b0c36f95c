"""Writing back: apply the plan, resume an interrupted batch, undo a batch; all of it journaled.

Every object's change is one modify request that deletes the exact old values and adds the new
ones, so the server applies it atomically and refuses it (``noSuchAttribute``) when a value
changed since the scan. Nothing is replaced, and nothing is touched that no decision names.

The journal (:mod:`syncprep.journal`) holds every change before it is sent. A batch is recorded
whole, durably, before the first request; each group of requests is marked ``sending`` (durably)
before it goes out; results are recorded per group. A batch that stops (the connection is lost,
the process is killed) is finished by :func:`resume`, which reads each object whose change has
no recorded answer and compares its values with the journal:

- old values gone, new values there: the change reached the server: ``applied``, never resent;
- old values there, new values absent (and for an attribute holding one value, nothing else
  there): it did not: it is sent now, with the same guard;
- anything else: somebody else changed the object: ``failed`` as a conflict, left as it is.

An undo is a batch of its own (``kind = undo``) that reads each object first and refuses where
the values are no longer what the batch wrote, then sends the inverse modify (delete the new
values, add the old ones) under the same guard.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, NoReturn

from .errors import ConfigError, SourceError, SyncprepError, WorkspaceError
from .journal import Batch, Change, Journal, NewChange, Outcome, show_value
from .plan import MULTI_VALUED, Plan
from .sources.ldapclient import (
    Endpoint,
    LdapSettings,
    ModifyChange,
    Refusal,
    WriteClient,
    describe,
    encode_value,
    explain,
    is_ldap_url,
    open_client,
    parse_url,
)
from .workspace import ScanRecord, Workspace

MAX_CHANGES = 500  # Entra Connect's own accidental-deletion threshold
WINDOW = 64  # modify requests outstanding at once on one connection (python-ldap)
CHUNKS = (32, 64, 128, 256, 512)  # requests per journal commit: small first, then larger
READ_CHUNK = 256

Progress = Callable[[int], None]


# ---------------------------------------------------------------------------------------------
# counting and checking


def value_changes(changes: Sequence[tuple[Sequence[object], Sequence[object]]]) -> int:
    """What --max-changes counts: changed values. An edited value counts once (its delete and
    its add), a removed or added value once. Ex) one EDIT and one REMOVE on one object -> 2."""
    return sum(max(len(old), len(new)) for old, new in changes)


def plan_value_changes(plan: Plan) -> int:
    return value_changes([(c.delete, c.add) for o in plan.objects for c in o.changes])


def journal_changes(plan: Plan) -> list[NewChange]:
    """The plan as journal rows: one per (object, attribute), ``seq`` numbering the objects."""
    return [
        NewChange(seq, obj.dn, c.attribute, tuple(c.delete), tuple(c.add), tuple(c.finding_ids))
        for seq, obj in enumerate(plan.objects, start=1)
        for c in obj.changes
    ]


def check_threshold(values: int, max_changes: int, what: str = "the batch") -> None:
    if values > max_changes:
        raise ConfigError(
            f"{what} changes {values} values, more than --max-changes {max_changes} "
            f"(a guard against mass changes by mistake): check the plan, then pass --max-changes {values}"
        )


def writable_endpoint(url: str) -> Endpoint:
    endpoint = parse_url(url)
    if endpoint.global_catalog:
        raise ConfigError(
            f"{endpoint.url}: the global catalog is a read-only copy; write to a domain controller "
            "with ldaps:// (or ldap:// with --start-tls)"
        )
    return endpoint


def _host(url: str) -> str | None:
    return parse_url(url).host.lower().rstrip(".") if is_ldap_url(url) else None


def _addresses(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except (OSError, UnicodeError):
        return set()


def same_server(host: str, others: set[str]) -> bool:
    """Whether ``host`` names one of ``others``: the same name, or a name for the same address
    (localhost and 127.0.0.1, dc1 and dc1.contoso.com)."""
    host = host.lower().rstrip(".")
    if host in others:
        return True
    mine = _addresses(host)
    return bool(mine) and any(mine & _addresses(other) for other in others)


def check_scan_target(scan: ScanRecord, endpoint: Endpoint, force: bool) -> str | None:
    """Refuse to write a plan to another directory than the one scanned (unless forced); a
    warning when the scan read files, which cannot be matched to a server."""
    hosts = {h for h in (_host(s) for s in scan.sources) if h}
    if hosts and not same_server(endpoint.host, hosts):
        if not force:
            raise ConfigError(
                f"the plan comes from scan {scan.id} of {', '.join(scan.sources)}, not {endpoint.url}: "
                "pass --force to write it there (another domain controller of the same domain, say)"
            )
        return f"--force: writing the plan of scan {scan.id} ({', '.join(scan.sources)}) to {endpoint.url}"
    if not hosts:
        return (
            f"scan {scan.id} read {', '.join(scan.sources)}, not a server: syncprep cannot check that it is "
            f"{endpoint.url}; every change is still refused where the value differs"
        )
    return None


def check_batch_target(batch: Batch, endpoint: Endpoint, force: bool) -> None:
    host = _host(batch.source_url)
    if not force and (host is None or not same_server(endpoint.host, {host})):
        raise ConfigError(
            f"batch {batch.id} was written to {batch.source_url}, not {endpoint.url}: give that URL "
            "(or pass --force for another domain controller of the same domain)"
        )


# ---------------------------------------------------------------------------------------------
# connecting


def connect(endpoint: Endpoint, settings: LdapSettings) -> WriteClient:
    """A connected client that may write; connection problems as one SourceError line."""
    client = open_client(endpoint, settings)
    client.writable = True  # type: ignore[attr-defined]
    try:
        client.connect()
    except SyncprepError:
        client.close()
        raise
    except Exception as exc:
        client.close()
        error = describe(client, exc, endpoint, settings)
        if error is None:
            raise
        raise error from None
    return client  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# reasons


_REASONS = {
    16: "the value changed since {when}",  # noSuchAttribute: the exact old value is not there
    20: "the new value is already there",  # attributeOrValueExists
    50: "insufficient rights",
    32: "the object is gone (moved, renamed or deleted)",
    10: "the object is in another domain (referral)",
    19: "constraint violation",
    21: "constraint violation",  # invalidAttributeSyntax
    17: "constraint violation",  # undefinedAttributeType
    18: "constraint violation",  # inappropriateMatching
    53: "constraint violation",  # unwillingToPerform
    64: "constraint violation",  # namingViolation
    65: "constraint violation",  # objectClassViolation
    67: "constraint violation",  # notAllowedOnRDN
    51: "server busy",
    52: "server unavailable",
}


# RFC 4511 names, whatever the client library calls them ("No such attribute", "noSuchAttribute").
_RESULT_NAMES = {
    10: "referral",
    16: "noSuchAttribute",
    17: "undefinedAttributeType",
    18: "inappropriateMatching",
    19: "constraintViolation",
    20: "attributeOrValueExists",
    21: "invalidAttributeSyntax",
    32: "noSuchObject",
    34: "invalidDNSyntax",
    50: "insufficientAccessRights",
    51: "busy",
    52: "unavailable",
    53: "unwillingToPerform",
    64: "namingViolation",
    65: "objectClassViolation",
    67: "notAllowedOnRDN",
    80: "other",
}


def reason_of(refusal: Refusal, when: str) -> str:
    return _REASONS.get(refusal.code or -1, refusal.name).format(when=when)


def refusal_message(refusal: Refusal, when: str) -> str:
    """Ex) 'the value changed since the scan: noSuchAttribute (16): 00002085: AtrErr: ...'."""
    text = f"{reason_of(refusal, when)}: {_RESULT_NAMES.get(refusal.code or -1, refusal.name)}"
    if refusal.code is not None:
        text += f" ({refusal.code})"
    return text + (f": {refusal.message[:400]}" if refusal.message else "")


def reason_from_message(message: str) -> str:
    """The reason part of a recorded message (what the summary counts)."""
    return message.split(": ", 1)[0] if message else "refused"


# ---------------------------------------------------------------------------------------------
# what happened


@dataclass
class Report:
    """The outcome of one run over one batch."""

    batch: int
    kind: str
    source_url: str
    applied: list[Change] = field(default_factory=list)
    confirmed: list[Change] = field(default_factory=list)  # found applied when read back
    failed: list[Outcome] = field(default_factory=list)
    unsettled: list[tuple[Change, str]] = field(default_factory=list)  # could not be read
    stopped: str | None = None

    def reasons(self) -> Counter[str]:
        return Counter(reason_from_message(o.message) for o in self.failed)

    def summary(self) -> str:
        done = self.applied + self.confirmed
        verb = "reverted" if self.kind == "undo" else "applied"
        objects = len({(c.dn.lower()) for c in done})
        text = f"batch {self.batch}: {verb} {value_changes([(c.old, c.new) for c in done])} value change(s)"
        text += f" on {objects} object(s)"
        if self.confirmed:
            text += f" ({len(self.confirmed)} found already applied when read back)"
        if self.failed:
            values = value_changes([(o.change.old, o.change.new) for o in self.failed])
            detail = ", ".join(f"{n} {r}" for r, n in self.reasons().most_common())
            text += f"; refused {values}: {detail}"
        if self.unsettled:
            text += f"; {len(self.unsettled)} not settled (the object could not be read)"
        return text


class Stopped(SourceError):
    """The batch stopped before its end (connection lost, interrupted); ``report`` has what happened."""

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report


# ---------------------------------------------------------------------------------------------
# the writer


@dataclass
class _Group:
    """The rows of one modify request (one object)."""

    seq: int
    dn: str
    changes: list[Change]


def _groups(changes: Sequence[Change]) -> list[_Group]:
    out = []
    for seq, rows in groupby(sorted(changes, key=lambda c: (c.seq, c.id)), key=lambda c: c.seq):
        items = list(rows)
        out.append(_Group(seq, items[0].dn, items))
    return out


def _chunks(groups: Sequence[_Group]) -> Iterator[Sequence[_Group]]:
    i = 0
    step = 0
    while i < len(groups):
        size = CHUNKS[min(step, len(CHUNKS) - 1)]
        yield groups[i : i + size]
        i += size
        step += 1


class Writer:
    """Sends the changes of one batch and records what became of them."""

    def __init__(
        self,
        journal: Journal,
        client: WriteClient,
        batch: Batch,
        settings: LdapSettings,
        endpoint: Endpoint,
        *,
        window: int = WINDOW,
        progress: Progress | None = None,
    ) -> None:
        self.journal = journal
        self.client = client
        self.batch = batch
        self.settings = settings
        self.endpoint = endpoint
        self.window = window
        self.progress = progress or (lambda _n: None)
        self.report = Report(batch.id, batch.kind, batch.source_url)
        self.when = "the scan" if batch.kind == "apply" else f"batch {batch.undoes} wrote it"
        # An undo row reverts the row of the undone batch with the same object and attribute.
        self.originals: dict[tuple[str, str], Change] = {}
        if batch.kind == "undo" and batch.undoes is not None:
            self.originals = {(c.dn, c.attribute): c for c in journal.changes(batch.undoes, ("applied",))}

    def record(self, outcomes: Sequence[Outcome], **kwargs: Any) -> None:
        reverted = [
            self.originals[(o.change.dn, o.change.attribute)]
            for o in outcomes
            if o.state == "applied" and (o.change.dn, o.change.attribute) in self.originals
        ]
        self.journal.record(self.batch, outcomes, reverted=reverted, **kwargs)

    # -- sending

    def send(self, groups: Sequence[_Group], *, finish: bool = True) -> Report:
        """Send each group as one modify request; journal before, record after. Stops the whole
        batch (raising Stopped) when the connection is lost or the run is interrupted.

        The requests go out in chunks. Before the first request of a chunk is handed to the
        client, one synced commit marks the whole chunk 'sending' and records the answers received
        so far; the requests of the previous chunk still in flight meanwhile keep the server busy.
        """
        unrecorded: list[Outcome] = []
        answered: set[int] = set()

        def requests() -> Iterator[tuple[str, list[ModifyChange]]]:
            for chunk in _chunks(groups):
                taken = unrecorded[:]
                del unrecorded[:]
                self.record(taken, sending=[c for g in chunk for c in g.changes])
                self.progress(len(taken))
                for g in chunk:
                    yield g.dn, [(c.attribute, c.old, c.new) for c in g.changes]

        try:
            for index, exc in self.client.modify_many(requests(), self.window):
                answered.add(index)
                group = groups[index]
                if exc is None:
                    unrecorded.extend(Outcome(c, "applied") for c in group.changes)
                    self.report.applied.extend(group.changes)
                    continue
                refusal = self.client.refusal(exc)
                if refusal is None:
                    raise exc
                failed = [Outcome(c, "failed", refusal_message(refusal, self.when)) for c in group.changes]
                unrecorded.extend(failed)
                self.report.failed.extend(failed)
        except BaseException as exc:
            self._stop(exc, groups, answered, unrecorded)
        self.record(unrecorded, finish=finish and not self.report.unsettled)
        return self.report

    def _stop(
        self, exc: BaseException, groups: Sequence[_Group], answered: set[int], outcomes: list[Outcome]
    ) -> NoReturn:
        """Record what is known, mark what is not, and stop the batch."""
        sent = getattr(self.client, "sent", len(groups))
        classified = self.client.classify(exc) if isinstance(exc, Exception) else None
        if isinstance(exc, KeyboardInterrupt):
            why = "interrupted"
        elif classified is not None:
            why = explain(classified[0], classified[1], self.endpoint, self.settings)
        else:
            why = f"stopped by an internal error ({type(exc).__name__}: {exc})"
        unknown: list[tuple[Change, str]] = []
        queued: list[tuple[Change, str]] = []
        for index, group in enumerate(groups):
            if index in answered:
                continue
            if index < sent:
                message = f"no answer ({why[:200]}): 'syncprep apply --resume' reads the object to settle it"
                unknown.extend((c, message) for c in group.changes)
            else:
                queued.extend((c, "") for c in group.changes)  # not handed to the server: queued
        self.record(outcomes, unknown=unknown + queued, note=f"stopped: {why[:300]}", durable=True)
        self.report.stopped = why
        self.report.unsettled.extend(unknown)
        if isinstance(exc, KeyboardInterrupt) or classified is None:
            raise exc
        raise Stopped(
            f"{why}; stopped after {len(self.report.applied) + len(self.report.failed)} of the batch's changes: "
            f"'syncprep apply --resume' settles the {len(unknown)} in flight and sends the rest",
            self.report,
        ) from None

    # -- reading back

    def settle(self, groups: Sequence[_Group]) -> list[_Group]:
        """Read each object and compare with the journal: record the groups already applied and the
        conflicts; return the groups still to send."""
        to_send: list[_Group] = []
        for start in range(0, len(groups), READ_CHUNK):
            chunk = groups[start : start + READ_CHUNK]
            outcomes: list[Outcome] = []
            unsettled: list[tuple[Change, str]] = []
            for group in chunk:
                attributes = sorted({c.attribute for c in group.changes})
                try:
                    current = self.client.read_values(group.dn, attributes)
                except Exception as exc:
                    refusal = self.client.refusal(exc)
                    if refusal is None:
                        self.record(outcomes, unknown=unsettled)
                        self._stop(exc, [], set(), [])
                    message = f"cannot read the object to check it: {refusal.name}: {refusal.message}"[:400]
                    unsettled.extend((c, message) for c in group.changes)
                    self.report.unsettled.extend((c, message) for c in group.changes)
                    continue
                verdict = _verdict(group, current)
                if verdict == "applied":
                    message = "found applied when the object was read back"
                    outcomes.extend(Outcome(c, "applied", message) for c in group.changes)
                    self.report.confirmed.extend(group.changes)
                elif verdict == "send":
                    to_send.append(group)
                else:
                    failed = [Outcome(c, "failed", verdict) for c in group.changes]
                    outcomes.extend(failed)
                    self.report.failed.extend(failed)
            self.record(outcomes, unknown=unsettled)
        return to_send


def _verdict(group: _Group, current: dict[str, list[bytes]] | None) -> str:
    """'applied', 'send', or a conflict message, for one object's changes and its current values.

    A change is applied when none of its old values and all of its new ones are there (and, for an
    attribute holding one value, nothing else); it is to send when all old values and none of the
    new ones are there (likewise). A value to delete that the server could confuse with another
    one of the object (AD compares most values without regard to case, so deleting 'smtp:a@x'
    may remove 'SMTP:a@x') is a conflict too: which one would go is not ours to guess.
    """
    if current is None:
        return "conflict: the object is gone (moved, renamed or deleted)"
    states = []
    notes = []
    for c in group.changes:
        held = current.get(c.attribute.lower(), [])
        now = set(held)
        old = {encode_value(v) for v in c.old}
        new = {encode_value(v) for v in c.new}
        single = c.attribute.lower() not in MULTI_VALUED
        if not (old & now) and new <= now and (not single or now == new):
            states.append("applied")
        elif old <= now and not (new & now) and (not single or now == old):
            twins = _twins(old, held)
            if twins:
                states.append("conflict")
                notes.append(f"{c.attribute} holds {twins}, which the server may take for one another")
            else:
                states.append("send")
        else:
            states.append("conflict")
            shown = ", ".join(show_value(v.decode("utf-8", "replace")) for v in sorted(now)) or "(none)"
            notes.append(f"{c.attribute} is now {shown}")
    if all(s == "applied" for s in states):
        return "applied"
    if all(s == "send" for s in states):
        return "send"
    detail = "; ".join(notes) or "some of the object's changes are there and some are not"
    return f"conflict: changed by someone else: {detail}" if "holds" not in detail else f"conflict: {detail}"


def _twins(deleting: set[bytes], held: list[bytes]) -> str:
    """Values held that equal a value to delete but for case ('' when there are none)."""

    def fold(value: bytes) -> str:
        return value.decode("utf-8", "replace").casefold()

    found = []
    for value in deleting:
        same = [h for h in held if h != value and fold(h) == fold(value)]
        if same:
            found.extend([value, *same])
    return " and ".join(show_value(v.decode("utf-8", "replace")) for v in found)


# ---------------------------------------------------------------------------------------------
# the three operations


def apply_plan(
    ws: Workspace,
    plan: Plan,
    client: WriteClient,
    endpoint: Endpoint,
    settings: LdapSettings,
    *,
    note: str = "",
    window: int = WINDOW,
    progress: Progress | None = None,
) -> Report:
    """Journal the whole plan as a new batch, then send it."""
    journal = Journal(ws)
    _refuse_unfinished(journal)
    batch_id, rows = journal.create_batch("apply", endpoint.url, plan.scan_id, journal_changes(plan), note=note)
    batch = journal.batch(batch_id)
    writer = Writer(journal, client, batch, settings, endpoint, window=window, progress=progress)
    return writer.send(_groups(rows))


def resume(
    ws: Workspace,
    batch: Batch,
    client: WriteClient,
    endpoint: Endpoint,
    settings: LdapSettings,
    *,
    note: str = "resumed",
    window: int = WINDOW,
    progress: Progress | None = None,
) -> Report:
    """Finish an interrupted batch: read back every change without an answer, record what reached
    the server, send what did not (same guard), report conflicts."""
    journal = Journal(ws)
    writer = Writer(journal, client, batch, settings, endpoint, window=window, progress=progress)
    pending = _groups(journal.changes(batch.id, ("pending",)))
    writer.record([], note=f"{note}: {len(pending)} object(s) to settle", durable=True)
    to_send = writer.settle(pending)
    return writer.send(to_send)


def undo_changes(journal: Journal, batch: Batch) -> list[NewChange]:
    """The inverse of every applied change of a batch, last object first."""
    applied = journal.changes(batch.id, ("applied",))
    out: list[NewChange] = []
    for seq, group in enumerate(reversed(_groups(applied)), start=1):
        for c in group.changes:
            out.append(NewChange(seq, c.dn, c.attribute, c.new, c.old, c.finding_ids))
    return out


def undo(
    ws: Workspace,
    batch: Batch,
    client: WriteClient,
    endpoint: Endpoint,
    settings: LdapSettings,
    *,
    note: str = "",
    window: int = WINDOW,
    progress: Progress | None = None,
) -> Report:
    """Revert every applied change of a batch, as a new batch of kind 'undo'."""
    journal = Journal(ws)
    check_undoable(journal, batch)
    changes = undo_changes(journal, batch)
    undo_id, rows = journal.create_batch("undo", endpoint.url, batch.scan_id, changes, undoes=batch.id, note=note)
    record = journal.batch(undo_id)
    writer = Writer(journal, client, record, settings, endpoint, window=window, progress=progress)
    to_send = writer.settle(_groups(rows))
    return writer.send(to_send)


def check_undoable(journal: Journal, batch: Batch) -> None:
    if batch.kind != "apply":
        raise WorkspaceError(
            f"batch {batch.id} is itself an undo (of batch {batch.undoes}); to write those values again, "
            "decide the findings again and apply"
        )
    _refuse_unfinished(journal)
    if not batch.counts.get("applied"):
        raise WorkspaceError(f"batch {batch.id} has no applied change left to undo")


def _refuse_unfinished(journal: Journal) -> None:
    """A new batch waits until every earlier one is settled (apply --resume)."""
    unfinished = journal.unfinished()
    if unfinished:
        ids = ", ".join(str(b.id) for b in unfinished)
        raise WorkspaceError(
            f"batch {ids} did not finish (interrupted or disconnected): 'syncprep apply --resume' settles it "
            "first ('syncprep journal' shows it)"
        )


__all__ = [
    "MAX_CHANGES",
    "Report",
    "Stopped",
    "Writer",
    "apply_plan",
    "check_batch_target",
    "check_scan_target",
    "check_threshold",
    "check_undoable",
    "connect",
    "journal_changes",
    "plan_value_changes",
    "resume",
    "undo",
    "undo_changes",
    "value_changes",
    "writable_endpoint",
]
