#!/usr/bin/python3
"""Seed a stopped Samba AD DC with the objects of an AD-shaped LDIF file (offline, through sam.ldb).

    /usr/bin/python3 seed_samba.py --smb-conf DC/etc/smb.conf --ldif demo.ldif \
        --seed-base OU=Contoso,DC=example,DC=test --report seed-report.json [--spn ldap/localhost ...]

Runs with Debian's python3 (Samba's Python bindings). Every object keeps its attribute values byte
for byte (objectGUID included: the relax control lets it through), its DN is moved under
--seed-base: the forest root domain of the file (the shortest DC=... suffix) becomes --seed-base
itself, a child domain DC=emea,<root> becomes OU=emea,<seed base>. DN values that point into the
file's Configuration partition (homeMDB) are moved to this domain's Configuration partition.
Missing parents are created as organizationalUnit (OU=) or container (CN=) objects.

What Samba refuses is handled, never silently:
  - sAMAccountName or userPrincipalName already used (by another seeded object or by one of
    Samba's own, e.g. Administrator): the object is skipped;
  - a value Samba's schema refuses (e.g. displayName longer than its rangeUpper 256): that
    attribute is left out and the object added without it;
  - a multi-valued attribute holding the same value twice, differing only in case (AD compares
    case-insensitively): the later copy is left out;
  - a DN whose RDN holds an unescaped special character ('+'): it is escaped;
  - a user or group without sAMAccountName: Samba makes one up (recorded);
  - attributes only the directory itself may write (memberOf, objectSid, uSNChanged, ...) are
    left out of every object.
Skips and changes are printed and written to --report (JSON) with the DN map source -> target.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

import ldb  # type: ignore[import-not-found]
from ldifrecords import read_ldif, split_dn
from samba.auth import system_session  # type: ignore[import-not-found]
from samba.param import LoadParm  # type: ignore[import-not-found]
from samba.samdb import SamDB  # type: ignore[import-not-found]

# Written by the directory itself: never copied from an export.
DIRECTORY_OWNED = {
    "distinguishedname",
    "objectcategory",
    "instancetype",
    "whencreated",
    "whenchanged",
    "usncreated",
    "usnchanged",
    "objectsid",
    "samaccounttype",
    "memberof",
    "name",
    "pwdlastset",
    "primarygroupid",
    "showinaddressbook",
}
DN_VALUED = {"homemdb", "member", "manager", "msexchrequireauthtosendto"}
BINARY = {
    "objectguid",
    "ms-ds-consistencyguid",
    "usercertificate",
    "usersmimecertificate",
    "thumbnailphoto",
    "jpegphoto",
    "msexchmailboxguid",
    "msexchsafesendershash",
    "msexchsaferecipientshash",
    "msexchblockedsendershash",
    "msexchumspokenname",
}


def escape_rdn(rdn: str) -> str:
    """Escape the characters an RDN value must not hold bare ('+', ';', '<', '>', '"', '=')."""
    attr, _, value = rdn.partition("=")
    out, i = "", 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            out += value[i : i + 2]
            i += 2
            continue
        out += "\\" + ch if ch in '+;<>"=' else ch
        i += 1
    return f"{attr}={out}"


class Rebase:
    """Maps the source forest's DNs into the seed base (see the module docstring)."""

    def __init__(self, source_dns: list[str], seed_base: str, domain_dn: str) -> None:
        suffixes = {self._dc_suffix(d) for d in source_dns}
        suffixes.discard("")
        self.root = min(suffixes, key=lambda s: (len(split_dn(s)), s)) if suffixes else ""
        self.seed_base = seed_base
        self.domain_dn = domain_dn
        # longest first, so DC=emea,DC=contoso,DC=com wins over DC=contoso,DC=com
        self.domains = sorted(suffixes, key=lambda s: -len(split_dn(s)))

    @staticmethod
    def _dc_suffix(dn: str) -> str:
        rdns = split_dn(dn)
        i = len(rdns)
        while i > 0 and rdns[i - 1].lower().startswith("dc="):
            i -= 1
        return ",".join(rdns[i:])

    def target(self, dn: str) -> str:
        rdns = split_dn(dn)
        low = [r.lower() for r in rdns]
        if "cn=configuration" in low:
            i = low.index("cn=configuration")
            return ",".join([*rdns[: i + 1], self.domain_dn])
        for dom in self.domains:
            n = len(split_dn(dom))
            if len(rdns) >= n and ",".join(low[-n:]) == dom.lower():
                head = rdns[:-n]
                if dom == self.root:
                    base = self.seed_base
                else:
                    extra = split_dn(dom)[: n - len(split_dn(self.root))]
                    base = ",".join([*(f"OU={r.split('=', 1)[1]}" for r in extra), self.seed_base])
                return ",".join([*head, base])
        return dn  # not in the source forest: left as it is


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smb-conf", required=True)
    ap.add_argument("--ldif", required=True)
    ap.add_argument("--seed-base", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--spn", action="append", default=[], help="servicePrincipalName to add to the DC account")
    args = ap.parse_args()

    started = time.monotonic()
    lp = LoadParm()
    lp.load(args.smb_conf)
    db = SamDB(url=lp.private_path("sam.ldb"), session_info=system_session(), lp=lp)
    domain_dn = str(db.domain_dn())

    records = read_ldif(args.ldif)
    dns = [r[0][1].decode("utf-8") for r in records]
    rebase = Rebase(dns, args.seed_base, domain_dn)
    skipped: list[dict[str, str]] = []
    changed: list[dict[str, str]] = []
    dn_map: dict[str, str] = {}
    created: list[str] = []
    known: set[str] = set()

    def exists(dn: ldb.Dn) -> bool:
        try:
            return bool(db.search(base=dn, scope=ldb.SCOPE_BASE, attrs=["1.1"]))
        except ldb.LdbError:
            return False

    def ensure_parents(dn: ldb.Dn) -> None:
        chain = []
        parent = dn.parent()
        while parent is not None and str(parent).lower() not in known and str(parent).lower() != domain_dn.lower():
            chain.append(parent)
            parent = parent.parent()
        for p in reversed(chain):
            if not exists(p):
                msg = ldb.Message(p)
                kind = p.get_rdn_name().lower()
                msg["objectClass"] = ldb.MessageElement(
                    [b"organizationalUnit" if kind == "ou" else b"container"], ldb.FLAG_MOD_ADD, "objectClass"
                )
                db.add(msg)
                created.append(str(p))
            known.add(str(p).lower())

    for source_dn, rec in zip(dns, records, strict=True):
        target = rebase.target(source_dn)
        notes: list[str] = []
        try:
            dn = ldb.Dn(db, target)
            if not dn.is_valid():
                raise ValueError(target)
        except ValueError:
            rdns = split_dn(target)
            fixed = ",".join([escape_rdn(rdns[0]), *rdns[1:]])
            dn = ldb.Dn(db, fixed)
            notes.append(f"RDN escaped: {rdns[0]!r} -> {escape_rdn(rdns[0])!r}")
            target = fixed
        attrs: dict[str, tuple[str, list[bytes]]] = {}
        for name, value in rec[1:]:
            key = name.lower()
            if key in DIRECTORY_OWNED:
                continue
            if key in DN_VALUED:
                value = rebase.target(value.decode("utf-8")).encode("utf-8")
            attrs.setdefault(key, (name, []))[1].append(value)
        for key, (name, values) in list(attrs.items()):
            if key in BINARY or len(values) < 2:
                continue
            seen: dict[str, bytes] = {}
            kept = []
            for v in values:
                fold = v.decode("utf-8", "surrogateescape").casefold()
                if fold in seen:
                    notes.append(f"{name}: left out {v.decode('utf-8', 'replace')!r}, same as {seen[fold].decode()!r}")
                    continue
                seen[fold] = v
                kept.append(v)
            attrs[key] = (name, kept)

        for _attempt in range(10):
            msg = ldb.Message(dn)
            for _key, (name, values) in attrs.items():
                msg[name] = ldb.MessageElement(values, ldb.FLAG_MOD_ADD, name)
            try:
                ensure_parents(dn)
                db.add(msg, controls=["relax:0"])
            except ldb.LdbError as e:
                text = str(e.args[1]) if len(e.args) > 1 else str(e)
                bad = re.search(r"attribute '([^']+)' on entry '.*' contains at least one invalid value", text)
                if bad and bad.group(1).lower() in attrs:
                    name, values = attrs.pop(bad.group(1).lower())
                    shown = ", ".join(repr(v.decode("utf-8", "replace")[:40]) for v in values)
                    notes.append(f"{name} left out: Samba refuses {shown} ({text.split(':')[0]})")
                    continue
                skipped.append({"dn": source_dn, "target": target, "reason": text.strip().splitlines()[0]})
                break
            dn_map[source_dn] = target
            classes = {v.lower() for v in attrs.get("objectclass", ("", []))[1]}
            if "samaccountname" not in attrs and classes & {b"user", b"group", b"computer"}:
                made = db.search(base=dn, scope=ldb.SCOPE_BASE, attrs=["sAMAccountName"])[0]["sAMAccountName"][0]
                notes.append(f"sAMAccountName {str(made)!r} made by Samba (every security principal has one)")
            if notes:
                changed.append({"dn": source_dn, "target": target, "change": "; ".join(notes)})
            break

    # Kerberos service names for GSSAPI binds to names other than dc1.example.test
    spns_added = []
    if args.spn:
        server_trust = "(&(objectClass=computer)(userAccountControl:1.2.840.113556.1.4.803:=8192))"
        res = db.search(base=domain_dn, expression=server_trust, attrs=["servicePrincipalName"])
        dc = res[0]
        have = {str(v).lower() for v in dc.get("servicePrincipalName", [])}
        new = [s for s in args.spn if s.lower() not in have]
        if new:
            msg = ldb.Message(dc.dn)
            msg["servicePrincipalName"] = ldb.MessageElement(
                [s.encode() for s in new], ldb.FLAG_MOD_ADD, "servicePrincipalName"
            )
            db.modify(msg)
            spns_added = new

    report = {
        "source": args.ldif,
        "seed_base": args.seed_base,
        "source_root": rebase.root,
        "objects": len(records),
        "added": len(dn_map),
        "skipped": skipped,
        "changed": changed,
        "containers": created,
        "spns_added": spns_added,
        "dn_map": dn_map,
        "seconds": round(time.monotonic() - started, 2),
    }
    with open(args.report, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(
        f"seeded {len(dn_map)} of {len(records)} objects under {args.seed_base} "
        f"({len(created)} containers made, {len(skipped)} skipped, {len(changed)} changed) "
        f"in {report['seconds']} s"
    )
    for s in skipped:
        print(f"  skipped {s['dn']}: {s['reason']}")
    for c in changed:
        print(f"  changed {c['dn']}: {c['change']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
