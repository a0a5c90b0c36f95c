"""Public e-mail address test suites against the scan, end to end through a real LDIF file.

Every address that isemail (dominicsayers/isemail) or python-email-validator calls RFC-invalid
must be flagged in ``mail``, in an SMTP ``proxyAddresses`` value and in a contact's
``targetAddress`` (RULES.md §5: "Anything an RFC validator rejects is also rejected here").
Ordinary valid addresses (plain dot-atoms in a real public TLD) must not be flagged at all.

Each suite's addresses are planted one per object and attribute in ONE LDIF file, which is
scanned once: a miss is reported with the list of every address that slipped through.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from syncprep.domains import is_routable
from syncprep.engine import ScanResult, scan
from syncprep.model import Entry, ErrorType, Finding, Severity
from syncprep.output.ldif import write_entries
from syncprep.schema import ATEXT
from syncprep.sources.ldif import LdifSource

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
ISEMAIL = DATA / "isemail" / "tests.json"
EMAIL_VALIDATOR = DATA / "python-email-validator" / "test_syntax_cases.json"

pytestmark = pytest.mark.skipif(
    not (ISEMAIL.exists() and EMAIL_VALIDATOR.exists()), reason=f"e-mail test suites not found under {DATA}"
)

# python-email-validator's tables whose every address is invalid.
INVALID_TABLES = (
    "test_email_invalid_syntax",
    "test_email_invalid_syntax_strict",
    "test_email_invalid_reserved_domain",
    "test_email_invalid_character_smtputf8_off",
)

USER_CLASSES = ("top", "person", "organizationalPerson", "user")
CONTACT_CLASSES = ("top", "person", "organizationalPerson", "contact")
BASE = "OU=Suite,DC=contoso,DC=com"

# Error types that say something about the value itself. A duplicate (two planted copies of one
# suite address) or a missing primary SMTP address would not show the address was understood.
NOT_ABOUT_SYNTAX = {ErrorType.DUPLICATE, ErrorType.PRIMARY}

_DOT_ATOM = re.compile(rf"^[{ATEXT}]+(?:\.[{ATEXT}]+)*$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")

# Written here: ordinary addresses as admins have them.
OWN_VALID = ("bob@contoso.com", "first.last@sub.example.co.uk", "o'neil@contoso.com", "a+tag@fabrikam.com")


# ---------------------------------------------------------------------------------------------
# the suites


def _load(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


def _unique(addresses: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(addresses))


def invalid_addresses() -> list[str]:
    """Every RFC-invalid address of both suites, each once, in suite order.

    The empty string is left out: AD cannot store an empty value (an LDAP attribute value has at
    least one character; writing '' removes the attribute), so no export can ever carry it.
    """
    isemail = _load(ISEMAIL)
    validator = _load(EMAIL_VALIDATOR)
    assert isinstance(isemail, list) and isinstance(validator, dict)
    found = [case["address"] for case in isemail if case["category"] == "ISEMAIL_ERR"]
    for table in INVALID_TABLES:
        found += [case["email_input"] for case in validator[table]["cases"]]
    found += [
        case["email_input"]
        for case in validator["test_pyisemail_tests"]["cases"]
        if case["status"].startswith("ISEMAIL_ERR")
    ]
    return [a for a in _unique(found) if a != ""]


def is_ordinary(address: str) -> bool:
    """A plain ASCII dot-atom local part at a syntactically plain domain in a real public TLD."""
    if not address.isascii() or address.count("@") != 1:
        return False
    local, domain = address.split("@")
    return (
        len(local) <= 64
        and _DOT_ATOM.match(local) is not None
        and _DNS_NAME.match(domain) is not None
        and is_routable(domain)
    )


def valid_addresses() -> list[str]:
    isemail = _load(ISEMAIL)
    validator = _load(EMAIL_VALIDATOR)
    assert isinstance(isemail, list) and isinstance(validator, dict)
    found = [case["email_input"] for case in validator["test_email_valid"]["cases"]]
    found += [case["address"] for case in isemail if case["category"] == "ISEMAIL_VALID_CATEGORY"]
    return _unique([*(a for a in found if is_ordinary(a)), *OWN_VALID])


@dataclass(frozen=True)
class Planted:
    """A value written into the test directory, and the address it carries."""

    dn: str
    attribute: str
    value: str
    address: str


def _user(n: int, extra: dict[str, tuple[str, ...]]) -> Entry:
    name = f"u{n}"
    attributes: dict[str, tuple[str, ...]] = {
        "objectclass": USER_CLASSES,
        "cn": (name,),
        "samaccountname": (name,),
        "userprincipalname": (f"{name}@contoso.com",),
        "mailnickname": (f"nick{name}",),
        "displayname": (f"User {n}",),
        **extra,
    }
    return Entry(f"CN={name},{BASE}", attributes)


def _contact(n: int, extra: dict[str, tuple[str, ...]]) -> Entry:
    name = f"c{n}"
    attributes: dict[str, tuple[str, ...]] = {
        "objectclass": CONTACT_CLASSES,
        "cn": (name,),
        # A contact is in scope only when mail-enabled: its own valid mail does that.
        "mail": (f"{name}@contoso.com",),
        "mailnickname": (f"nick{name}",),
        "displayname": (f"Contact {n}",),
        **extra,
    }
    return Entry(f"CN={name},{BASE}", attributes)


def plant_invalid(addresses: list[str]) -> tuple[list[Entry], list[Planted]]:
    """Per address: a user with it as mail, a user with it as an smtp: proxy, a contact with it
    as an SMTP: targetAddress. Every other value is valid, so any finding is about the address."""
    entries: list[Entry] = []
    planted: list[Planted] = []
    n = 0
    for address in addresses:
        n += 1
        user = _user(n, {"mail": (address,)})
        entries.append(user)
        planted.append(Planted(user.dn, "mail", address, address))

        n += 1
        own = f"u{n}@contoso.com"
        proxy = f"smtp:{address}"
        # Its own primary SMTP address (= mail): without one, a 'primary' finding would fire.
        user = _user(n, {"mail": (own,), "proxyaddresses": (f"SMTP:{own}", proxy)})
        entries.append(user)
        planted.append(Planted(user.dn, "proxyAddresses", proxy, address))

        n += 1
        target = f"SMTP:{address}"
        contact = _contact(n, {"targetaddress": (target,)})
        entries.append(contact)
        planted.append(Planted(contact.dn, "targetAddress", target, address))
    return entries, planted


def plant_valid(addresses: list[str], *, as_secondary: bool) -> tuple[list[Entry], list[Planted]]:
    """Per address, one user. as_secondary=False: mail = the address and its primary SMTP: matches.
    as_secondary=True: mail and primary SMTP: are the user's own, the address an smtp: proxy."""
    entries: list[Entry] = []
    planted: list[Planted] = []
    for n, address in enumerate(addresses, 1):
        if as_secondary:
            own = f"u{n}@contoso.com"
            user = _user(n, {"mail": (own,), "proxyaddresses": (f"SMTP:{own}", f"smtp:{address}")})
            planted.append(Planted(user.dn, "proxyAddresses", f"smtp:{address}", address))
        else:
            user = _user(n, {"mail": (address,), "proxyaddresses": (f"SMTP:{address}",)})
            planted.append(Planted(user.dn, "mail", address, address))
            planted.append(Planted(user.dn, "proxyAddresses", f"SMTP:{address}", address))
        entries.append(user)
    return entries, planted


