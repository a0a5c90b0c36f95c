"""The review commands: findings, accept, edit, export, import, plan (and ``scan --db``).

A thin face over :mod:`syncprep.workspace`, :mod:`syncprep.decisions` and :mod:`syncprep.plan`;
:func:`register` adds the commands to the main group.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .decisions import ImportRefused, accept, edit, export_decisions, import_decisions
from .engine import ScanResult
from .errors import WorkspaceError
from .plan import Plan, PlanConflict, build_plan, write_plan
from .workspace import DEFAULT_PATH, DecisionAction, Filters, StoredFinding, open_workspace

DB_ENV = "SYNCPREP_DB"
_SEPARATORS = {",": ",", "comma": ",", ";": ";", "semicolon": ";", "tab": "\t", "\\t": "\t", "\t": "\t"}


def default_db() -> str:
    return os.environ.get(DB_ENV) or DEFAULT_PATH


def _plan_or_conflicts(ws: Any) -> Plan:
    """The pending plan; each conflict between decisions on its own line before the error."""
    try:
        return build_plan(ws)
    except PlanConflict as exc:
        for conflict in exc.conflicts:
            _err(f"conflict: {conflict}")
        raise


def _err(message: str) -> None:
    click.echo(f"syncprep: {message}", err=True)


def _items(values: Sequence[str]) -> tuple[str, ...]:
    """Comma- or space-separated items from repeated options. Ex) ("a,b", "c") -> a, b, c."""
    return tuple(item for v in values for item in v.replace(",", " ").split() if item)


def _db_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        "db",
        metavar="PATH",
        default=default_db,
        show_default=f"${DB_ENV} or {DEFAULT_PATH}",
        help="The workspace file.",
    )(command)


def _filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--error", "errors", multiple=True, metavar="TYPES", help="Error types: duplicate,character..."),
        click.option("--rule", "rules", multiple=True, metavar="CODES", help="Rule codes or prefixes (U008, X)."),
        click.option("--attribute", "attributes", multiple=True, metavar="NAMES", help="Attributes (any case)."),
        click.option("--kind", "kinds", multiple=True, metavar="KINDS", help="Object kinds: user, contact, group."),
        click.option(
            "--dn-suffix", "dn_suffixes", multiple=True, metavar="DN", help="Objects at or below this DN (repeatable)."
        ),
        click.option("--safety", "safeties", multiple=True, metavar="LEVELS", help="Fix safety: safe, unsafe, manual."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _filters(options: dict[str, Any], decided: bool | None = None) -> Filters:
    return Filters(
        errors=_items(options.pop("errors", ())),
        rules=_items(options.pop("rules", ())),
        attributes=_items(options.pop("attributes", ())),
        kinds=_items(options.pop("kinds", ())),
        dn_suffixes=tuple(options.pop("dn_suffixes", ())),
        safeties=_items(options.pop("safeties", ())),
        decided=decided,
    )


# ---------------------------------------------------------------------------------------------
# scan --db


def scan_recorder(db: str) -> Callable[[ScanResult], None]:
    """Open (or create) the workspace now, so a bad --db fails before a long scan; the returned
    function records the scan's result in it."""
    if db == ":default:":  # plain --db
        db = default_db()
    ws = open_workspace(db, create=True)

    def record(result: ScanResult) -> None:
        try:
            done = ws.record_scan(result)
        finally:
            ws.close()
        _err(
            f"recorded scan {done.scan_id} in {db}: {done.findings} findings "
            f"({done.new} new, {done.reopened} reopened, {done.resolved} resolved)"
        )

    return record


# ---------------------------------------------------------------------------------------------
# findings


def _warn_unsafe(plan: Plan) -> None:
    """A warning line for each unsafe change of a plan (an address or sign-in name changes)."""
    for intent in plan.unsafe:
        if intent.action == DecisionAction.EDIT:
            change = f"{_show(intent.old)} -> {_show(intent.new)}"
        else:
            change = f"REMOVE {_show(intent.old)}"
        _err(f"warning: unsafe: finding {intent.finding_id}: {intent.dn}: {intent.attribute} {change}")


def _show(value: str | None) -> str:
    """A value with invisible characters and edge spaces made visible. Ex) "a\u200b" -> 'a\\u200b'."""
    if value is None:
        return ""
    if value.isprintable() and value.strip() == value:
        return value
    return repr(value)


def _decision_text(sf: StoredFinding) -> str:
    d = sf.decision
    if d is None:
        return ""
    text = d.action.value
    if d.action == DecisionAction.EDIT:
        text += f" {_show(d.update)}"
    if d.state != "pending":
        text += f" ({d.state})"
    if d.warning:
        text += " !"
    return text


