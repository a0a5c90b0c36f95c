#!/usr/bin/env python3
"""Turn an AD-shaped LDIF export (bench/generate.py, ldifde, ldapsearch) into slapadd input.

    slapd_ldif.py IN.ldif --suffix DC=contoso,DC=com [--svc-dn DN ... --svc-password-hash H] > load.ldif

What changes, and nothing else:
  - `changetype: add` lines go (slapadd reads content records only);
  - attributes the test schema (adschema.py) does not define are left out and counted on stderr
    (bench/generate.py writes two: internetEncoding, msExchRequireAuthToSendTo);
  - the suffix entry and every missing parent come first: DC= as domainDNS, OU= as
    organizationalUnit, CN= as container;
  - an optional service account entry (person with userPassword) is added under the suffix.
Values are copied byte for byte, folded lines stay folded. Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import re
import sys
from collections import Counter
from pathlib import Path

from adschema import ALL  # this directory is on sys.path when run as a script
from ldifrecords import split_dn

KNOWN = {a.name.lower() for a in ALL} | {"objectclass", "userpassword", "dn"}


def unescape(value: str) -> str:
    out, i = "", 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
                out += bytes.fromhex(pair).decode("latin-1")
                i += 3
                continue
            out += value[i + 1]
            i += 2
            continue
        out += value[i]
        i += 1
    return out


_DN = re.compile(rb"^dn(::?)[ ]*([^\n]*(?:\n [^\n]*)*)", re.M | re.I)


def dns_of(data: bytes) -> list[str]:
    """Every record's DN."""
    dns = []
    for m in _DN.finditer(data):
        value = m.group(2).replace(b"\n ", b"").strip()
        dns.append((base64.b64decode(value) if m.group(1) == b"::" else value).decode("utf-8"))
    return dns


def _parent(dn: str) -> str:
    if "\\" not in dn:
        return dn.partition(",")[2].strip()
    return ",".join(split_dn(dn)[1:])


_PARENT_CLASS = {"dc": ("domainDNS", "dc"), "ou": ("organizationalUnit", "ou")}


def parent_entries(dns: list[str], suffix: str) -> list[str]:
    """LDIF records for the suffix and every missing ancestor, parents before children."""
    have = {d.lower() for d in dns}
    n_suffix = len(split_dn(suffix))
    # the distinct parents first: a few dozen OUs hold 100,000 objects
    parents = {_parent(dn) for dn in dns}
    missing: dict[str, str] = {}
    for parent in parents:
        rdns = split_dn(parent)
        for i in range(len(rdns) - n_suffix + 1):
            ancestor = ",".join(rdns[i:])
            key = ancestor.lower()
            if key in have or key in missing:
                break
            missing[key] = ancestor
    missing.setdefault(suffix.lower(), suffix)
    out = []
    for parent in sorted(missing.values(), key=lambda d: (len(split_dn(d)), d.lower())):
        kind, _, value = split_dn(parent)[0].partition("=")
        value = unescape(value)
        cls, attr = _PARENT_CLASS.get(kind.lower(), ("container", "cn"))
        out.append(f"dn: {parent}\nobjectClass: top\nobjectClass: {cls}\n{_line(attr, value)}\n")
    return out


def _line(attr: str, value: str) -> str:
    if value.isascii() and value.isprintable() and value == value.strip() and not value.startswith((":", "<")):
        return f"{attr}: {value}"
    return f"{attr}:: {base64.b64encode(value.encode()).decode()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ldif")
    ap.add_argument("--suffix", required=True)
    ap.add_argument("--svc-dn", action="append", default=[], help="an account to add (repeatable)")
    ap.add_argument("--svc-password-hash", help="the accounts' userPassword")
    args = ap.parse_args()

    data = Path(args.ldif).read_bytes().replace(b"\r\n", b"\n")
    dns = dns_of(data)
    suffix_low = args.suffix.lower()
    outside = [d for d in dns if not (d.lower() == suffix_low or d.lower().endswith("," + suffix_low))]
    if outside:
        sys.stderr.write(f"{len(outside)} entries outside {args.suffix}, e.g. {outside[0]}\n")
        return 1
    # Whole lines (with their continuation lines) of comments and of attributes the schema does not
    # define (changetype and version among them) go. Patterns that start with a newline are fast.
    data = b"\n" + data
    names = set(re.findall(rb"\n([A-Za-z][A-Za-z0-9-]*)[;:]", data))
    unknown = sorted(n for n in names if n.decode("ascii").lower() not in KNOWN)
    dropped: Counter[str] = Counter()
    for name in unknown:
        data, n = re.subn(rb"\n" + re.escape(name) + rb"(?:;[^:\n]*)?:[^\n]*(?:\n [^\n]*)*", b"", data)
        dropped[name.decode("ascii").lower()] += n
    data = re.sub(rb"\n#[^\n]*(?:\n [^\n]*)*", b"", data).lstrip(b"\n")
    out = sys.stdout.buffer
    parents = parent_entries(dns, args.suffix)
    for rec in parents:
        out.write(rec.encode() + b"\n")
    for account in args.svc_dn:
        cn = unescape(split_dn(account)[0].partition("=")[2])
        out.write(
            f"dn: {account}\nobjectClass: top\nobjectClass: person\ncn: {cn}\n"
            f"description: test account (its limits and rights are in slapd.conf)\n"
            f"userPassword: {args.svc_password_hash}\n\n".encode()
        )
    out.write(data.rstrip(b"\n") + b"\n\n")
    out.flush()
    left_out = {n: c for n, c in sorted(dropped.items()) if n not in ("changetype", "version")}
    what = ", ".join(f"{c} {a}" for a, c in left_out.items()) or "none"
    accounts = f" + {len(args.svc_dn)} accounts" if args.svc_dn else ""
    sys.stderr.write(
        f"slapd_ldif: {len(dns)} entries + {len(parents)} parents{accounts}; "
        f"values of attributes outside the schema left out: {what}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