def scan_entries(path: Path, entries: list[Entry]) -> ScanResult:
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        assert write_entries(entries, out) == len(entries)
    return scan([LdifSource(path)])


def _show(planted: Planted) -> str:
    return f"{planted.address!r} ({planted.attribute} on {planted.dn.split(',')[0]})"


# ---------------------------------------------------------------------------------------------
# RFC-invalid addresses


@dataclass(frozen=True)
class Scanned:
    path: Path
    result: ScanResult
    planted: list[Planted]
    objects: int


@pytest.fixture(scope="module")
def invalid_scan(tmp_path_factory: pytest.TempPathFactory) -> Scanned:
    entries, planted = plant_invalid(invalid_addresses())
    path = tmp_path_factory.mktemp("suites") / "invalid.ldif"
    return Scanned(path, scan_entries(path, entries), planted, len(entries))


def test_suites_are_loaded() -> None:
    addresses = invalid_addresses()
    # 66 isemail ERR cases and python-email-validator's tables, less repeats and the empty string.
    assert len(addresses) > 120
    assert "" not in addresses
    assert any("\r" in a or "\n" in a or "\x00" in a for a in addresses), "control characters expected"
    assert len(valid_addresses()) >= len(OWN_VALID) + 5


def test_every_planted_object_is_read_and_in_scope(invalid_scan: Scanned) -> None:
    result = invalid_scan.result
    assert result.objects_read == invalid_scan.objects
    assert result.objects_in_scope == invalid_scan.objects, f"skipped: {dict(result.skipped)}"


def test_planted_values_round_trip(invalid_scan: Scanned) -> None:
    """Control characters, edge spaces and non-ASCII come back from the file exactly as written."""
    back = {e.dn: e for e in LdifSource(invalid_scan.path).entries()}
    assert len(back) == invalid_scan.objects
    wrong = [_show(p) for p in invalid_scan.planted if p.value not in back[p.dn].get(p.attribute)]
    assert not wrong, f"{len(wrong)} values changed on the way through the file: {wrong}"


