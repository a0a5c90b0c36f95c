"""The plan: the accepted, not yet applied decisions as guarded LDAP modify operations.

Every object that changes gets one modify request (one LDIF change record). Within it, each
attribute that changes first deletes the exact values the scan saw, then adds the new ones, so
the server refuses the whole request (``noSuchAttribute``) when a value changed since the scan,
instead of overwriting somebody else's newer edit. Nothing is ever deleted that no decision
names: there is no ``replace`` and no ``delete`` without values.

The apply step sends exactly :attr:`Plan.objects`: one atomic modify per :class:`ObjectChange`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from .errors import WorkspaceError
from .fixes import NAME_ATTRIBUTES
from .model import Safety
from .output.ldif import DEFAULT_FOLD, attribute_name, fold_line, format_value
from .schema import BINARY_ATTRIBUTES, canonical
from .workspace import DecisionAction, Workspace, normalize_dn

Value = str | bytes

# Attributes that hold several values; every other attribute holds at most one.
MULTI_VALUED = frozenset(
    {"proxyaddresses", "usercertificate", "usersmimecertificate", "member", "objectclass", "othermailbox", "url"}
)


class PlanConflict(WorkspaceError):
    """Decisions that cannot be carried out together. ``conflicts`` holds one line each."""

    def __init__(self, conflicts: list[str]) -> None:
        count = len(conflicts)
        super().__init__(
            f"{count} conflicting decision{'s' if count != 1 else ''} (listed above): "
            "change them with 'syncprep edit' before planning"
        )
        self.conflicts = conflicts


@dataclass(frozen=True, slots=True)
class Intent:
    """One decision to carry out: change (EDIT) or delete (REMOVE) one value of one object."""

    finding_id: int
    dn: str
    attribute: str
    old: str  # the value as scanned ("" when the attribute was empty)
    action: DecisionAction
    new: str | None = None
    unsafe: bool = False


@dataclass(frozen=True, slots=True)
class AttributeChange:
    """Within one modify: delete these exact values of ``attribute``, then add these."""

    attribute: str
    delete: tuple[Value, ...]
    add: tuple[Value, ...]
    finding_ids: tuple[int, ...]
    unsafe: bool = False


@dataclass(frozen=True, slots=True)
class ObjectChange:
    """One modify request: every change to one object, applied atomically by the server."""

    dn: str
    changes: tuple[AttributeChange, ...]

    @property
    def finding_ids(self) -> tuple[int, ...]:
        return tuple(i for c in self.changes for i in c.finding_ids)


@dataclass(frozen=True)
class Plan:
    objects: tuple[ObjectChange, ...]
    intents: tuple[Intent, ...] = ()
    scan_id: int | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def deleted(self) -> int:
        return sum(len(c.delete) for o in self.objects for c in o.changes)

    @property
    def added(self) -> int:
        return sum(len(c.add) for o in self.objects for c in o.changes)

    @property
    def unsafe(self) -> tuple[Intent, ...]:
        return tuple(i for i in self.intents if i.unsafe)

    def __len__(self) -> int:
        return len(self.objects)


def is_unsafe(attribute: str, safety: Safety, proposed: str | None, action: DecisionAction, new: str | None) -> bool:
    """Whether a change needs a human's eye: anything but a safe proposal taken as proposed, or a
    name (displayName, givenName, sn) a person typed."""
    attr = attribute.lower()
    if action == DecisionAction.EDIT and safety == Safety.SAFE and new == proposed:
        return False
    return not (action == DecisionAction.EDIT and attr in NAME_ATTRIBUTES)


def pending_intents(ws: Workspace, scan_id: int | None = None) -> list[Intent]:
    """The pending EDIT and REMOVE decisions on the open findings of the latest scan."""
    scan = scan_id if scan_id is not None else ws.require_scan().id
    out = []
    for sf in ws.findings(scan_id=scan):
        d = sf.decision
        if d is None or d.state != "pending" or d.action not in (DecisionAction.EDIT, DecisionAction.REMOVE):
            continue
        f = sf.finding
        out.append(
            Intent(
                finding_id=sf.id,
                dn=f.dn,
                attribute=f.attribute,
                old=f.value,
                action=d.action,
                new=d.update,
                unsafe=is_unsafe(f.attribute, f.safety, f.update, d.action, d.update),
            )
        )
    return out


def build_plan(ws: Workspace, scan_id: int | None = None) -> Plan:
    """The plan of a workspace: its pending decisions merged per object (see :func:`plan_changes`)."""
    scan = scan_id if scan_id is not None else ws.require_scan().id
    return plan_changes(pending_intents(ws, scan), scan_id=scan)


def plan_changes(intents: Iterable[Intent], *, scan_id: int | None = None) -> Plan:
    """Merge intents into one modify per object.

    Two intents on one (object, attribute) merge into one delete and one add. Raises
    PlanConflict, listing every conflict, when intents contradict each other: two different
    decisions for one value (an EDIT and a REMOVE of it), a value one intent removes and
    another adds, or two values for a single-valued attribute.
    """
    intents = list(intents)
    conflicts: list[str] = []
    notes: list[str] = []
    objects: dict[str, tuple[str, dict[str, list[Intent]]]] = {}
    for intent in intents:
        dn_key = normalize_dn(intent.dn)
        _dn, attrs = objects.setdefault(dn_key, (intent.dn, {}))
        attrs.setdefault(intent.attribute.lower(), []).append(intent)
    planned: list[ObjectChange] = []
    for dn, attrs in objects.values():
        changes = []
        for attr, group in attrs.items():
            change = _merge(dn, attr, group, conflicts, notes)
            if change is not None:
                changes.append(change)
        if changes:
            planned.append(ObjectChange(dn, tuple(changes)))
    if conflicts:
        raise PlanConflict(conflicts)
    return Plan(tuple(planned), tuple(intents), scan_id, tuple(notes))


def _merge(dn: str, attr: str, group: list[Intent], conflicts: list[str], notes: list[str]) -> AttributeChange | None:
    name = group[0].attribute or canonical(attr)
    where = f"{name} of {dn}"
    by_old: dict[str, Intent] = {}
    for intent in group:
        if intent.action not in (DecisionAction.EDIT, DecisionAction.REMOVE):
            continue
        if intent.action == DecisionAction.EDIT and not intent.new:
            conflicts.append(f"finding {intent.finding_id}: EDIT without a value for {where}")
            continue
        if intent.action == DecisionAction.REMOVE and intent.old == "":
            conflicts.append(f"finding {intent.finding_id}: REMOVE of an empty {where}")
            continue
        other = by_old.get(intent.old)
        if other is not None:
            if (other.action, other.new) != (intent.action, intent.new):
                conflicts.append(
                    f"findings {other.finding_id} and {intent.finding_id} decide {_q(intent.old)} in {where} "
                    f"differently ({_describe(other)} / {_describe(intent)})"
                )
            continue
        by_old[intent.old] = intent
    if not by_old:
        return None
    removed = {old for old, i in by_old.items() if i.action == DecisionAction.REMOVE}
    deletes: list[str] = [old for old in by_old if old != ""]
    adds: list[str] = []
    for intent in by_old.values():
        if intent.action != DecisionAction.EDIT or intent.new is None:
            continue
        if intent.new in removed:
            remover = by_old[intent.new]
            conflicts.append(
                f"finding {intent.finding_id} sets {where} to {_q(intent.new)}, which finding "
                f"{remover.finding_id} removes"
            )
            continue
        if intent.new in adds:
            if attr not in MULTI_VALUED:
                conflicts.append(f"two decisions set {where} to {_q(intent.new)}")
            else:
                notes.append(f"{where}: two decisions add {_q(intent.new)}; it is added once")
            continue
        adds.append(intent.new)
    if attr not in MULTI_VALUED and (len(deletes) > 1 or len(adds) > 1):
        ids = ", ".join(str(i.finding_id) for i in by_old.values())
        conflicts.append(f"findings {ids} change {where}, which holds one value, in different ways")
    binary = attr in BINARY_ATTRIBUTES
    if binary and adds:
        conflicts.append(f"{where}: binary values can be removed, not written")
    return AttributeChange(
        attribute=name,
        delete=tuple(_to_bytes(v, where, conflicts) if binary else v for v in deletes),
        add=tuple(adds),
        finding_ids=tuple(i.finding_id for i in by_old.values()),
        unsafe=any(i.unsafe for i in by_old.values()),
    )


def _to_bytes(value: str, where: str, conflicts: list[str]) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        conflicts.append(f"{where}: {_q(value)} is not the base64 text of a binary value")
        return b""


def _q(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:79] + "…")


def _describe(intent: Intent) -> str:
    return f"EDIT to {_q(intent.new or '')}" if intent.action == DecisionAction.EDIT else str(intent.action)


# ---------------------------------------------------------------------------------------------
# LDIF


def plan_records(plan: Plan, *, fold: int = DEFAULT_FOLD) -> Iterator[str]:
    """The plan as LDIF change records (RFC 2849), one string per record, without the blank
    separator line. Usable with ``ldapmodify -f`` and ``ldifde -i``."""
    for obj in plan.objects:
        lines = [f"# findings {', '.join(str(i) for i in obj.finding_ids)}"]
        lines.append(format_value("dn", _armoured(obj.dn), fold=fold))
        lines.append(fold_line("changetype: modify", fold))
        for change in obj.changes:
            name = attribute_name(change.attribute)
            if change.delete:
                lines.append(fold_line(f"delete: {name}", fold))
                lines.extend(format_value(name, _armoured(v), fold=fold) for v in change.delete)
                lines.append("-")
            if change.add:
                lines.append(fold_line(f"add: {name}", fold))
                lines.extend(format_value(name, _armoured(v), fold=fold) for v in change.add)
                lines.append("-")
        yield "\n".join(lines)


def _armoured(value: Value) -> Value:
    """Text with control characters or edge whitespace of any kind goes out base64-encoded too:
    RFC 2849 allows most of it plain, but readers (python-ldap, ldifde) strip or mangle it."""
    if isinstance(value, str) and (value != value.strip() or any(ord(c) < 0x20 or c == "\x7f" for c in value)):
        return value.encode("utf-8", "surrogateescape")
    return value


def write_plan(plan: Plan, out: TextIO, *, fold: int = DEFAULT_FOLD, header: str | None = None) -> int:
    """Write the plan as an LDIF file of change records; returns the number of records."""
    if header:
        out.writelines(f"# {line}\n" for line in header.splitlines())
        out.write("\n")
    count = 0
    for record in plan_records(plan, fold=fold):
        out.write(record + "\n\n")
        count += 1
    return count


def read_change_records(text: str) -> list[ObjectChange]:
    """Read LDIF modify records (as :func:`write_plan` writes them) back into ObjectChanges.

    Understands folded lines, comments, base64 (``::``) values and ``version: 1``; binary
    attributes come back as bytes, text as str. Raises WorkspaceError on anything else
    (other change types, ``replace``, URL values).
    """
    records: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    logical: list[tuple[int, str]] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if line.startswith(" ") and logical:
            n, previous = logical[-1]
            logical[-1] = (n, previous + line[1:])
            continue
        logical.append((number, line))
    for number, line in logical:
        if line.startswith("#"):
            continue
        if line == "":
            if current:
                records.append(current)
                current = []
            continue
        current.append((number, line))
    if current:
        records.append(current)
    out = []
    for record in records:
        if record[0][1].lower().startswith("version:"):
            record = record[1:]
            if not record:
                continue
        out.append(_read_record(record))
    return out


def _read_record(record: list[tuple[int, str]]) -> ObjectChange:
    def value_of(number: int, line: str) -> tuple[str, Value]:
        name, sep, rest = line.partition(":")
        if not sep:
            raise WorkspaceError(f"line {number}: expected 'attribute: value', got {line!r}")
        attr = name.strip()
        if rest.startswith(":"):
            raw = base64.b64decode(rest[1:].strip())
            if attr.split(";", 1)[0].lower() in BINARY_ATTRIBUTES:
                return attr, raw
            return attr, raw.decode("utf-8", "surrogateescape")
        if rest.startswith("<"):
            raise WorkspaceError(f"line {number}: URL values are not supported")
        return attr, rest[1:] if rest.startswith(" ") else rest

    number, first = record[0]
    tag, dn = value_of(number, first)
    if tag.lower() != "dn" or not isinstance(dn, str):
        raise WorkspaceError(f"line {number}: a record starts with 'dn:'")
    if len(record) < 2 or value_of(*record[1])[0].lower() != "changetype" or value_of(*record[1])[1] != "modify":
        raise WorkspaceError(f"line {record[0][0]}: only 'changetype: modify' records are read")
    ops: dict[str, tuple[list[Value], list[Value]]] = {}
    order: list[str] = []
    i = 2
    while i < len(record):
        number, line = record[i]
        op, attr = value_of(number, line)
        op = op.lower()
        if op not in ("add", "delete") or not isinstance(attr, str):
            raise WorkspaceError(f"line {number}: expected 'add: attr' or 'delete: attr', got {line!r}")
        i += 1
        vals: list[Value] = []
        while i < len(record) and record[i][1] != "-":
            n, inner = record[i]
            name, val = value_of(n, inner)
            if name.lower() != attr.lower():
                raise WorkspaceError(f"line {n}: {name} inside '{op}: {attr}'")
            vals.append(val)
            i += 1
        if i >= len(record):
            raise WorkspaceError(f"line {number}: '{op}: {attr}' is not closed by '-'")
        i += 1
        key = attr.lower()
        if key not in ops:
            ops[key] = ([], [])
            order.append(attr)
        (ops[key][0] if op == "delete" else ops[key][1]).extend(vals)
    changes = tuple(AttributeChange(a, tuple(ops[a.lower()][0]), tuple(ops[a.lower()][1]), ()) for a in order)
    return ObjectChange(dn, changes)


__all__ = [
    "MULTI_VALUED",
    "AttributeChange",
    "Intent",
    "ObjectChange",
    "Plan",
    "PlanConflict",
    "build_plan",
    "is_unsafe",
    "pending_intents",
    "plan_changes",
    "plan_records",
    "read_change_records",
    "write_plan",
]
