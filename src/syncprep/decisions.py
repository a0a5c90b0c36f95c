"""Decisions on findings: accept in bulk, edit one, export to and import from a CSV for Excel.

A decision is EDIT (write a value), REMOVE (delete the finding's value), COMPLETE (fine as it is)
or SKIP (leave it). Every value a person types is checked by the rules again; a value that still
breaks one is kept with a warning, a decision that cannot be carried out (editing a count, a
binary value, objectGUID) is refused.

The CSV has IdFix's columns, so a file goes to Excel and back, and IdFix's own exports import
too. An import is all or nothing: every problem is reported with its line, and nothing changes
unless every row is good.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import polars as pl

from .engine import ScanOptions
from .errors import WorkspaceError
from .fixes import COUNTED_CODES
from .model import Action, Finding, Safety
from .output.formats import IDFIX_COLUMNS, idfix_row, restore
from .rules import values
from .rules.catalog import BY_CODE, select_rules
from .schema import BINARY_ATTRIBUTES
from .workspace import DecisionAction, Filters, StoredFinding, Workspace, normalize_dn

SEPARATORS = (",", ";", "\t")
_REQUIRED = ("DISTINGUISHEDNAME", "ATTRIBUTE", "VALUE", "ACTION")
# IdFix writes its proposed actions as C# enum names and its error types capitalised.
_IDFIX_ACTIONS = frozenset({"Edit", "Remove", "Complete", "None", "Fail", "Undo"})
_CHECK_SCHEMA = {"eid": pl.UInt32, "attr": pl.String, "value": pl.String, "kind": pl.String, "external": pl.Boolean}


class ImportRefused(WorkspaceError):
    """An import found problems; nothing was changed. ``problems`` holds one line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        count = len(problems)
        super().__init__(f"{source}: {count} problem{'s' if count != 1 else ''} (listed above); nothing was imported")
        self.source = source
        self.problems = problems


# ---------------------------------------------------------------------------------------------
# checking decisions


def refusal(finding: Finding, action: DecisionAction | None, update: str | None) -> str | None:
    """Why a decision cannot be carried out on this finding, or None when it can."""
    if action not in (DecisionAction.EDIT, DecisionAction.REMOVE):
        return None
    attr = finding.attribute.lower()
    if set(finding.rules) & COUNTED_CODES:
        return f"{finding.value} of {finding.attribute} is a count, not a value: reduce the attribute by hand"
    if attr == "objectguid":
        return "objectGUID cannot be changed (clear mS-DS-ConsistencyGuid on the other object instead)"
    if action == DecisionAction.REMOVE:
        if finding.value == "":
            return f"{finding.attribute} has no value to remove"
        return None
    if attr in BINARY_ATTRIBUTES:
        return f"{finding.attribute} holds binary data: it can be removed, not edited"
    if not update:
        return "EDIT needs a value (REMOVE deletes the value instead)"
    if update == finding.value:
        return "the new value is the current value: nothing would change"
    if "\x00" in update:
        return "the new value holds a NUL character"
    return None


@dataclass
class RuleChecker:
    """Checks values against the rules of the scans that found them (options cached per scan)."""

    ws: Workspace
    _options: dict[int, ScanOptions] = field(default_factory=dict)

    def options(self, scan_id: int) -> ScanOptions:
        if scan_id not in self._options:
            self._options[scan_id] = self.ws.scan(scan_id).options
        return self._options[scan_id]

    def problems(self, items: Sequence[tuple[StoredFinding, str]]) -> dict[int, str]:
        """For (finding, new value) pairs: finding id -> what the value still breaks."""
        out: dict[int, str] = {}
        by_scan: dict[int, list[tuple[StoredFinding, str]]] = {}
        for sf, value in items:
            by_scan.setdefault(sf.last_scan, []).append((sf, value))
        for scan_id, group in by_scan.items():
            options = self.options(scan_id)
            ctx = options.context()
            rules = tuple(r for r in select_rules(ctx, (), options.ignore) if r.scope == "value" and r.check)
            frame = pl.DataFrame(
                {
                    "eid": list(range(len(group))),
                    "attr": [sf.finding.attribute.lower() for sf, _ in group],
                    "value": [v for _, v in group],
                    "kind": [sf.finding.object_class.value for sf, _ in group],
                    "external": [sf.finding.object_class.value == "contact" for sf, _ in group],
                },
                schema=_CHECK_SCHEMA,
            )
            hits: dict[int, list[str]] = {}
            for eid, code in values.evaluate(frame, rules, ctx).select("eid", "code").iter_rows():
                hits.setdefault(eid, []).append(code)
            for eid, codes in hits.items():
                sf, value = group[eid]
                names = ", ".join(
                    f"{c} {BY_CODE[c].name} ({BY_CODE[c].severity_in(options.profile).value})" for c in sorted(codes)
                )
                out[sf.id] = f"{value!r} still breaks {names}"
        return out


