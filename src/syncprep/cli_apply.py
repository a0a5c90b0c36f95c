"""The write-back commands: apply (and apply --resume), undo, journal.

A thin face over :mod:`syncprep.apply` and :mod:`syncprep.journal`; registered by
:func:`syncprep.cli_fix.register`. Connection options and messages are the scan's.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from . import __version__
from .apply import (
    MAX_CHANGES,
    Report,
    Stopped,
    apply_plan,
    check_batch_target,
    check_scan_target,
    check_threshold,
    check_undoable,
    connect,
    plan_value_changes,
    resume,
    undo,
    undo_changes,
    value_changes,
    writable_endpoint,
)
from .cli_fix import _db_option, _err, _plan_or_conflicts, _warn_unsafe
from .errors import ConfigError
from .journal import Batch, Journal, is_locked, show_value, writer_lock
from .plan import AttributeChange, ObjectChange, Plan, write_plan
from .runtime import paused_gc
from .sources.ldapclient import LdapSettings, WriteClient
from .workspace import open_workspace


def _max_changes_option(command: Any) -> Any:
    return click.option(
        "--max-changes",
        type=click.IntRange(0),
        default=MAX_CHANGES,
        show_default=True,
        metavar="N",
        help="Refuse to write more than N changed values in one batch (an edited value counts once, "
        "a removed or added value once). 500 is Entra Connect's own accidental-deletion threshold.",
    )(command)


def _settings(url: str, options: dict[str, Any]) -> LdapSettings:
    from .cli import _ldap_settings

    settings = _ldap_settings([url], options)
    assert settings is not None  # an ldap:// URL
    return settings


def _note(settings: LdapSettings, command: str, client: object) -> str:
    """Who wrote, how (never the password)."""
    creds = settings.credentials
    who = creds.user or ("the Kerberos ticket" if creds.method == "kerberos" else "anonymous")
    library = {"PythonLdapClient": "python-ldap", "Ldap3Client": "ldap3"}.get(type(client).__name__, settings.client)
    return f"{command} by syncprep {__version__} as {who} ({creds.method}, {library})"


def _print_report(report: Report) -> None:
    for outcome in report.failed:
        c = outcome.change
        change = ", ".join(show_value(v) for v in c.old) or "(none)"
        change += " -> " + (", ".join(show_value(v) for v in c.new) or "(removed)")
        _err(f"refused: {c.dn}: {c.attribute} {change}: {outcome.message}")
    for c, message in report.unsettled:
        _err(f"not settled: {c.dn}: {c.attribute}: {message}")
    click.echo(report.summary())


def _exit_code(reports: list[Report]) -> int:
    return 1 if any(r.failed or r.unsettled for r in reports) else 0


def _progress(total: int, verb: str) -> Any:
    """A line on stderr every ~10 % of a large batch (terminals only)."""
    if total < 2000 or not sys.stderr.isatty():
        return None
    done = 0
    step = max(total // 10, 1)
    mark = step

    def advance(n: int) -> None:
        nonlocal done, mark
        done += n
        if done >= mark:
            _err(f"{verb} {done:,} of {total:,} object(s)")
            mark += step

    return advance


# ---------------------------------------------------------------------------------------------
# apply


def apply_command(
    source_url: str | None, yes: bool, max_changes: int, resume_: bool, force: bool, db: str, **options: Any
) -> None:
    """Send the accepted changes to the directory (a dry run unless --yes).

    Each object's change is one modify request that deletes the exact old values and adds the
    new ones: the server applies it whole, or refuses it when a value changed since the scan.
    Every change is journaled before it is sent; 'syncprep journal' lists the batches and
    'syncprep undo BATCH' reverts one. Exit code 0: all applied; 1: some refused; 2: an error.

    \b
    Examples:
      syncprep apply ldaps://dc1.contoso.com                       (dry run: prints the LDIF)
      syncprep apply ldaps://dc1.contoso.com --yes --user admin@contoso.com --password-env PW
      syncprep apply --resume --user admin@contoso.com --password-env PW
    """
    if resume_:
        _resume(source_url, force, db, options)
        return
    if source_url is None:
        raise click.UsageError("apply needs the SOURCE_URL to write to (ldaps://dc1.contoso.com)")
    endpoint = writable_endpoint(source_url)
    with open_workspace(db) as ws, paused_gc():
        scan = ws.require_scan()
        journal = Journal(ws)
        unfinished = journal.unfinished()
        plan = _plan_or_conflicts(ws)
        warning = check_scan_target(scan, endpoint, force)
        if warning:
            _err(f"warning: {warning}")
        values = plan_value_changes(plan)
        if unfinished:
            ids = ", ".join(str(b.id) for b in unfinished)
            raise ConfigError(
                f"batch {ids} did not finish (interrupted or disconnected): run 'syncprep apply --resume' "
                "first ('syncprep journal' shows what reached the server)"
            )
        if not plan.objects:
            _err("apply: nothing to change (no accepted EDIT or REMOVE decisions pending)")
            return
        for note in plan.notes:
            _err(f"note: {note}")
        what = f"{len(plan)} modify request(s), {values} value change(s) ({len(plan.unsafe)} unsafe)"
        if not yes:
            header = f"syncprep apply (dry run): scan {scan.id}, {what}, for {endpoint.url}"
            write_plan(plan, sys.stdout, header=header)
            _warn_unsafe(plan)
            _dry_run_done(what, endpoint, values, max_changes)
            return
        check_threshold(values, max_changes)
        settings = _settings(source_url, options)
        report = _write(
            ws,
            endpoint,
            settings,
            f"apply: sending {what} to {endpoint.url}",
            lambda client: apply_plan(
                ws,
                plan,
                client,
                endpoint,
                settings,
                note=_note(settings, "apply", client),
                progress=_progress(len(plan), "sent"),
            ),
        )
    _print_report(report)
    if report.failed:
        _err("the refused changes are recorded (syncprep journal); their findings show decision state 'failed'")
    sys.exit(_exit_code([report]))


def _dry_run_done(what: str, endpoint: Any, values: int, max_changes: int) -> None:
    extra = f" --max-changes {values}" if values > max_changes else ""
    _err(f"dry run: would send {what} to {endpoint.url}; nothing was written: add --yes{extra} to write")


def _write(ws: Any, endpoint: Any, settings: LdapSettings, message: str, operation: Any) -> Report:
    """Connect (holding the workspace's writer lock), say what is sent, run the operation, close."""
    with writer_lock(ws.path):
        client = connect(endpoint, settings)
        try:
            _err(message)
            return _run(lambda: operation(client))
        finally:
            client.close()


def _run(action: Any) -> Report:
    """Run a write; when it stops early, print what it did before the one-line error."""
    try:
        report: Report = action()
    except Stopped as exc:
        _print_report(exc.report)
        raise
    return report


def _resume(source_url: str | None, force: bool, db: str, options: dict[str, Any]) -> None:
    reports = []
    with open_workspace(db) as ws, writer_lock(ws.path), paused_gc():
        journal = Journal(ws)
        unfinished = journal.unfinished()
        if not unfinished:
            click.echo("nothing to resume: every batch finished ('syncprep journal' lists them)")
            return
        clients: dict[str, tuple[WriteClient, Any, LdapSettings]] = {}
        try:
            for batch in unfinished:
                endpoint = writable_endpoint(source_url or batch.source_url)
                check_batch_target(batch, endpoint, force)
                if endpoint.url not in clients:
                    settings = _settings(source_url or batch.source_url, options)
                    clients[endpoint.url] = (connect(endpoint, settings), endpoint, settings)
                client, endpoint, settings = clients[endpoint.url]
                pending = batch.counts.get("queued", 0) + batch.counts.get("unknown", 0)
                _err(f"resume: batch {batch.id} ({batch.kind}): {pending} change(s) without an answer; reading them")
                note = _note(settings, "resume", client)
                reports.append(
                    _run(lambda b=batch, c=client, e=endpoint, s=settings, n=note: resume(ws, b, c, e, s, note=n))
                )
                _print_report(reports[-1])
        finally:
            for client, _e, _s in clients.values():
                client.close()
    sys.exit(_exit_code(reports))


# ---------------------------------------------------------------------------------------------
# undo


def undo_command(
    batch_id: int, source_url: str | None, yes: bool, max_changes: int, force: bool, db: str, **options: Any
) -> None:
    """Revert every applied change of a batch (a dry run unless --yes).

    Each object is read first and its change reverted only where the values are still what the
    batch wrote; the inverse modify (delete the new values, add the old ones) carries the same
    guard. The undo is a batch of its own in the journal. SOURCE_URL: the batch's, by default.

    \b
    Examples:
      syncprep undo 3                                  (dry run)
      syncprep undo 3 --yes --user admin@contoso.com --password-env PW
    """
    with open_workspace(db) as ws, paused_gc():
        journal = Journal(ws)
        batch = journal.batch(batch_id)
        url = source_url or batch.source_url
        endpoint = writable_endpoint(url)
        check_batch_target(batch, endpoint, force)
        check_undoable(journal, batch)
        changes = undo_changes(journal, batch)
        values = value_changes([(c.old, c.new) for c in changes])
        objects = len({c.seq for c in changes})
        what = f"{objects} modify request(s), {values} value change(s)"
        if not yes:
            plan = _as_plan(changes)
            write_plan(plan, sys.stdout, header=f"syncprep undo {batch.id} (dry run): {what}, for {endpoint.url}")
            _dry_run_done(what, endpoint, values, max_changes)
            return
        check_threshold(values, max_changes, f"undoing batch {batch.id}")
        settings = _settings(url, options)
        report = _write(
            ws,
            endpoint,
            settings,
            f"undo: batch {batch.id}: reading and reverting {what} on {endpoint.url}",
            lambda client: undo(
                ws,
                batch,
                client,
                endpoint,
                settings,
                note=_note(settings, f"undo of batch {batch.id}", client),
                progress=_progress(objects, "reverted"),
            ),
        )
    _print_report(report)
    sys.exit(_exit_code([report]))


def _as_plan(changes: Any) -> Plan:
    objects: dict[int, tuple[str, list[AttributeChange]]] = {}
    for c in changes:
        objects.setdefault(c.seq, (c.dn, []))[1].append(AttributeChange(c.attribute, c.old, c.new, c.finding_ids))
    return Plan(tuple(ObjectChange(dn, tuple(items)) for dn, items in objects.values()))


# ---------------------------------------------------------------------------------------------
# journal

STATES = ("queued", "unknown", "applied", "failed", "undone")


def _status(batch: Batch, workspace: Path) -> str:
    if batch.finished:
        return "finished"
    return "running" if is_locked(workspace) else "interrupted"


@click.command("journal")
@click.argument("batch_id", type=int, required=False, metavar="[BATCH]")
@click.option("--state", "states", multiple=True, type=click.Choice(STATES), help="Only changes in this state.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@_db_option
def journal_command(batch_id: int | None, states: tuple[str, ...], fmt: str, db: str) -> None:
    """List the write-back batches, or every change of one batch with its state and the server's message.

    \b
    States: applied, failed (refused by the server, or a conflict found by --resume),
    undone (reverted by an undo batch), queued (never sent), unknown (sent, no answer
    recorded: 'syncprep apply --resume' reads the object and settles it).

    \b
    Examples:
      syncprep journal
      syncprep journal 3 --state failed
      syncprep journal 3 --format jsonl
    """
    with open_workspace(db) as ws:
        journal = Journal(ws)
        if batch_id is None:
            batches = journal.batches()
            if fmt == "jsonl":
                for b in batches:
                    sys.stdout.write(json.dumps(b.to_dict(_status(b, ws.path)), ensure_ascii=False) + "\n")
                return
            _batch_table(batches, ws.path)
            return
        batch = journal.batch(batch_id)
        changes = [c for c in journal.changes(batch_id) if not states or c.shown_state in states]
        status = _status(batch, ws.path)
    if fmt == "jsonl":
        for c in changes:
            sys.stdout.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
        return
    kind = f"undo of batch {batch.undoes}" if batch.kind == "undo" else "apply"
    title = f"batch {batch.id}: {kind} to {batch.source_url}, {batch.created_at} ({status}); " + ", ".join(
        f"{n} {s}" for s, n in sorted(batch.counts.items())
    )
    table = Table(title=escape(title), title_justify="left")
    for column in ("#", "object", "attribute", "old", "new", "state", "message"):
        table.add_column(column, overflow="fold")
    for c in changes:
        table.add_row(
            str(c.seq),
            escape(c.dn),
            c.attribute,
            escape(", ".join(show_value(v) for v in c.old)),
            escape(", ".join(show_value(v) for v in c.new)),
            c.shown_state,
            escape(c.to_dict()["message"] or ""),  # type: ignore[arg-type]
        )
    console = Console(highlight=False)
    console.print(table)
    if batch.note:
        console.print(escape(batch.note), soft_wrap=True)
    if status == "interrupted":
        console.print("this batch did not finish: 'syncprep apply --resume' settles it")


def _batch_table(batches: list[Batch], workspace: Path) -> None:
    console = Console(highlight=False)
    if not batches:
        console.print("no batches yet: 'syncprep apply SOURCE_URL --yes' writes the accepted changes")
        return
    table = Table(title=f"{len(batches)} batch(es)", title_justify="left")
    for column in ("batch", "created (UTC)", "kind", "target", "scan", "status", "changes"):
        table.add_column(column, overflow="fold")
    for b in batches:
        kind = f"undo of {b.undoes}" if b.kind == "undo" else "apply"
        counts = ", ".join(f"{b.counts[s]} {s}" for s in STATES if b.counts.get(s))
        table.add_row(
            str(b.id),
            b.created_at[:19].replace("T", " "),
            kind,
            escape(b.source_url),
            str(b.scan_id or ""),
            _status(b, workspace),
            counts or "none",
        )
    console.print(table)


@functools.cache
def commands() -> tuple[click.Command, ...]:
    """apply, undo and journal as click commands. Built on first use: they take the scan's
    connection options from .cli, which registers them (so this module imports .cli lazily)."""
    from .cli import _ldap_options

    apply = click.command("apply")(
        click.argument("source_url", required=False, metavar="SOURCE_URL")(
            _YES(
                _max_changes_option(
                    click.option(
                        "--resume",
                        "resume_",
                        is_flag=True,
                        help="Finish an interrupted batch (SOURCE_URL: the batch's, by default).",
                    )(
                        click.option(
                            "--force", is_flag=True, help="Write to another server than the one the plan's scan read."
                        )(_db_option(_ldap_options(apply_command)))
                    )
                )
            )
        )
    )
    undo = click.command("undo")(
        click.argument("batch_id", type=int, metavar="BATCH")(
            click.argument("source_url", required=False, metavar="[SOURCE_URL]")(
                _YES(
                    _max_changes_option(
                        click.option(
                            "--force", is_flag=True, help="Write to another server than the one the batch wrote to."
                        )(_db_option(_ldap_options(undo_command)))
                    )
                )
            )
        )
    )
    return apply, undo, journal_command


_YES = click.option("--yes", is_flag=True, help="Write. Without it: a dry run that prints what would be sent.")

__all__ = ["apply_command", "commands", "journal_command", "undo_command"]