@pytest.mark.parametrize("attribute", ["mail", "proxyAddresses", "targetAddress"])
def test_rfc_invalid_addresses_are_flagged(invalid_scan: Scanned, attribute: str) -> None:
    result, planted = invalid_scan.result, invalid_scan.planted
    found: dict[tuple[str, str, str], Finding] = {(f.dn, f.attribute, f.value): f for f in result.findings}
    missed: list[str] = []
    weak: list[str] = []
    for p in planted:
        if p.attribute != attribute:
            continue
        finding = found.get((p.dn, p.attribute, p.value))
        if finding is None:
            missed.append(_show(p))
        elif not set(finding.errors) - NOT_ABOUT_SYNTAX or finding.severity is not Severity.ERROR:
            weak.append(f"{_show(p)}: {[e.value for e in finding.errors]} {finding.severity.value}")
    assert not missed, f"{len(missed)} RFC-invalid addresses in {attribute} not flagged: {missed}"
    assert not weak, f"{len(weak)} RFC-invalid addresses in {attribute} only duplicate/warning: {weak}"


def test_no_finding_on_the_valid_scaffolding(invalid_scan: Scanned) -> None:
    """The UPNs, aliases, names and own addresses around the planted values are all valid."""
    result, planted = invalid_scan.result, invalid_scan.planted
    planted_keys = {(p.dn, p.attribute, p.value) for p in planted}
    stray = [
        f"{f.dn.split(',')[0]} {f.attribute}={f.value!r} {[e.value for e in f.errors]}"
        for f in result.findings
        if (f.dn, f.attribute, f.value) not in planted_keys
    ]
    assert not stray, f"findings on values that were not planted: {stray}"


# ---------------------------------------------------------------------------------------------
# ordinary valid addresses


def test_ordinary_selection() -> None:
    chosen = valid_addresses()
    for address in OWN_VALID:
        assert address in chosen
    assert "Abc.123@test-example.com" in chosen
    assert "test@iana.org" in chosen
    # Not ordinary: a made-up TLD, a single-label domain, a quoted local part, a display name.
    not_ordinary = (
        "Abc@example.tld", "test@io", '"quoted local part"@example.org', "MyName <me@example.org>",
    )
    for address in not_ordinary:
        assert address not in chosen


@pytest.mark.parametrize("as_secondary", [False, True], ids=["mail-and-primary", "secondary-smtp-proxy"])
def test_ordinary_valid_addresses_are_not_flagged(tmp_path: Path, as_secondary: bool) -> None:
    addresses = valid_addresses()
    entries, planted = plant_valid(addresses, as_secondary=as_secondary)
    result = scan_entries(tmp_path / "valid.ldif", entries)
    assert result.objects_in_scope == len(entries), f"skipped: {dict(result.skipped)}"
    planted_values = {(p.dn, p.value) for p in planted}
    flagged = [
        f"{f.value!r} ({f.attribute} on {f.dn.split(',')[0]}): {[e.value for e in f.errors]} {list(f.rules)}"
        for f in result.findings
        if (f.dn, f.value) in planted_values
    ]
    assert not flagged, f"{len(flagged)} ordinary valid addresses flagged: {flagged}"
    others = [f"{f.dn.split(',')[0]} {f.attribute}={f.value!r} {list(f.rules)}" for f in result.findings]
    assert not others, f"no finding at all expected on these users: {others}"


# ---------------------------------------------------------------------------------------------
# known bugs


def _long_address(length: int) -> str:
    """A well-formed ASCII address of exactly ``length`` characters in a public TLD."""
    domain = ".".join(["a" * 60] * 4) + ".info"  # 248 characters, labels of 60
    local = "b" * (length - 1 - len(domain))
    address = f"{local}@{domain}"
    assert len(address) == length and is_ordinary(address)
    return address


@pytest.mark.parametrize("length", [255, 256])
def test_mail_longer_than_rfc5321_limit_is_flagged(tmp_path: Path, length: int) -> None:
    address = _long_address(length)
    result = scan_entries(tmp_path / "long.ldif", [_user(1, {"mail": (address,)})])
    assert [(f.attribute, f.value) for f in result.findings] == [("mail", address)]


def test_bare_target_address_longer_than_rfc5321_limit_is_flagged(tmp_path: Path) -> None:
    address = _long_address(255)
    result = scan_entries(tmp_path / "long.ldif", [_contact(1, {"targetaddress": (address,)})])
    assert [(f.attribute, f.value) for f in result.findings] == [("targetAddress", address)]


def test_at_rfc5321_limit_is_not_flagged(tmp_path: Path) -> None:
    """254 characters is the longest address RFC 5321 allows: fine in mail and as a target."""
    address = _long_address(254)
    entries = [_user(1, {"mail": (address,)}), _contact(2, {"targetaddress": (address,)})]
    result = scan_entries(tmp_path / "limit.ldif", entries)
    assert [(f.attribute, f.value) for f in result.findings] == []
