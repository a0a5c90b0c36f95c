"""Findings as JSON, JSON Lines and IdFix-compatible CSV.

The JSONL contract (one finding per line) is documented in the README; other tools rely on it.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from typing import TextIO

from .. import __version__
from ..engine import ScanResult
from ..model import Finding

IDFIX_COLUMNS = (
    "DISTINGUISHEDNAME",
    "COMMONNAME",
    "OBJECTCLASS",
    "ATTRIBUTE",
    "ERROR",
    "VALUE",
    "UPDATE",
    "PROPOSEDACTION",
    "ACTION",
)
# A spreadsheet treats a cell starting with one of these as a formula.
# Ex) "=HYPERLINK(...)" in a displayName must stay text when the CSV is opened in Excel.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


def neutralise(cell: str) -> str:
    """Make a cell inert in spreadsheets: prefix "'" to formula-like text (and to a leading "'",
    so reading strips exactly one). Spreadsheets may trim leading spaces, so they do not hide a
    formula. Ex) "=1+2" -> "'=1+2"; " =1+2" -> "' =1+2"; "'quoted" -> "''quoted"."""
    risky = cell.startswith("'") or cell.lstrip(" ").startswith(_FORMULA_START)
    return "'" + cell if risky else cell


def restore(cell: str) -> str:
    """The inverse of :func:`neutralise`."""
    return cell[1:] if cell.startswith("'") else cell


def summary(findings: list[Finding]) -> dict[str, dict[str, int]]:
    """Counts by error type, then attribute. A finding with two error types counts under both."""
    table: dict[str, Counter[str]] = {}
    for f in findings:
        for e in f.errors:
            table.setdefault(e.value, Counter())[f.attribute] += 1
    return {e: dict(sorted(c.items())) for e, c in sorted(table.items())}


def write_json(result: ScanResult, out: TextIO) -> None:
    document = {
        "syncprep": __version__,
        "sources": list(result.sources),
        "profile": result.options.profile,
        "objects_read": result.objects_read,
        "objects_in_scope": result.objects_in_scope,
        "skipped": dict(sorted(result.skipped.items())),
        "summary": summary(result.findings),
        "findings": [f.to_dict() for f in result.findings],
    }
    json.dump(document, out, ensure_ascii=False, indent=1)
    out.write("\n")


def write_jsonl(result: ScanResult, out: TextIO) -> None:
    dumps = json.dumps
    out.writelines(dumps(f.to_dict(), ensure_ascii=False) + "\n" for f in result.findings)


def idfix_row(f: Finding, update: str | None, action: str) -> list[str]:
    """One finding in IdFix's columns: UPDATE the value to write, ACTION the decision (or blank)."""
    return [
        neutralise(f.dn),
        neutralise(f.cn),
        f.object_class.value,
        f.attribute,
        ",".join(e.value for e in f.errors),
        neutralise(f.value),
        neutralise(update or ""),
        f.action.value,
        action,
    ]


def write_csv(result: ScanResult, out: TextIO) -> None:
    """IdFix's columns, RFC 4180 quoting; the caller opens the file as utf-8-sig for Excel."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(IDFIX_COLUMNS)
    for f in result.findings:
        writer.writerow(idfix_row(f, f.update, ""))
