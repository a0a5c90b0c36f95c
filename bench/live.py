"""Benchmark: a live syncprep scan beside OpenLDAP's ldapsearch, reading the same server.

    tests/servers/slapd.sh up          # 100,000 AD-shaped objects on 127.0.0.1:3890
    python bench/live.py               # ldapsearch, then syncprep with each installed client
    python bench/live.py --runs 1 --clients ldap3

ldapsearch pages (1000 entries a page), asks for the same attributes with the same filter as
syncprep, and writes to /dev/null: it is the floor for reading the directory. syncprep does its whole
scan: read, every m365 rule, findings written as JSONL. Each measurement runs in its own process;
wall time and peak RSS come from wait4. The password reaches both through a file or an environment
variable, never the command line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from scan import measure  # noqa: E402
from syncprep.engine import ScanOptions, needed_attributes  # noqa: E402
from syncprep.rules.catalog import select_rules  # noqa: E402
from syncprep.schema import canonical  # noqa: E402
from syncprep.sources.ldap import OBJECT_FILTER  # noqa: E402


def _ldapsearch(url: str, bind_dn: str, password_file: str, base: str) -> list[str]:
    """ldapsearch, simple bind, paged 1000 a page, LDIF without comments."""
    return [
        "ldapsearch",
        "-x",
        "-LLL",
        "-H",
        url,
        "-D",
        bind_dn,
        "-y",
        password_file,
        "-b",
        base,
        "-E",
        "pr=1000/noprompt",
    ]


def count_objects(url: str, bind_dn: str, password_file: str, base: str) -> int:
    """How many users, groups and contacts the server holds (one paged ldapsearch, DNs only)."""
    done = subprocess.run(
        [*_ldapsearch(url, bind_dn, password_file, base), OBJECT_FILTER, "1.1"],
        capture_output=True,
        check=True,
    )
    return sum(1 for line in done.stdout.splitlines() if line.startswith(b"dn:"))


def slapd_parser(doc: str | None) -> argparse.ArgumentParser:
    """Options of the benchmarks against the test slapd (tests/servers/slapd.sh)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="ldap://127.0.0.1:3890")
    parser.add_argument("--bind-dn", default="cn=admin,DC=contoso,DC=com")
    parser.add_argument("--password-env", default="SLAPD_PASSWORD", help="variable holding the bind password")
    parser.add_argument("--base", default="DC=contoso,DC=com")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement; the best is reported")
    parser.add_argument("--clients", default="python-ldap,ldap3", help="syncprep --client values to measure")
    return parser


def require(tool: str, args: argparse.Namespace) -> str:
    """Stop unless OpenLDAP's client TOOL is installed; the bind password."""
    if shutil.which(tool) is None:
        raise SystemExit(f"{tool} is not installed (Debian: apt-get install ldap-utils)")
    return os.environ.get(args.password_env, "syncprep-test")


def main() -> None:
    args = slapd_parser(__doc__).parse_args()
    password = require("ldapsearch", args)

    attributes = sorted(canonical(a) for a in needed_attributes(select_rules(ScanOptions().context(), (), ())))
    with tempfile.TemporaryDirectory() as tmp:
        password_file = Path(tmp) / "password"
        password_file.write_text(password, encoding="utf-8")  # ldapsearch -y reads it verbatim
        password_file.chmod(0o600)
        objects = count_objects(args.url, args.bind_dn, str(password_file), args.base)
        ldapsearch = [*_ldapsearch(args.url, args.bind_dn, str(password_file), args.base), OBJECT_FILTER, *attributes]
        rows = [("ldapsearch (C, paged, to /dev/null)", [measure(ldapsearch) for _ in range(args.runs)])]
        env_name = "SYNCPREP_BENCH_PASSWORD"
        os.environ[env_name] = password
        for client in args.clients.split(","):
            argv = [sys.executable, "-m", "syncprep", "scan", args.url, "--client", client, "--auth", "simple"]
            argv += ["--user", args.bind_dn, "--password-env", env_name, "--allow-plain-bind", "--base", args.base]
            argv += ["--format", "jsonl", "-o", "/dev/null", "--exit-zero", "--no-progress"]
            rows.append((f"syncprep scan --client {client}", [measure(argv) for _ in range(args.runs)]))

    floor = min(wall for wall, _rss, _code in rows[0][1])
    print(f"\n{objects:,} objects at {args.url}, best of {args.runs} runs; {len(attributes)} attributes read")
    print(f"{'reader':40} {'wall s':>8} {'objects/s':>11} {'peak RSS MB':>12} {'× ldapsearch':>13}")
    for name, runs in rows:
        wall = min(w for w, _r, _c in runs)
        rss = max(r for _w, r, _c in runs)
        print(f"{name:40} {wall:8.2f} {objects / wall:11,.0f} {rss:12.0f} {wall / floor:13.2f}")


if __name__ == "__main__":
    main()
