"""IdFix's own error fixture (OU=Error of Set-IdFixErrors.ps1): every planted error is found."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from syncprep.engine import ScanOptions, scan
from syncprep.sources.ldif import LdifSource

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "idfix-error-ou"
LDIF = DATA / "idfix-error-ou.ldif"

# The error types that count as a match for each intended error of expected-error-ou.csv.
ACCEPTED = {
    "blank": {"blank"},
    "leading/trailing whitespace": {"whitespace"},
    "format/rfc2822+non-routable": {"format", "topleveldomain", "domainpart", "localpart"},
    "duplicate": {"duplicate"},
    "invalid characters": {"character"},
    "leading/trailing period": {"format"},
    "targetAddress != mail": {"format"},
}


def expected(ruleset: str) -> list[dict[str, str]]:
    with open(DATA / "expected-error-ou.csv", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if row["idfix_ruleset"] == ruleset]


@pytest.mark.parametrize(("ruleset", "profile"), [("MultiTenant", "m365"), ("Dedicated", "dedicated")])
def test_every_planted_error_is_found(ruleset: str, profile: str) -> None:
    result = scan([LdifSource(LDIF)], ScanOptions(profile=profile))
    found: dict[tuple[str, str], set[str]] = {}
    for f in result.findings:
        found.setdefault((f.cn, f.attribute.lower()), set()).update(e.value for e in f.errors)
    rows = expected(ruleset)
    assert rows
    missing = [
        f"{r['cn']} {r['attribute']} ({r['intended_error']}): "
        f"found {sorted(found.get((r['cn'], r['attribute'].lower()), []))}"
        for r in rows
        if not found.get((r["cn"], r["attribute"].lower()), set()) & ACCEPTED[r["intended_error"]]
    ]
    assert not missing, "\n".join(missing)


def test_duplicates_name_every_holder() -> None:
    result = scan([LdifSource(LDIF)])
    by_value = {}
    for f in result.findings:
        if "duplicate" in {e.value for e in f.errors}:
            by_value.setdefault((f.attribute, f.value.lower().removeprefix("smtp:")), f)
    upn = next(f for (attr, _), f in by_value.items() if attr == "userPrincipalName")
    holders = {(h.dn.split(",")[0], h.attribute) for h in upn.holders}
    # Dup1's UPN is also its own mail; Dup2 holds it as UPN: one namespace across attributes.
    assert holders == {
        ("CN=mtUserUserPrincipalNameDup1", "userPrincipalName"),
        ("CN=mtUserUserPrincipalNameDup1", "mail"),
        ("CN=mtUserUserPrincipalNameDup2", "userPrincipalName"),
    }


def test_nothing_is_skipped_and_clean_attributes_stay_quiet() -> None:
    result = scan([LdifSource(LDIF)])
    assert result.objects_read == 36 and result.objects_in_scope == 36
    # The mt* objects were made for one error each; their other values are fine.
    noisy = [
        f
        for f in result.findings
        if f.cn.startswith("mtUserUserPrincipalNameInvalidchars") and f.attribute != "userPrincipalName"
    ]
    assert noisy == []
