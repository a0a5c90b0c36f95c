"""Benchmark: `syncprep apply` beside OpenLDAP's ldapmodify, writing the same 10,000 value changes.

    tests/servers/slapd.sh up          # 100,000 AD-shaped objects on 127.0.0.1:3890
    python bench/apply.py              # ldapmodify, then syncprep apply with each installed client
    python bench/apply.py --changes 2000 --runs 1 --clients ldap3

The bench picks N objects that have a `description` (an attribute no scan rule reads, so scans
running beside it see nothing change), records a workspace whose accepted decisions edit each of
them (`description` -> `description (bench)`), and writes the plan with `syncprep plan`. Then,
per run and from the same starting values:

- `ldapmodify -f plan.ldif` applies the plan (one synchronous modify per object), and a reverse
  LDIF puts the values back (not timed);
- `syncprep apply --yes` applies the same plan from a fresh copy of the workspace: journal
  included (every change durable in the journal before it is sent, results recorded);
- `syncprep undo --yes` reverts that batch (timed too, for information), which also restores the
  starting values for the next run.

Each measurement is its own process, process start-up included (`ldapmodify` starts in
milliseconds, syncprep's Python in about half a second). Wall time comes from wait4 (its peak RSS
is left out: a child forked from this bench reports the bench's own).
The bind is cn=admin over plain LDAP on the loopback (--allow-plain-bind); the password reaches
both tools through a file or an environment variable, never the command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from live import require, slapd_parser  # noqa: E402
from scan import measure  # noqa: E402
from syncprep.decisions import accept  # noqa: E402
from syncprep.engine import ScanOptions, ScanResult  # noqa: E402
from syncprep.model import Action, ErrorType, Finding, ObjectKind, Safety, Severity  # noqa: E402
from syncprep.plan import build_plan, write_plan  # noqa: E402
from syncprep.workspace import Filters, open_workspace  # noqa: E402

SUFFIX = " (bench)"


def current_values(url: str, bind_dn: str, password: str, base: str, n: int) -> list[tuple[str, str]]:
    """(dn, description) of the first n objects with one description, read with python-ldap (paged)."""
    import ldap
    from ldap.controls import SimplePagedResultsControl

    conn = ldap.initialize(url, bytes_mode=False)
    conn.simple_bind_s(bind_dn, password)
    control = SimplePagedResultsControl(True, size=1000, cookie="")
    out: list[tuple[str, str]] = []
    while len(out) < n:
        msgid = conn.search_ext(
            base, ldap.SCOPE_SUBTREE, "(&(description=*)(!(description=*bench*)))", ["description"],
            serverctrls=[control],
        )  # fmt: skip
        _t, data, _m, controls = conn.result3(msgid)
        for dn, attrs in data:
            values = attrs.get("description") or []
            if dn and len(values) == 1:
                out.append((dn, values[0].decode("utf-8")))
        cookie = next((c.cookie for c in controls if c.controlType == SimplePagedResultsControl.controlType), b"")
        if not cookie:
            break
        control.cookie = cookie
    conn.unbind_s()
    if len(out) < n:
        raise SystemExit(f"only {len(out)} objects with a description under {base}; use --changes {len(out)}")
    return out[:n]


def make_workspace(path: Path, url: str, targets: list[tuple[str, str]]) -> None:
    """A workspace with one accepted EDIT per target (as if a scan of the server had found them)."""
    findings = [
        Finding(
            dn=dn,
            cn=dn.split(",", 1)[0].split("=", 1)[-1],
            object_class=ObjectKind.USER,
            attribute="description",
            value=value,
            errors=(ErrorType.FORMAT,),
            rule="BENCH",
            rules=("BENCH",),
            severity=Severity.WARNING,
            update=value + SUFFIX,
            safety=Safety.SAFE,
            action=Action.EDIT,
        )
        for dn, value in targets
    ]
    result = ScanResult(
        findings, __import__("collections").Counter(), [], len(targets), len(targets), (url,), (), ScanOptions()
    )
    with open_workspace(path, create=True) as ws:
        ws.record_scan(result)
        accept(ws, Filters(), select_all=True)


def reverse_ldif(targets: list[tuple[str, str]], out: Path) -> None:
    """description (bench) -> description, for ldapmodify."""
    import base64

    def line(name: str, value: str) -> str:
        if value.isascii() and value.isprintable() and value.strip() == value and not value.startswith((":", "<")):
            return f"{name}: {value}"
        return f"{name}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}"

    with open(out, "w", encoding="ascii", newline="\n") as f:
        for dn, value in targets:
            f.write(f"{line('dn', dn)}\nchangetype: modify\ndelete: description\n")
            f.write(f"{line('description', value + SUFFIX)}\n-\nadd: description\n{line('description', value)}\n-\n\n")


def main() -> None:
    parser = slapd_parser(__doc__)
    parser.add_argument("--changes", type=int, default=10_000, help="value changes (one object each)")
    args = parser.parse_args()
    password = require("ldapmodify", args)
    env_name = "SYNCPREP_BENCH_PASSWORD"
    os.environ[env_name] = password

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        password_file = tmp / "password"
        password_file.write_text(password, encoding="utf-8")  # ldapmodify -y reads it verbatim
        password_file.chmod(0o600)
        targets = current_values(args.url, args.bind_dn, password, args.base, args.changes)
        template = tmp / "template.db"
        make_workspace(template, args.url, targets)
        plan_file = tmp / "plan.ldif"
        with open_workspace(template) as ws:
            plan = build_plan(ws)
        with open(plan_file, "w", encoding="ascii", newline="\n") as f:
            write_plan(plan, f)
        reverse = tmp / "reverse.ldif"
        reverse_ldif(targets, reverse)

        ldapmodify = ["ldapmodify", "-x", "-H", args.url, "-D", args.bind_dn, "-y", str(password_file)]
        rows: dict[str, list[tuple[float, float, int]]] = {"ldapmodify -f plan.ldif (C, synchronous)": []}
        for client in args.clients.split(","):
            rows[f"syncprep apply --yes --client {client}"] = []
            rows[f"syncprep undo --yes --client {client} (info)"] = []
        journal_rows = 0
        for run in range(args.runs):
            rows["ldapmodify -f plan.ldif (C, synchronous)"].append(measure([*ldapmodify, "-f", str(plan_file)]))
            subprocess.run([*ldapmodify, "-f", str(reverse)], check=True, stdout=subprocess.DEVNULL)
            for client in args.clients.split(","):
                db = tmp / f"run{run}-{client}.db"
                shutil.copyfile(template, db)
                common = ["--db", str(db), "--client", client, "--auth", "simple", "--user", args.bind_dn]
                common += ["--password-env", env_name, "--allow-plain-bind", "--max-changes", str(args.changes)]
                argv = [sys.executable, "-m", "syncprep", "apply", args.url, "--yes", *common]
                result = measure(argv)
                if result[2] != 0:
                    raise SystemExit(f"syncprep apply refused changes (exit {result[2]}): see 'syncprep journal'")
                rows[f"syncprep apply --yes --client {client}"].append(result)
                with open_workspace(db) as ws:
                    journal_rows = ws.conn.execute("SELECT count(*) FROM changes WHERE state = 'applied'").fetchone()[0]
                undo = [sys.executable, "-m", "syncprep", "undo", "1", args.url, "--yes", *common]
                rows[f"syncprep undo --yes --client {client} (info)"].append(measure(undo))
        if journal_rows != args.changes:
            raise SystemExit(f"the journal holds {journal_rows} applied changes, not {args.changes}")

    floor = min(wall for wall, _rss, _code in rows["ldapmodify -f plan.ldif (C, synchronous)"])
    print(f"\n{args.changes:,} value changes (one modify each) at {args.url}, best of {args.runs} runs")
    print(f"{'writer':46} {'wall s':>8} {'changes/s':>10} {'× ldapmodify':>13}")
    for name, runs in rows.items():
        wall = min(w for w, _r, _c in runs)
        print(f"{name:46} {wall:8.2f} {args.changes / wall:10,.0f} {wall / floor:13.2f}")


if __name__ == "__main__":
    main()