@click.command("findings")
@_filter_options
@click.option("--status", type=click.Choice(["open", "resolved", "all"]), default="open", show_default=True)
@click.option("--decided/--undecided", "decided", default=None, help="Only findings with (without) a decision.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@click.option("--limit", type=click.IntRange(0), default=None, help="At most this many (0: all; table default 100).")
@_db_option
def findings_command(status: str, decided: bool | None, fmt: str, limit: int | None, db: str, **options: Any) -> None:
    """List the findings of the latest scan with their ids and decisions.

    \b
    Examples:
      syncprep findings --error duplicate
      syncprep findings --safety safe --undecided
      syncprep findings --format jsonl > findings.jsonl
    """
    filters = _filters(options, decided)
    with open_workspace(db) as ws:
        scan = ws.require_scan()
        if fmt == "jsonl":
            for sf in ws.findings(filters, status=status, limit=limit or None):
                sys.stdout.write(json.dumps(sf.to_dict(), ensure_ascii=False) + "\n")
            return
        shown = 100 if limit is None else limit
        total = ws.count(filters, status=status)
        rows = ws.findings(filters, status=status, limit=shown or None)
    table = Table(title=f"scan {scan.id} ({scan.started_at}): {total} {status} finding(s)", title_justify="left")
    for column in ("id", "object", "attribute", "value", "error", "safety", "proposed", "decision"):
        table.add_column(column, overflow="fold")
    for sf in rows:
        f = sf.finding
        proposed = f.action.value + (f" {_show(f.update)}" if f.update is not None else "")
        table.add_row(
            str(sf.id),
            escape(f.cn),
            f.attribute,
            escape(_show(f.value)),
            ",".join(e.value for e in f.errors),
            f.safety.value,
            escape(proposed),
            escape(_decision_text(sf)),
        )
    console = Console(highlight=False)
    console.print(table)
    if len(rows) < total:
        console.print(f"showing {len(rows)} of {total}: --limit 0 shows all, --format jsonl for scripts")


# ---------------------------------------------------------------------------------------------
# accept, edit


@click.command("accept")
@_filter_options
@click.option("--all", "select_all", is_flag=True, help="Every finding (filters narrow it down).")
@click.option("--value", metavar="VALUE", help="EDIT the selected findings to this value (manual ones included).")
@click.option("--replace", is_flag=True, help="Also overwrite decisions already made (never applied ones).")
@_db_option
def accept_command(select_all: bool, value: str | None, replace: bool, db: str, **options: Any) -> None:
    """Accept the proposed fix (action and value) of the selected findings.

    Manual findings without a proposed value are left alone, unless --value gives one.

    \b
    Examples:
      syncprep accept --safety safe
      syncprep accept --error whitespace --kind user
      syncprep accept --rule U008 --dn-suffix OU=Staff,DC=contoso,DC=com
    """
    filters = _filters(options)
    with open_workspace(db) as ws:
        result = accept(ws, filters, select_all=select_all, value=value, replace=replace)
    for warning in result.warnings:
        _err(f"warning: {warning}")
    detail = ", ".join(f"{n} {s}" for s, n in sorted(result.by_safety.items()))
    click.echo(f"accepted {result.accepted} finding(s)" + (f" ({detail})" if detail else ""))
    if result.already_decided:
        click.echo(f"left {result.already_decided} already decided as they are (--replace overwrites them)")
    if result.need_value:
        click.echo(
            f"left {result.need_value} that need a value from you: syncprep edit ID --update VALUE (or --action ...)"
        )


@click.command("edit")
@click.argument("finding_id", type=int)
@click.option("--update", metavar="VALUE", help="Write this value (EDIT).")
@click.option(
    "--action",
    type=click.Choice([a.value for a in DecisionAction], case_sensitive=False),
    help="EDIT (the proposed value), REMOVE the value, COMPLETE (fine as is) or SKIP.",
)
@click.option("--clear", is_flag=True, help="Forget the decision.")
@_db_option
def edit_command(finding_id: int, update: str | None, action: str | None, clear: bool, db: str) -> None:
    """Decide one finding: a new value, or an action.

    \b
    Examples:
      syncprep edit 42 --update bob.smith@contoso.com
      syncprep edit 43 --action REMOVE
    """
    with open_workspace(db) as ws:
        result = edit(ws, finding_id, update=update, action=action, clear=clear)
    if result.warning:
        _err(f"warning: finding {finding_id}: {result.warning}")
    f = result.finding.finding
    if result.action is None:
        click.echo(f"finding {finding_id}: decision cleared")
    elif result.action == DecisionAction.EDIT:
        click.echo(f"finding {finding_id}: EDIT {f.attribute} {_show(f.value)} -> {_show(result.update)}")
    else:
        click.echo(f"finding {finding_id}: {result.action.value} {f.attribute} {_show(f.value)}")


# ---------------------------------------------------------------------------------------------
# export, import


@click.command("export")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@_filter_options
@click.option("--status", type=click.Choice(["open", "resolved", "all"]), default="open", show_default=True)
@click.option(
    "--separator",
    default=",",
    show_default=True,
    metavar="SEP",
    help="Cell separator: ',' or ';' (Excel in many European locales) or 'tab'.",
)
@_db_option
def export_command(file: str, status: str, separator: str, db: str, **options: Any) -> None:
    """Write findings and decisions as a CSV (IdFix's columns) to review in Excel.

    Set ACTION to EDIT, REMOVE, COMPLETE or SKIP (blank: undecided), change UPDATE where
    needed, save as CSV and bring it back with 'syncprep import'.
    """
    sep = _SEPARATORS.get(separator.lower())
    if sep is None:
        raise WorkspaceError(f"--separator {separator!r}: use ',', ';' or 'tab'")
    filters = _filters(options)
    with open_workspace(db) as ws:
        count = export_decisions(ws, file, filters, separator=sep, status=status)
    click.echo(f"exported {count} finding(s) to {file}")


@click.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check the file and report; change nothing.")
@_db_option
def import_command(file: str, dry_run: bool, db: str) -> None:
    """Read decisions back from a CSV (ours or IdFix's export): all rows or none.

    Every problem is reported with its line number; nothing changes unless every row is good.
    """
    with open_workspace(db) as ws:
        try:
            result = import_decisions(ws, file, dry_run=dry_run)
        except ImportRefused as exc:
            for problem in exc.problems:
                _err(f"{file}: {problem}")
            raise
    for warning in result.warnings:
        _err(f"warning: {warning}")
    what = "would set" if dry_run else "set"
    click.echo(
        f"{file}: {result.rows} row(s): {what} {result.set} decision(s), cleared {result.cleared}, "
        f"{result.unchanged} unchanged"
        + (f", {result.ignored_resolved} of resolved findings ignored" if result.ignored_resolved else "")
        + (f", {result.ignored_unknown} undecided rows of unknown findings ignored" if result.ignored_unknown else "")
        + (" (IdFix export)" if result.idfix else "")
    )


# ---------------------------------------------------------------------------------------------
# plan


@click.command("plan")
@click.option("-o", "--output", metavar="FILE", help="Write the LDIF to FILE instead of stdout.")
@click.option("--fold", type=click.IntRange(0), default=76, show_default=True, help="Fold lines (0: never).")
@_db_option
def plan_command(output: str | None, fold: int, db: str) -> None:
    """Print the accepted, not yet applied changes as LDIF change records.

    One record per object; each value change deletes the exact old value and adds the new one,
    so the server refuses a change to a value that changed since the scan. Usable with
    'ldapmodify -f FILE' and 'ldifde -i -f FILE'.
    """
    with open_workspace(db) as ws:
        scan = ws.require_scan()
        plan = _plan_or_conflicts(ws)
    header = (
        f"syncprep plan: scan {scan.id} of {Path(db).name} ({scan.started_at}); {len(plan)} object(s), "
        f"{plan.deleted} value(s) deleted, {plan.added} added"
    )
    if fold and fold < 7:
        raise WorkspaceError("--fold must be 0 (never) or at least 7")
    if output is None or output == "-":
        write_plan(plan, sys.stdout, fold=fold, header=header)
    else:
        try:
            with open(output, "w", encoding="ascii", newline="\n") as out:
                write_plan(plan, out, fold=fold, header=header)
        except OSError as exc:
            raise WorkspaceError(f"cannot write {output}: {exc.strerror}") from None
    for note in plan.notes:
        _err(f"note: {note}")
    _warn_unsafe(plan)
    if not plan.objects:
        _err("plan: nothing to change (no accepted EDIT or REMOVE decisions pending)")
    else:
        _err(
            f"plan: {len(plan)} object(s), {plan.deleted} value(s) deleted, {plan.added} added; "
            f"{len(plan.unsafe)} unsafe"
        )


def register(group: click.Group) -> None:
    """Add the review commands to the main command group."""
    for command in (findings_command, accept_command, edit_command, export_command, import_command, plan_command):
        group.add_command(command)
    group.add_command(findings_command, "show")
    from .cli_apply import commands  # apply, undo, journal (with the connection options of .cli)

    for command in commands():
        group.add_command(command)


__all__ = ["default_db", "register", "scan_recorder"]