# ---------------------------------------------------------------------------------------------
# accept and edit


@dataclass
class AcceptResult:
    accepted: int = 0
    by_safety: Counter[str] = field(default_factory=Counter)
    by_action: Counter[str] = field(default_factory=Counter)
    already_decided: int = 0
    need_value: int = 0
    warnings: list[str] = field(default_factory=list)


def accept(
    ws: Workspace,
    filters: Filters,
    *,
    select_all: bool = False,
    value: str | None = None,
    replace: bool = False,
) -> AcceptResult:
    """Copy the proposed action and value onto the selected open findings of the latest scan.

    Findings that already carry a decision keep it unless ``replace``; applied decisions are
    never touched. Manual findings without a proposed value are never accepted, unless ``value``
    is given: then every selected finding gets EDIT with that value (checked by the rules).
    """
    if filters.empty and not select_all:
        raise WorkspaceError("say which findings to accept: a filter (--error, --rule, --safety, ...) or --all")
    result = AcceptResult()
    chosen: list[tuple[StoredFinding, DecisionAction, str | None]] = []
    refused: list[str] = []
    for sf in ws.findings(filters):
        f = sf.finding
        if sf.decision is not None and (sf.decision.state == "applied" or not replace):
            result.already_decided += 1
            continue
        update: str | None
        if value is not None:
            action, update = DecisionAction.EDIT, value
        elif f.update is None and (f.safety == Safety.MANUAL or f.action == Action.EDIT):
            result.need_value += 1
            continue
        elif f.action in (Action.EDIT, Action.REMOVE, Action.COMPLETE):
            action = DecisionAction(f.action.value)
            update = f.update if action == DecisionAction.EDIT else None
        else:
            continue
        reason = refusal(f, action, update)
        if reason is not None:
            if value is not None:
                refused.append(f"finding {sf.id}: {reason}")
                continue
            result.need_value += 1
            continue
        chosen.append((sf, action, update))
    if refused:
        raise WorkspaceError(f"nothing accepted: {len(refused)} finding(s) cannot take that value; first: {refused[0]}")
    warnings: dict[int, str] = {}
    if value is not None:
        warnings = RuleChecker(ws).problems([(sf, value) for sf, _a, _u in chosen])
    ws.set_decisions(((sf.id, a, u, warnings.get(sf.id, "")) for sf, a, u in chosen), origin="accept")
    for sf, action, _u in chosen:
        result.accepted += 1
        result.by_safety[sf.finding.safety.value] += 1
        result.by_action[action.value] += 1
    result.warnings = [f"finding {fid}: {text}" for fid, text in sorted(warnings.items())]
    return result


@dataclass
class EditResult:
    finding: StoredFinding
    action: DecisionAction | None
    update: str | None
    warning: str = ""


def edit(
    ws: Workspace,
    finding_id: int,
    *,
    update: str | None = None,
    action: DecisionAction | str | None = None,
    clear: bool = False,
) -> EditResult:
    """Set (or ``clear``) the decision on one finding. ``update`` implies EDIT; EDIT without
    ``update`` takes the proposed value. The value is checked by the rules: the decision is kept
    and ``warning`` says what the value still breaks."""
    sf = ws.finding(finding_id)
    f = sf.finding
    if sf.status != "open":
        raise WorkspaceError(f"finding {finding_id} was resolved by scan {sf.resolved_scan}: nothing to change")
    if sf.decision is not None and sf.decision.state == "applied":
        raise WorkspaceError(f"finding {finding_id}: its decision was already applied; undo that batch first")
    chosen: DecisionAction | None
    if clear:
        if update is not None or action is not None:
            raise WorkspaceError("--clear goes alone (no --update or --action)")
        chosen = None
    else:
        chosen = DecisionAction(str(action).upper()) if action is not None else None
        if update is not None:
            if chosen not in (None, DecisionAction.EDIT):
                raise WorkspaceError(f"--update goes with EDIT, not {chosen}")
            chosen = DecisionAction.EDIT
        elif chosen == DecisionAction.EDIT:
            if f.update is None:
                raise WorkspaceError(f"finding {finding_id} has no proposed value: give one with --update VALUE")
            update = f.update
        elif chosen is None:
            raise WorkspaceError("say what to do: --update VALUE, --action EDIT|REMOVE|COMPLETE|SKIP or --clear")
    reason = refusal(f, chosen, update)
    if reason is not None:
        raise WorkspaceError(f"finding {finding_id}: {reason}")
    warning = ""
    if chosen == DecisionAction.EDIT and update is not None and update != f.update:
        warning = RuleChecker(ws).problems([(sf, update)]).get(sf.id, "")
    ws.set_decisions([(sf.id, chosen, update, warning)], origin="edit")
    return EditResult(ws.finding(finding_id), chosen, update, warning)


