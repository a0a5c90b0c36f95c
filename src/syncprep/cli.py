"""The command line: a thin face over the library.

Exit codes: 0 no findings, 1 findings, 2 usage, input or internal error (one line on stderr).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from . import __version__
from .engine import ScanOptions, ScanResult, scan
from .errors import ConfigError, SyncprepError
from .rules.catalog import BY_CODE, RULES, Rule, select_rules
from .rules.context import EXCLUSION_SETS, PROFILES
from .sources import DEMO, DEMO_TENANT, DEMO_VERIFIED_DOMAINS, open_source
from .sources.base import Progress, Source
from .sources.ldap import AUTH_METHODS, CLIENTS, Credentials, LdapSettings, Secret, is_ldap_url, parse_url, user_filter

FORMATS = ("text", "json", "jsonl", "csv")


def _split_items(values: Sequence[str]) -> tuple[str, ...]:
    """Comma- or space-separated items from repeated options. Ex) ("U,P1", "X001") -> U, P1, X001."""
    return tuple(item for v in values for item in v.replace(",", " ").split() if item)


def _domains(values: Sequence[str]) -> tuple[str, ...]:
    """--verified-domains: a list, or @file with one domain per line (# comments allowed)."""
    out: list[str] = []
    for value in values:
        if value.startswith("@"):
            path = Path(value[1:])
            try:
                text = path.read_text(encoding="utf-8-sig")
            except OSError as exc:
                raise ConfigError(f"cannot read verified domains from {path}: {exc.strerror}") from None
            lines = [line.split("#", 1)[0] for line in text.splitlines()]
            out.extend(_split_items(lines))
        else:
            out.extend(_split_items([value]))
    return tuple(out)


class _DelayedProgress:
    """A progress bar on stderr that appears only when the work takes more than a second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: RichProgress | None = None
        self.task: TaskID | None = None

    def for_source(self, source: Source) -> Progress:
        if not self.enabled:
            return lambda _n: None
        total = source.size
        started = time.monotonic()
        done = 0
        unit = "lines" if source.name.lower().endswith((".ldif", ".ldf")) else "bytes"
        if total is None:
            unit = "objects"

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if self.bar is None:
                if time.monotonic() - started < 1.0:
                    return
                columns = (
                    (BarColumn(), MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(), TimeRemainingColumn())
                    if total is not None
                    # A directory does not say in advance how many objects it holds: count, rate, time.
                    else (_CountColumn(unit), TimeElapsedColumn())
                )
                self.bar = RichProgress(
                    TextColumn("{task.description}"),
                    *columns,
                    transient=True,
                    console=Console(stderr=True),
                )
                self.bar.start()
            if self.task is None:
                label = source.name if "://" in source.name else Path(source.name).name
                self.task = self.bar.add_task(f"reading {label}", total=total)
            self.bar.update(self.task, completed=min(done, total or done))

        return advance

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


class _CountColumn(ProgressColumn):
    """'12,000 objects  3,400/s' for work of unknown size."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        rate = f"  {task.speed:,.0f}/s" if task.speed else ""
        return Text(f"{int(task.completed):,} {self.unit}{rate}")


@contextmanager
def _output(path: str | None, fmt: str) -> Iterator[TextIO]:
    if path is None or path == "-":
        yield sys.stdout
        return
    # Excel opens UTF-8 CSV correctly only with a byte-order mark.
    encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
    try:
        handle = open(path, "w", encoding=encoding, newline="" if fmt == "csv" else None)  # noqa: SIM115
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
    with handle:
        yield handle


def _report(result: ScanResult, out: TextIO, fmt: str, show_skipped: bool) -> None:
    from .output import formats, text

    if fmt == "text":
        text.write_text(result, out, color=out is sys.stdout and sys.stdout.isatty(), show_skipped=show_skipped)
    elif fmt == "json":
        formats.write_json(result, out)
    elif fmt == "jsonl":
        formats.write_jsonl(result, out)
    else:
        if out is sys.stdout and hasattr(out, "reconfigure"):
            out.reconfigure(newline="")
        formats.write_csv(result, out)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="syncprep")
def main() -> None:
    """Find and fix the Active Directory objects that break Microsoft 365 directory sync.

    Start with the bundled sample:  syncprep scan demo
    """


