"""The scan as a whole: scope, object rules, duplicates across batches and sources, the sample."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest

from syncprep.engine import ScanOptions, ScanResult, scan
from syncprep.model import Action, Entry, ErrorType, Safety
from syncprep.output.ldif import write_entries
from syncprep.rules import scope
from syncprep.sources import DEMO_TENANT, DEMO_VERIFIED_DOMAINS, demo_path
from syncprep.sources.ldif import LdifSource

USER = ("top", "person", "organizationalPerson", "user")


def user(cn: str, **attrs: tuple[str | bytes, ...] | str) -> Entry:
    base: dict[str, tuple[str | bytes, ...]] = {
        "objectclass": USER,
        "cn": (cn,),
        "samaccountname": (cn.lower().replace(" ", "")[:20],),
        "userprincipalname": (f"{cn.lower().replace(' ', '.')}@contoso.com",),
        "mail": (f"{cn.lower().replace(' ', '.')}@contoso.com",),
        "mailnickname": (cn.lower().replace(" ", "."),),
        "proxyaddresses": (f"SMTP:{cn.lower().replace(' ', '.')}@contoso.com",),
    }
    for key, value in attrs.items():
        base[key.lower()] = (value,) if isinstance(value, str) else value
    return Entry(f"CN={cn},OU=Staff,DC=contoso,DC=com", base)


def write(path: Path, entries: list[Entry]) -> LdifSource:
    with open(path, "w", encoding="utf-8") as out:
        write_entries(entries, out)
    return LdifSource(path)


def demo_options(**kw: object) -> ScanOptions:
    return ScanOptions(verified_domains=DEMO_VERIFIED_DOMAINS, tenant=DEMO_TENANT, **kw)  # type: ignore[arg-type]


def test_demo_shows_every_error_type_and_exclusion() -> None:
    result = scan([LdifSource(demo_path())], demo_options())
    assert {e for f in result.findings for e in f.errors} == set(ErrorType)
    reasons = {ex.reason for ex in scope.ENTRA} | {scope.COMPUTER}
    assert set(result.skipped) == reasons
    assert result.objects_read > 300


def test_demo_idfix_exclusions_are_over_broad() -> None:
    entra = scan([LdifSource(demo_path())], demo_options())
    idfix = scan([LdifSource(demo_path())], demo_options(exclusions="idfix"))
    none = scan([LdifSource(demo_path())], demo_options(exclusions="none"))
    skipped_by_idfix = {s.dn for s in idfix.skipped_objects}
    assert any("Guesthouse Bookings" in dn for dn in skipped_by_idfix)
    assert none.objects_in_scope > entra.objects_in_scope
    # 'none' still leaves out computers: they are never users, contacts or groups.
    assert set(none.skipped) == {scope.COMPUTER}


def test_cross_attribute_duplicate_across_two_sources(tmp_path: Path) -> None:
    a = write(tmp_path / "a.ldif", [user("Bob Smith")])
    group = Entry(
        "CN=Sales,OU=Groups,DC=fabrikam,DC=com",
        {
            "objectclass": ("top", "group"),
            "cn": ("Sales",),
            "samaccountname": ("Sales",),
            "grouptype": ("8",),
            "displayname": ("Sales",),
            "mail": ("sales@fabrikam.com",),
            "proxyaddresses": ("SMTP:sales@fabrikam.com", "smtp:Bob.Smith@contoso.com"),
        },
    )
    b = write(tmp_path / "b.ldif", [group])
    result = scan([a, b])
    dups = [f for f in result.findings if ErrorType.DUPLICATE in f.errors]
    assert {(f.dn.split(",")[0], f.attribute) for f in dups} == {
        ("CN=Bob Smith", "userPrincipalName"),
        ("CN=Bob Smith", "mail"),
        ("CN=Bob Smith", "proxyAddresses"),
        ("CN=Sales", "proxyAddresses"),
    }
    for f in dups:
        assert len(f.holders) == 4
        assert {h.object_class.value for h in f.holders} == {"user", "group"}
        assert "ObjectTypeMismatch" in f.note
    # Bob holds it as UPN, mail and primary: he keeps it; the group's secondary copy goes.
    group_row = next(f for f in dups if f.dn.startswith("CN=Sales"))
    assert group_row.action is Action.REMOVE and group_row.safety is Safety.MANUAL
    assert all(f.action is Action.COMPLETE for f in dups if f.dn.startswith("CN=Bob"))


def test_duplicates_are_found_across_batch_boundaries(tmp_path: Path) -> None:
    people = [user(f"Person {i:03d}") for i in range(60)]
    people.append(user("Late Twin", proxyaddresses=("SMTP:late.twin@contoso.com", "smtp:person.000@contoso.com")))
    path = tmp_path / "many.ldif"
    write(path, people)
    small = scan([LdifSource(path, batch_lines=37)])
    large = scan([LdifSource(path)])
    as_rows = lambda r: sorted((f.dn, f.attribute, f.value, f.errors, f.holders) for f in r.findings)  # noqa: E731
    assert as_rows(small) == as_rows(large)
    assert any(f.dn.startswith("CN=Late Twin") and ErrorType.DUPLICATE in f.errors for f in small.findings)


@pytest.mark.parametrize("batch_lines", [61, 250, 997])
def test_demo_findings_do_not_depend_on_batching(batch_lines: int) -> None:
    """Small reader batches, joined in pairs for the rules (an odd one left over): the same findings, in order."""
    whole = scan([LdifSource(demo_path())], demo_options())
    small = scan([LdifSource(demo_path(), batch_lines=batch_lines)], demo_options())
    assert [f.to_dict() for f in small.findings] == [f.to_dict() for f in whole.findings]
    assert (small.skipped, small.objects_read, small.objects_in_scope) == (
        whole.skipped,
        whole.objects_read,
        whole.objects_in_scope,
    )


def test_same_address_twice_in_one_object(scan_entries: Callable[..., ScanResult]) -> None:
    entry = user("Ivy Twice", proxyaddresses=("SMTP:ivy@contoso.com", "smtp:IVY@contoso.com"), mail="ivy@contoso.com")
    result = scan_entries([entry])
    rows = {f.value: f for f in result.findings if f.rule == "X002"}
    assert set(rows) == {"SMTP:ivy@contoso.com", "smtp:IVY@contoso.com"}
    assert rows["SMTP:ivy@contoso.com"].action is Action.COMPLETE
    assert rows["smtp:IVY@contoso.com"].action is Action.REMOVE


def test_source_anchor_collision(scan_entries: Callable[..., ScanResult]) -> None:
    guid = bytes(range(16))
    first = user("Ada Origin", objectguid=(guid,))
    migrated = user("Ada Migrated", objectguid=(bytes(range(16, 32)),), **{"ms-ds-consistencyguid": (guid,)})
    other = user("Ann Other", objectguid=(bytes(range(32, 48)),))
    result = scan_entries([first, migrated, other])
    anchors = {f.dn.split(",")[0]: f for f in result.findings if ErrorType.ANCHOR in f.errors}
    assert set(anchors) == {"CN=Ada Origin", "CN=Ada Migrated"}
    assert anchors["CN=Ada Migrated"].attribute == "mS-DS-ConsistencyGuid"
    assert anchors["CN=Ada Migrated"].action is Action.REMOVE


def test_sam_account_name_duplicates_only_without_a_valid_upn(scan_entries: Callable[..., ScanResult]) -> None:
    a = user("Svc One", samaccountname="svc", userprincipalname="svc.one@contoso.com")
    b = Entry(
        "CN=Svc Two,OU=X,DC=emea,DC=contoso,DC=com",
        {"objectclass": USER, "cn": ("Svc Two",), "samaccountname": ("SVC",)},
    )
    c = Entry(
        "CN=Svc Three,OU=X,DC=asia,DC=contoso,DC=com",
        {"objectclass": USER, "cn": ("Svc Three",), "samaccountname": ("svc",)},
    )
    result = scan_entries([a, b, c])
    dups = {f.dn.split(",")[0] for f in result.findings if f.rule == "X007"}
    assert dups == {"CN=Svc Two", "CN=Svc Three"}


def test_primary_and_object_rules(scan_entries: Callable[..., ScanResult]) -> None:
    two = user("Dana Two", proxyaddresses=("SMTP:dana.two@contoso.com", "SMTP:dana@fabrikam.com"))
    none = user("Nora None", proxyaddresses=("smtp:x@fabrikam.com", "smtp:nora.none@contoso.com"))
    certs = user("Carl Certs", usercertificate=tuple(bytes([i]) * 40 for i in range(16)))
    result = scan_entries([two, none, certs])
    by = {(f.dn.split(",")[0], f.value): f for f in result.findings}
    assert by[("CN=Dana Two", "SMTP:dana.two@contoso.com")].action is Action.COMPLETE
    assert by[("CN=Dana Two", "SMTP:dana@fabrikam.com")].update == "smtp:dana@fabrikam.com"
    # With no primary, the address equal to mail is the one to promote.
    assert by[("CN=Nora None", "smtp:nora.none@contoso.com")].update == "SMTP:nora.none@contoso.com"
    assert ("CN=Nora None", "smtp:x@fabrikam.com") not in by
    assert by[("CN=Carl Certs", "(16 values)")].errors == (ErrorType.LARGEOBJECT,)


def test_scope_by_base_dn_and_critical_objects(scan_entries: Callable[..., ScanResult]) -> None:
    inside = user("In Side")
    outside = Entry(
        "CN=Out Side,OU=Staff,DC=fabrikam,DC=com",
        {**user("Out Side").attributes, "userprincipalname": ("bad name@x.local",)},
    )
    critical = user("Krbtgt Like", iscriticalsystemobject="TRUE", userprincipalname="bad name@x.local")
    result = scan_entries([inside, outside, critical], ScanOptions(base_dns=("dc=contoso, dc=com",)))
    assert result.findings == []
    assert result.skipped[scope.OUTSIDE_BASE] == 1
    assert result.skipped["isCriticalSystemObject is TRUE"] == 1


def test_suggestions_never_fail_a_rule_themselves(scan_entries: Callable[..., ScanResult]) -> None:
    result = scan([LdifSource(demo_path())], demo_options())
    suggested = [f.update for f in result.findings if f.update is not None]
    assert suggested
    check = scan_entries([user("Probe", displayname=u) for u in suggested if "@" not in u and ":" not in u])
    assert [f for f in check.findings if f.attribute == "displayName" and f.severity.value == "error"] == []


@pytest.fixture
def scan_entries(tmp_path: Path) -> Callable[..., ScanResult]:
    """Write entries to an LDIF file and scan it."""
    counter = iter(range(10**6))

    def run(entries: list[Entry], options: ScanOptions | None = None) -> ScanResult:
        buffer = io.StringIO()
        write_entries(entries, buffer)
        path = tmp_path / f"entries-{next(counter)}.ldif"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        return scan([LdifSource(path)], options)

    return run


def test_a_repair_the_object_already_holds_becomes_a_removal(tmp_path: Path) -> None:
    """'smtp:jörg@…' repaired is 'smtp:jorg@…', which the object holds as its primary in another case."""
    entry = Entry(
        "CN=Jorg,OU=Staff,DC=contoso,DC=com",
        {
            "objectClass": ("top", "person", "organizationalPerson", "user"),
            "cn": ("Jorg",),
            "sAMAccountName": ("jorg",),
            "userPrincipalName": ("jorg@contoso.com",),
            "mail": ("jorg@contoso.com",),
            "proxyAddresses": ("SMTP:jorg@contoso.com", "smtp:jörg@contoso.com", "smtp:ärne@contoso.com"),
        },
    )
    path = tmp_path / "jorg.ldif"
    with open(path, "w", encoding="utf-8") as handle:
        write_entries([entry], handle)
    found = {f.value: f for f in scan([LdifSource(path)], ScanOptions()).findings if f.attribute == "proxyAddresses"}
    twin = found["smtp:jörg@contoso.com"]
    assert (twin.action, twin.update, twin.safety) == (Action.REMOVE, None, Safety.UNSAFE)
    # A repair nobody holds yet stays an edit.
    other = found["smtp:ärne@contoso.com"]
    assert (other.action, other.update) == (Action.EDIT, "smtp:arne@contoso.com")