# ---------------------------------------------------------------------------------------------
# CSV: writing


def csv_cell(cell: str, separator: str = ",") -> str:
    """One RFC 4180 cell: quoted when it holds the separator, a quote, a line break, or starts
    or ends with whitespace (so no spreadsheet or reader trims it)."""
    if (
        separator in cell
        or '"' in cell
        or "\n" in cell
        or "\r" in cell
        or (cell and (cell[0].isspace() or cell[-1].isspace()))
    ):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def write_csv_rows(rows: Iterable[Sequence[str]], out: TextIO, *, separator: str = ",") -> int:
    """Write rows as CSV lines ending in CRLF (Excel's way). Returns the number of rows."""
    if separator not in SEPARATORS:
        raise WorkspaceError(f"CSV separator must be one of , ; or a tab, not {separator!r}")
    count = 0
    for row in rows:
        out.write(separator.join(csv_cell(c, separator) for c in row) + "\r\n")
        count += 1
    return count


def export_rows(findings: Iterable[StoredFinding]) -> Iterator[list[str]]:
    """IdFix's columns for each finding: UPDATE is the decided value (else the proposed one),
    ACTION the decision (blank when undecided). Formula-like cells get the "'" prefix."""
    yield list(IDFIX_COLUMNS)
    for sf in findings:
        f, d = sf.finding, sf.decision
        update = d.update if d is not None and d.action == DecisionAction.EDIT else f.update
        yield idfix_row(f, update, d.action.value if d is not None else "")


def export_decisions(
    ws: Workspace, path: str | Path, filters: Filters | None = None, *, separator: str = ",", status: str = "open"
) -> int:
    """Write the findings (with decisions) as a CSV for Excel: UTF-8 with BOM, CRLF."""
    rows = export_rows(ws.findings(filters, status=status))
    try:
        with open(path, "w", encoding="utf-8-sig", newline="") as out:
            return write_csv_rows(rows, out, separator=separator) - 1
    except OSError as exc:
        raise WorkspaceError(f"cannot write {path}: {exc.strerror}") from None


# ---------------------------------------------------------------------------------------------
# CSV: reading


@dataclass(frozen=True)
class CsvRecord:
    line: int  # the physical line the record starts on (the header is line 1)
    cells: dict[str, str]  # upper-case header -> raw cell


@dataclass
class CsvFile:
    records: list[CsvRecord]
    separator: str
    encoding: str
    problems: list[str]
    idfix: bool  # written by IdFix: cells carry no "'" prefix to remove

    def cell(self, record: CsvRecord, column: str) -> str:
        raw = record.cells.get(column, "")
        return raw if self.idfix else restore(raw)