def _ldap_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options of live directory sources (ldap://, ldaps://, gc://, gcs://)."""
    options = [
        click.option(
            "--base", metavar="DN", help="LDAP search base (default: the server's naming context; the forest on gc://)."
        ),
        click.option(
            "--filter",
            "ldap_filter",
            metavar="FILTER",
            help="LDAP filter ANDed with users/groups/contacts, e.g. '(department=Sales)' or 'company=R&D (Paris)'.",
        ),
        click.option(
            "--page-size",
            type=click.IntRange(0, 100_000),
            default=1000,
            show_default=True,
            help="Entries per LDAP page (AD serves at most 1000); 0 reads without paging.",
        ),
        click.option("--start-tls", is_flag=True, help="Upgrade ldap:// and gc:// connections with StartTLS."),
        click.option(
            "--ca-file",
            type=click.Path(exists=True, dir_okay=False),
            help="CA certificate(s) (PEM) that issued the server's TLS certificate.",
        ),
        click.option("--insecure", is_flag=True, help="Do not check the server's TLS certificate (not recommended)."),
        click.option(
            "--timeout", type=click.FloatRange(0.1), default=30.0, show_default=True, help="LDAP network timeout (s)."
        ),
        click.option(
            "--auth",
            type=click.Choice(AUTH_METHODS),
            help="How to sign in: simple, ntlm, kerberos, anonymous "
            "(default: kerberos without --user; ntlm for DOMAIN\\name without TLS; simple otherwise).",
        ),
        click.option("--user", metavar="NAME", help="Sign in as NAME (UPN, DOMAIN\\name or DN)."),
        click.option(
            "--password-env", metavar="VAR", help="Read the password from environment variable VAR (not its value)."
        ),
        click.option(
            "--password-file",
            type=click.Path(dir_okay=False),
            help="Read the password from the first line of this file (- for standard input).",
        ),
        click.option("--allow-plain-bind", is_flag=True, help="Allow a simple bind without TLS (sends the password)."),
        click.option(
            "--client",
            "ldap_client",
            type=click.Choice(CLIENTS),
            default="auto",
            show_default=True,
            help="LDAP library: python-ldap (fast, from syncprep[fast]) when installed, else ldap3.",
        ),
        click.option("--password", "password_argument", hidden=True, help="Refused: see --password-env."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _password(password_env: str | None, password_file: str | None, needed: bool) -> Secret | None:
    """The bind password from a variable, a file or the prompt; never from the command line."""
    if password_env:
        value = os.environ.get(password_env)
        if value is None:
            raise ConfigError(f"--password-env {password_env}: no such environment variable is set")
        return Secret(value)
    if password_file == "-":  # standard input, as from a secrets manager: printf %s "$PW" | syncprep ...
        return Secret(sys.stdin.readline().rstrip("\r\n"))
    if password_file:
        try:
            with open(password_file, encoding="utf-8-sig") as handle:
                return Secret(handle.readline().rstrip("\r\n"))
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise ConfigError(f"cannot read --password-file {password_file}: {reason}") from None
    if not needed:
        return None
    if not sys.stdin.isatty():
        raise ConfigError(
            "a password is needed and there is no terminal to ask: use --password-env VAR or --password-file FILE "
            "(- reads it from standard input)"
        )
    return Secret(click.prompt("Password", hide_input=True, err=True))


def _default_auth(user: str | None, sources: Sequence[str], start_tls: bool) -> str:
    """Kerberos without a user; otherwise a simple bind, which AD and Samba take for every form
    of name. Only DOMAIN\\name over a connection without TLS signs in with NTLM instead, so that
    the password does not cross the network in clear text.
    Ex) 'CONTOSO\\ann' on ldaps:// -> simple; on ldap:// without --start-tls -> ntlm.
    """
    if not user:
        return "kerberos"
    protected = start_tls or all(parse_url(s).tls for s in sources if is_ldap_url(s))
    return "ntlm" if "\\" in user and not protected else "simple"


def _ldap_settings(sources: Sequence[str], options: dict[str, Any]) -> LdapSettings | None:
    if options.get("password_argument") is not None:
        raise ConfigError(
            "passwords are not taken on the command line (other users can read it in the process list): "
            "use --password-env VAR, --password-file FILE, or answer the prompt"
        )
    if not any(is_ldap_url(s) for s in sources):
        return None
    user = options.get("user")
    method = options.get("auth") or _default_auth(user, sources, options["start_tls"])
    if method in ("simple", "ntlm") and not user:
        raise ConfigError(f"--auth {method} needs --user")
    password = _password(options.get("password_env"), options.get("password_file"), needed=method in ("simple", "ntlm"))
    if options.get("insecure"):
        click.echo(
            "syncprep: WARNING: --insecure: the server's certificate is not checked; "
            "anyone on the network path can read and change what syncprep sees",
            err=True,
        )
    return LdapSettings(
        credentials=Credentials(method, user, password),
        base=options.get("base"),
        filter=user_filter(options.get("ldap_filter")),
        page_size=options["page_size"],
        start_tls=options["start_tls"],
        ca_file=options.get("ca_file"),
        insecure=options["insecure"],
        timeout=options["timeout"],
        allow_plain_bind=options["allow_plain_bind"],
        client=options["ldap_client"],
    )


@main.command("scan")
@click.argument("sources", nargs=-1, required=True, metavar="SOURCE...")
@click.option(
    "--profile",
    type=click.Choice(PROFILES),
    default="m365",
    show_default=True,
    help="Rule set: Microsoft 365 (m365) or the legacy dedicated rules.",
)
@click.option(
    "--verified-domains",
    multiple=True,
    metavar="LIST|@FILE",
    help="The tenant's verified domains (comma-separated, or @file with one per line); "
    "addresses elsewhere become 'unverifieddomain' findings.",
)
@click.option(
    "--tenant", metavar="NAME", help="The tenant's onmicrosoft.com name, so its own addresses are not 'reserved'."
)
@click.option(
    "--upn-suffix-map",
    multiple=True,
    metavar="OLD=NEW",
    help="Suggest NEW as the UPN suffix for UPNs ending in OLD (e.g. contoso.local=contoso.com).",
)
@click.option(
    "--exclusions",
    type=click.Choice(EXCLUSION_SETS),
    default="entra",
    show_default=True,
    help="Which objects to skip: what Entra Connect skips, IdFix's list, or none.",
)
@click.option(
    "--select",
    multiple=True,
    metavar="CODES",
    help="Only these rules: codes (U008), code prefixes (U, X00), rule names or error types.",
)
@click.option("--ignore", multiple=True, metavar="CODES", help="Leave out these rules (same forms as --select).")
@click.option(
    "--base-dn", "base_dns", multiple=True, metavar="DN", help="Only objects at or below this DN (repeatable)."
)
@click.option("--strict-ascii", is_flag=True, help="Also warn about non-ASCII letters in names.")
@click.option(
    "--max-proxy-addresses",
    type=click.IntRange(1),
    default=300,
    show_default=True,
    help="Warn above this many proxyAddresses on one object.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help="Output format.")
@click.option("-o", "--output", metavar="FILE", help="Write the report to FILE instead of stdout.")
@click.option("--show-skipped", is_flag=True, help="List every skipped object with its reason (text format).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("--no-progress", is_flag=True, help="Never show a progress bar.")
@click.option("--encoding", metavar="NAME", help="Encoding of CSV sources (default: UTF-8 or UTF-16 by BOM).")
@click.option("--separator", metavar="CHAR", help="Separator of multi-valued cells in CSV sources (default: detected).")
@click.option(
    "--db",
    is_flag=False,
    flag_value=":default:",
    default=None,
    metavar="[PATH]",
    help="Also record the scan in a workspace (default: $SYNCPREP_DB or syncprep.db) to review and fix.",
)
@_ldap_options
def scan_command(
    sources: tuple[str, ...],
    profile: str,
    verified_domains: tuple[str, ...],
    tenant: str | None,
    upn_suffix_map: tuple[str, ...],
    exclusions: str,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    base_dns: tuple[str, ...],
    strict_ascii: bool,
    max_proxy_addresses: int,
    fmt: str,
    output: str | None,
    show_skipped: bool,
    exit_zero: bool,
    no_progress: bool,
    encoding: str | None,
    separator: str | None,
    db: str | None,
    **ldap_options: Any,
) -> None:
    """Scan directories (ldap://, ldaps://, gc://, gcs://), exports (LDIF, CSV) or the sample ('demo').

    Several sources are scanned together: duplicates span all of them.
    Exit code 0 means no findings, 1 findings, 2 an error.

    \b
    Examples:
      syncprep scan demo
      syncprep scan export.ldif --verified-domains contoso.com,fabrikam.com
      syncprep scan ldaps://dc1.contoso.com --user admin@contoso.com --password-env SYNCPREP_PASSWORD
      syncprep scan gc://dc1.contoso.com --start-tls        (whole forest, Kerberos ticket)
    """
    domains = _domains(verified_domains)
    demo_tenant = DEMO in sources and not domains and not tenant
    if demo_tenant:
        # The sample organisation comes with its tenant, so every check has something to show.
        domains, tenant = DEMO_VERIFIED_DOMAINS, DEMO_TENANT
    options = ScanOptions(
        profile=profile,
        verified_domains=domains,
        tenant=tenant,
        upn_suffix_map=_split_items(upn_suffix_map),
        exclusions=exclusions,
        select=_split_items(select),
        ignore=_split_items(ignore),
        base_dns=base_dns,
        strict_ascii=strict_ascii,
        max_proxy_addresses=max_proxy_addresses,
    )
    select_rules(options.context(), options.select, options.ignore)  # option errors before any work
    for dn in base_dns:
        if "=" not in dn:
            raise ConfigError(f"--base-dn {dn!r} is not a distinguished name (e.g. OU=Staff,DC=contoso,DC=com)")
    ldap = _ldap_settings(sources, ldap_options)
    opened = [open_source(s, encoding=encoding, separator=separator, ldap=ldap, warn=_warn) for s in sources]
    if demo_tenant:
        click.echo(
            f"syncprep: demo: using the sample tenant ({DEMO_TENANT}, verified domains "
            f"{', '.join(DEMO_VERIFIED_DOMAINS)}); --tenant/--verified-domains override it",
            err=True,
        )
    if db is not None:
        from .cli_fix import scan_recorder

        record = scan_recorder(db)  # a bad workspace fails now, not after the scan
    progress = _DelayedProgress(enabled=not no_progress and sys.stderr.isatty())
    try:
        result = scan(opened, options, progress=progress.for_source)
    finally:
        progress.stop()
    if db is not None:
        record(result)
    with _output(output, fmt) as out:
        _report(result, out, fmt, show_skipped)
    sys.exit(0 if exit_zero else result.exit_code)


def _warn(message: str) -> None:
    click.echo(f"syncprep: warning: {message}", err=True)


def _rule_row(rule: Rule) -> tuple[str, ...]:
    return (
        rule.code,
        rule.name,
        rule.error.value,
        ", ".join(rule.attributes),
        ",".join(sorted(rule.profiles)) + (" (opt-in)" if rule.opt_in else ""),
        rule.summary,
    )


@main.command("rules")
@click.argument("code", required=False)
def rules_command(code: str | None) -> None:
    """List every check, or explain one (syncprep rules U008)."""
    from rich.table import Table

    console = Console(highlight=False)
    if code is None:
        table = Table(title=f"{len(RULES)} checks")
        for column in ("code", "name", "error type", "attributes", "profiles", "what it checks"):
            table.add_column(column, overflow="fold")
        for rule in RULES:
            table.add_row(*_rule_row(rule))
        console.print(table)
        return
    found = BY_CODE.get(code.upper()) or next((r for r in RULES if r.name == code.lower()), None)
    if found is None:
        raise ConfigError(f"no rule {code!r}: 'syncprep rules' lists them all")
    rule = found
    severity = ", ".join(f"{p}: {rule.severity_in(p).value}" for p in sorted(rule.profiles))
    console.print(f"[bold]{rule.code} {rule.name}[/bold]  ({rule.error.value}; {severity})")
    console.print(f"Attributes: {', '.join(rule.attributes)}")
    for heading, text in (
        ("What it does", rule.summary),
        ("Why it matters", rule.why),
        ("Example", rule.example),
        ("Fix safety", rule.fix),
    ):
        console.print(f"\n[bold]{heading}[/bold]\n  {text}")


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code; every error becomes one line on stderr."""
    try:
        main.main(args=list(argv) if argv is not None else None, prog_name="syncprep", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.exceptions.Abort:
        click.echo("syncprep: aborted", err=True)
        return 2
    except click.ClickException as exc:
        # One line, like every other error. Ex) "syncprep: error: Invalid value for '--format': ..."
        hint = " (see 'syncprep --help')" if isinstance(exc, click.UsageError) else ""
        click.echo(f"syncprep: error: {exc.format_message()}{hint}", err=True)
        return 2
    except SyncprepError as exc:
        click.echo(f"syncprep: error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo("syncprep: interrupted", err=True)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if os.environ.get("SYNCPREP_DEBUG"):
            raise
        click.echo(
            f"syncprep: internal error: {type(exc).__name__}: {exc} "
            "(set SYNCPREP_DEBUG=1 for details, and please report it)",
            err=True,
        )
        return 2
    return 0


def entry_point() -> None:
    sys.exit(run())


from .cli_fix import register  # noqa: E402  (the review commands: findings, accept, edit, export, import, plan)

register(main)
