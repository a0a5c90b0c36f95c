"""The human report: a summary table by error type and attribute, then findings by object."""

from __future__ import annotations

import unicodedata
from itertools import groupby
from typing import TextIO

from rich.console import Console
from rich.table import Table

from ..engine import ScanResult
from ..model import Action, Finding
from .formats import summary


def visible(value: str) -> str:
    """Quote a value so invisible characters show. Ex) "bob\u200b@x.com" -> "'bob\\u200b@x.com'"."""
    out = []
    for ch in value:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Zl", "Zp") or (cat == "Zs" and ch != " ") or ch == "\u00ad":
            out.append(f"\\u{ord(ch):04x}" if ord(ch) > 0xFF else f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def _fix_line(f: Finding) -> str:
    if f.action is Action.EDIT and f.update is not None:
        text = f"EDIT -> {visible(f.update)} ({f.safety.value})"
    elif f.action is Action.EDIT:
        text = "EDIT by hand (manual)"
    else:
        text = f"{f.action.value} ({f.safety.value})"
    return text + (f" - {f.note}" if f.note else "")


def write_text(result: ScanResult, out: TextIO, *, color: bool = False, show_skipped: bool = False) -> None:
    table = summary(result.findings)
    attributes = sorted({a for row in table.values() for a in row})
    # Wide enough for every column name in full: a pipe or a file has no width of its own.
    needed = 20 + sum(max(len(a), 6) + 3 for a in attributes) + 10
    width = max(needed, 80) if not color else None
    console = Console(file=out, force_terminal=color, no_color=not color, width=width, highlight=False)
    n = len(result.findings)
    objects = len({f.dn for f in result.findings})
    skipped = sum(result.skipped.values())
    console.print(
        f"Scanned {result.objects_read:,} objects from {len(result.sources)} source(s) in "
        f"{result.seconds:.1f} s: {result.objects_in_scope:,} in scope, {skipped:,} skipped "
        f"(profile {result.options.profile})."
    )
    if not n:
        console.print("[green]No findings: nothing here would stop Microsoft 365 sync.[/green]")
    else:
        grid = Table(title=f"{n:,} findings on {objects:,} objects", title_justify="left")
        grid.add_column("error type", no_wrap=True)
        for a in attributes:
            grid.add_column(a, justify="right", overflow="fold", min_width=len(a) if not color else None)
        grid.add_column("total", justify="right", style="bold")
        for error, row in table.items():
            grid.add_row(
                error, *(f"{row.get(a, 0):,}" if row.get(a) else "" for a in attributes), f"{sum(row.values()):,}"
            )
        console.print(grid)
    if result.skipped:
        console.print("Skipped, as Entra Connect would:" if result.options.exclusions == "entra" else "Skipped:")
        for reason, count in result.skipped.most_common():
            console.print(f"  {count:>8,}  {reason}")
    if show_skipped and result.skipped_objects:
        console.print("Skipped objects:")
        for s in result.skipped_objects:
            out.write(f"  {s.dn}  ({s.reason})\n")
    if n:
        out.write("\n")
        for dn, group in groupby(result.findings, key=lambda f: f.dn):
            items = list(group)
            out.write(f"{dn}  ({items[0].object_class.value})\n")
            for f in items:
                codes = " ".join(f.rules)
                level = "" if f.severity.value == "error" else " warning"
                out.write(f"  {f.attribute}: {visible(f.value)}\n")
                out.write(f"      {', '.join(e.value for e in f.errors)}{level}  [{codes}]\n")
                others = [h for h in f.holders if not (h.dn == f.dn and h.attribute == f.attribute)]
                if others:
                    shown = ", ".join(f"{h.dn} ({h.attribute})" for h in others[:5])
                    more = f" and {len(others) - 5} more" if len(others) > 5 else ""
                    out.write(f"      also held by: {shown}{more}\n")
                out.write(f"      fix: {_fix_line(f)}\n")