def decode_csv(data: bytes) -> tuple[str, str]:
    """The text of a CSV file as Excel may have saved it, and the encoding used.

    UTF-8 with or without BOM, UTF-16 with BOM ("Unicode text"), else Windows-1252 (Excel's
    "CSV (comma delimited)" on Western systems).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "surrogateescape"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace"), "cp1252"


def parse_csv(text: str, *, source: str = "CSV", encoding: str = "utf-8") -> CsvFile:
    """Parse a decisions CSV: separator from the header (, ; or tab; Excel's "sep=" line too),
    columns by name (IdFix's; any order, extra columns ignored)."""
    problems: list[str] = []
    first_line = 1
    if text.lower().startswith("sep=") and len(text) > 4:
        separator = text[4]
        newline = text.find("\n")
        text = text[newline + 1 :] if newline >= 0 else ""
        first_line = 2
    else:
        header_line = text.split("\n", 1)[0]
        separator = max(SEPARATORS, key=lambda s: (len(_split_header(header_line, s) & set(IDFIX_COLUMNS)), s == ","))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=False)
    try:
        header = next(reader)
    except StopIteration:
        raise WorkspaceError(f"{source}: empty file: expected a header line with {', '.join(IDFIX_COLUMNS)}") from None
    names = [h.strip().strip("\ufeff").upper() for h in header]
    missing = [c for c in _REQUIRED if c not in names]
    if missing:
        raise WorkspaceError(
            f"{source}: not a decisions CSV: the header lacks {', '.join(missing)} "
            f"(expected IdFix's columns {','.join(IDFIX_COLUMNS)})"
        )
    records: list[CsvRecord] = []
    last = reader.line_num
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(f"line {last + first_line}: malformed CSV ({exc})")
            break
        line = last + first_line
        last = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(names) and any(c.strip() for c in row[len(names) :]):
            problems.append(
                f"line {line}: {len(row)} cells but the header has {len(names)} "
                "(a value with an unquoted separator or quote?)"
            )
            continue
        if len(row) < len(names):
            problems.append(f"line {line}: {len(row)} cells but the header has {len(names)}")
            continue
        records.append(CsvRecord(line, dict(zip(names, row, strict=False))))
    idfix = "COMMONNAME" not in names or any(_idfix_row(r.cells) for r in records)
    return CsvFile(records, separator, encoding, problems, idfix)


def _idfix_row(cells: dict[str, str]) -> bool:
    """IdFix writes "Edit" and "Character, Format"; syncprep "EDIT" and "character,format"."""
    error = cells.get("ERROR", "")
    return cells.get("PROPOSEDACTION", "") in _IDFIX_ACTIONS or error != error.lower()


def _split_header(line: str, separator: str) -> set[str]:
    return {cell.strip().strip('"').strip("\ufeff").upper() for cell in line.split(separator)}


def read_csv_file(path: str | Path) -> CsvFile:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise WorkspaceError(f"cannot read {path}: {exc.strerror}") from None
    text, encoding = decode_csv(data)
    return parse_csv(text, source=str(path), encoding=encoding)


# ---------------------------------------------------------------------------------------------
# import


@dataclass
class ImportResult:
    rows: int = 0
    set: int = 0
    cleared: int = 0
    unchanged: int = 0
    ignored_resolved: int = 0
    ignored_unknown: int = 0
    warnings: list[str] = field(default_factory=list)
    encoding: str = "utf-8"
    separator: str = ","
    idfix: bool = False


def import_decisions(ws: Workspace, path: str | Path, *, dry_run: bool = False) -> ImportResult:
    """Import decisions from a CSV in IdFix's columns (ours, or IdFix's own export).

    Each row finds its finding by DISTINGUISHEDNAME (compared as AD does), ATTRIBUTE and the exact
    VALUE; ACTION is the decision (EDIT, REMOVE, COMPLETE, SKIP; blank clears it) and UPDATE the
    value of an EDIT. Any problem (unknown finding, bad action, missing value, a row that cannot be
    carried out) raises ImportRefused listing every problem with its line; then nothing changes.
    Rows without a decision whose finding syncprep does not have (IdFix reports some values
    syncprep does not) are skipped and counted in ``ignored_unknown``.
    """
    parsed = read_csv_file(path)
    return import_parsed(ws, parsed, source=str(path), dry_run=dry_run)


def import_parsed(ws: Workspace, parsed: CsvFile, *, source: str, dry_run: bool = False) -> ImportResult:
    latest = ws.require_scan()
    problems = list(parsed.problems)
    result = ImportResult(encoding=parsed.encoding, separator=parsed.separator, idfix=parsed.idfix)
    index, places = _value_index(ws)
    decided: dict[int, tuple[int, DecisionAction | None, str | None]] = {}
    for record in parsed.records:
        result.rows += 1
        line = record.line
        dn = parsed.cell(record, "DISTINGUISHEDNAME")
        attr = record.cells.get("ATTRIBUTE", "").strip()
        value = parsed.cell(record, "VALUE")
        raw_action = record.cells.get("ACTION", "").strip().upper()
        if raw_action in ("", "NONE"):
            action: DecisionAction | None = None
        elif raw_action in DecisionAction.__members__:
            action = DecisionAction(raw_action)
        elif raw_action in ("UNDO", "FAIL"):
            problems.append(f"line {line}: ACTION {raw_action} is set by apply and undo, not imported")
            continue
        else:
            problems.append(f"line {line}: unknown ACTION {raw_action!r} (EDIT, REMOVE, COMPLETE, SKIP or empty)")
            continue
        update: str | None = None
        if action == DecisionAction.EDIT:
            if "UPDATE" not in record.cells:
                problems.append(f"line {line}: ACTION EDIT but the file has no UPDATE column")
                continue
            update = parsed.cell(record, "UPDATE")
        key = (normalize_dn(dn), attr.lower(), value)
        candidates = index.get(key)
        if not candidates and action is None:
            # No decision on a row syncprep does not know (IdFix flags some values it does not): nothing to lose.
            result.ignored_unknown += 1
            continue
        if not candidates:
            where = f"{attr} of {dn}"
            if (key[0], key[1]) in places:
                problems.append(
                    f"line {line}: no finding with this VALUE ({_short(value)}) in {where}: was the VALUE cell changed?"
                )
            else:
                problems.append(f"line {line}: no finding for {where} in the workspace")
            continue
        fid, status, last_scan, resolved_scan = next(
            (c for c in candidates if c[1] == "open" and c[2] == latest.id), candidates[0]
        )
        if status != "open" or last_scan != latest.id:
            if action in (DecisionAction.EDIT, DecisionAction.REMOVE):
                problems.append(
                    f"line {line}: finding {fid} ({attr} of {dn}) was resolved by scan {resolved_scan}: "
                    f"its value is gone, so {action} cannot be carried out"
                )
            else:
                result.ignored_resolved += 1
            continue
        if fid in decided:
            first_line, first_action, first_update = decided[fid]
            if (first_action, first_update) != (action, update):
                problems.append(f"line {line}: finding {fid} is decided differently on line {first_line}")
            continue
        decided[fid] = (line, action, update)
    # Everything that needs the stored finding, for the rows that found one.
    todo: list[tuple[StoredFinding, DecisionAction | None, str | None]] = []
    for fid, (line, action, update) in decided.items():
        sf = ws.finding(fid)
        current = sf.decision
        same = (current.action, current.update) == (action, update) if current else action is None
        if same:
            result.unchanged += 1
            continue
        if current is not None and current.state == "applied":
            problems.append(f"line {line}: finding {fid}: its decision was already applied; undo that batch first")
            continue
        reason = refusal(sf.finding, action, update)
        if reason is not None:
            problems.append(f"line {line}: finding {fid}: {reason}")
            continue
        todo.append((sf, action, update))
    if problems:
        problems.sort(key=_line_number)
        raise ImportRefused(source, problems)
    to_check = [(sf, u) for sf, a, u in todo if a == DecisionAction.EDIT and u is not None and u != sf.finding.update]
    warnings = RuleChecker(ws).problems(to_check)
    result.warnings = [f"finding {fid}: {text}" for fid, text in sorted(warnings.items())]
    result.set = sum(1 for _sf, a, _u in todo if a is not None)
    result.cleared = sum(1 for _sf, a, _u in todo if a is None)
    if not dry_run:
        ws.set_decisions(
            ((sf.id, a, u, warnings.get(sf.id, "")) for sf, a, u in todo), origin=f"import {Path(source).name}"
        )
    return result


def _value_index(
    ws: Workspace,
) -> tuple[dict[tuple[str, str, str], list[tuple[int, str, int, int | None]]], set[tuple[str, str]]]:
    """(dn_norm, attribute, value) -> [(id, status, last scan, resolved scan)], open and newest first."""
    index: dict[tuple[str, str, str], list[tuple[int, str, int, int | None]]] = {}
    places: set[tuple[str, str]] = set()
    with ws.errors():
        rows = ws.conn.execute(
            "SELECT id, dn_norm, attribute_lower, value, status, last_scan, resolved_scan FROM findings"
            " ORDER BY status = 'open' DESC, last_scan DESC, id"
        ).fetchall()
    for fid, dn_norm, attr, value, status, last_scan, resolved_scan in rows:
        dn_text = dn_norm.decode("utf-8", "surrogateescape") if isinstance(dn_norm, bytes) else dn_norm
        val = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
        index.setdefault((dn_text, attr, val), []).append((fid, status, last_scan, resolved_scan))
        places.add((dn_text, attr))
    return index, places


def _short(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


def _line_number(problem: str) -> int:
    head = problem.split(":", 1)[0]
    return int(head[5:]) if head.startswith("line ") and head[5:].isdigit() else 0


__all__ = [
    "AcceptResult",
    "CsvFile",
    "CsvRecord",
    "EditResult",
    "ImportRefused",
    "ImportResult",
    "RuleChecker",
    "accept",
    "csv_cell",
    "decode_csv",
    "edit",
    "export_decisions",
    "export_rows",
    "import_decisions",
    "import_parsed",
    "parse_csv",
    "read_csv_file",
    "refusal",
    "write_csv_rows",
]
