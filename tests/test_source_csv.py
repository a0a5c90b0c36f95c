"""CsvSource: csvde and Export-Csv files, written to disk and read back."""

from __future__ import annotations

import base64
import csv
import io
import struct
import uuid
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncprep.errors import ConfigError, SourceError
from syncprep.model import Entry
from syncprep.sources.base import BATCH_SCHEMA
from syncprep.sources.csv import CsvSource

GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
GUID_BYTES = bytes.fromhex("e004253f894fd3119a0c0305e82c3301")
TYPE_LINE = "#TYPE Microsoft.ActiveDirectory.Management.ADUser"

CSVDE = (
    "DN,objectClass,cn,displayName,mail,proxyAddresses,objectGUID,sAMAccountName\r\n"
    '"CN=Bob Smith,OU=Users,DC=contoso,DC=com",user,Bob Smith,"Smith; Bob",bob@contoso.com,'
    "SMTP:bob@contoso.com;smtp:bob@contoso.mail.onmicrosoft.com;X500:/o=Org/cn=bob,"
    "X'e004253f894fd3119a0c0305e82c3301',bob\r\n"
    '"CN=Sales,OU=Groups,DC=contoso,DC=com",group,Sales,,,,,sales\r\n'
)

POWERSHELL = [
    TYPE_LINE,
    '"DistinguishedName","Name","GivenName","Surname","EmailAddress","ObjectClass","ObjectGUID","SID",'
    '"proxyAddresses"',
    f'"CN=Bob,OU=Users,DC=contoso,DC=com","Bob","Bob","Smith","bob@contoso.com","user","{GUID}",'
    '"S-1-5-21-1004336348-1177238915-682003330-1104",'
    '"SMTP:bob@contoso.com|smtp:bob@contoso.mail.onmicrosoft.com|sip:bob@contoso.com"',
    '"CN=Staff,OU=Groups,DC=contoso,DC=com","Staff","","","","group","{00112233-4455-6677-8899-aabbccddeeff}",'
    '"S-1-5-32-544","SMTP:staff@contoso.com"',
]


def write(tmp_path: Path, text: str, name: str = "export.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def read(path: Path, **options: object) -> list[Entry]:
    return list(CsvSource(path, **options).entries())  # type: ignore[arg-type]


def frames(path: Path, attributes: frozenset[str] | None = None, **options: object) -> list[pl.DataFrame]:
    batches = list(CsvSource(path, **options).batches(attributes, lambda _: None))  # type: ignore[arg-type]
    for batch in batches:
        assert batch.schema == pl.Schema(BATCH_SCHEMA)
        dns = batch.filter(pl.col("attr") == "dn").group_by("eid").len()
        n = batch["eid"].max() + 1  # type: ignore[operator]
        assert sorted(dns["eid"].to_list()) == list(range(n)), "one dn row per entry, eids 0..n-1"
        assert (dns["len"] == 1).all()
    return batches


def sid_bytes(sid: str) -> bytes:
    """Reference encoding of a SID string, written independently of the vectorised one."""
    _, revision, authority, *subs = sid.split("-")
    head = struct.pack("BB", int(revision), len(subs)) + int(authority).to_bytes(6, "big")
    return head + struct.pack(f"<{len(subs)}I", *(int(s) for s in subs))


# csvde


def test_csvde_splits_multivalued_and_decodes_hex(tmp_path: Path) -> None:
    bob, sales = read(write(tmp_path, CSVDE))
    assert bob.dn == "CN=Bob Smith,OU=Users,DC=contoso,DC=com"
    assert bob.get("proxyAddresses") == (
        "SMTP:bob@contoso.com",
        "smtp:bob@contoso.mail.onmicrosoft.com",
        "X500:/o=Org/cn=bob",
    )
    assert bob.first("objectGUID") == GUID_BYTES
    assert bob.first("objectClass") == "user"
    # displayName is single-valued: csvde's ';' is part of the value there
    assert bob.get("displayName") == ("Smith; Bob",)
    # empty cells mean the attribute is absent
    assert sales.first("objectclass") == "group"
    assert "mail" not in sales.attributes and "objectguid" not in sales.attributes


def test_csvde_frames_hold_base64_for_binary(tmp_path: Path) -> None:
    (batch,) = frames(write(tmp_path, CSVDE))
    rows = batch.filter(pl.col("eid") == 0)
    assert rows["attr"].to_list() == [
        "dn", "objectclass", "cn", "displayname", "mail",
        "proxyaddresses", "proxyaddresses", "proxyaddresses", "objectguid", "samaccountname",
    ]  # fmt: skip
    guid = rows.filter(pl.col("attr") == "objectguid")["value"].item()
    assert guid == base64.b64encode(GUID_BYTES).decode()


def test_attributes_limit_what_is_emitted(tmp_path: Path) -> None:
    (batch,) = frames(write(tmp_path, CSVDE), frozenset({"mail"}))
    assert set(batch["attr"]) == {"dn", "objectclass", "mail"}
    assert batch.filter(pl.col("attr") == "dn").height == 2


def test_csvde_hex_text_value_is_decoded(tmp_path: Path) -> None:
    # csvde writes a value it cannot put in the file as the hex of its UTF-8 bytes
    text = "DN,displayName\nCN=j,X'4AC3BC7267656E'\n"
    (entry,) = read(write(tmp_path, text))
    assert entry.get("displayname") == ("Jürgen",)


def test_column_names_are_case_insensitive(tmp_path: Path) -> None:
    text = "dn,OBJECTCLASS,Mail,ProxyAddresses\nCN=a,contact,a@x.com,smtp:a@x.com;SMTP:b@x.com\n"
    (entry,) = read(write(tmp_path, text))
    assert entry.first("objectclass") == "contact"
    assert entry.get("mail") == ("a@x.com",)
    assert entry.get("proxyaddresses") == ("smtp:a@x.com", "SMTP:b@x.com")


# Export-Csv


def test_export_csv_with_type_line_and_pipe_separator(tmp_path: Path) -> None:
    bob, staff = read(write(tmp_path, "\r\n".join(POWERSHELL) + "\r\n"))
    assert bob.dn == "CN=Bob,OU=Users,DC=contoso,DC=com"
    assert bob.get("proxyaddresses") == (
        "SMTP:bob@contoso.com",
        "smtp:bob@contoso.mail.onmicrosoft.com",
        "sip:bob@contoso.com",
    )
    assert bob.first("mail") == "bob@contoso.com"
    assert bob.first("sn") == "Smith"
    assert bob.first("givenname") == "Bob"
    assert bob.first("cn") == "Bob"
    assert bob.first("objectclass") == "user"
    assert bob.first("objectguid") == GUID_BYTES
    assert bob.first("objectsid") == sid_bytes("S-1-5-21-1004336348-1177238915-682003330-1104")
    assert "distinguishedname" not in bob.attributes and "sid" not in bob.attributes
    assert staff.first("objectclass") == "group"
    assert staff.first("objectguid") == uuid.UUID("00112233-4455-6677-8899-aabbccddeeff").bytes_le
    # the well-known Administrators SID, byte for byte
    assert staff.first("objectsid") == bytes.fromhex("01020000000000052000000020020000")
    assert "givenname" not in staff.attributes


def test_export_csv_guid_is_base64_of_ad_bytes_in_frames(tmp_path: Path) -> None:
    (batch,) = frames(write(tmp_path, "\n".join(POWERSHELL)))
    guids = batch.filter(pl.col("attr") == "objectguid")["value"].to_list()
    assert base64.b64decode(guids[0]) == GUID_BYTES


def test_export_csv_without_type_line(tmp_path: Path) -> None:
    (bob, _) = read(write(tmp_path, "\n".join(POWERSHELL[1:])))
    assert len(bob.get("proxyaddresses")) == 3


def test_ldap_spelling_wins_over_powershell_alias(tmp_path: Path) -> None:
    # Get-ADUser -Properties * exports both EmailAddress and mail
    text = (
        '"DistinguishedName","EmailAddress","mail","Name","cn"\n'
        '"CN=a","alias@x.com","real@x.com","n","c"\n'
    )
    (entry,) = read(write(tmp_path, text))
    assert entry.get("mail") == ("real@x.com",)
    assert entry.get("cn") == ("c",)


@pytest.mark.parametrize("separator", [";", "|", ",", " ", "\n", "\r\n"])
def test_separator_is_detected(tmp_path: Path, separator: str) -> None:
    values = ["SMTP:a@contoso.com", "smtp:a@fabrikam.com", "X500:/o=Org/cn=a"]
    joined = separator.join(values)
    text = f'"DistinguishedName","proxyAddresses","DisplayName"\n"CN=a","{joined}","Smith, Bob | Sales"\n'
    (entry,) = read(write(tmp_path, text))
    assert entry.get("proxyaddresses") == tuple(values)
    # a column that is not multi-valued is never split
    assert entry.get("displayname") == ("Smith, Bob | Sales",)


def test_separator_detected_in_a_large_export(tmp_path: Path) -> None:
    # More objectClass cells than a sample holds come before the first proxyAddresses cell
    n = 210_000
    rows = (f'"CN=u{i}","user","SMTP:u{i}@x.com|smtp:u{i}@y.com"' for i in range(n))
    path = write(tmp_path, '"DistinguishedName","ObjectClass","proxyAddresses"\n' + "\n".join(rows) + "\n")
    batches = frames(path, frozenset({"proxyaddresses"}))
    assert len(batches) == 2
    proxies = pl.concat(batches).filter(pl.col("attr") == "proxyaddresses")
    assert proxies.height == 2 * n
    assert proxies["value"].str.contains("|", literal=True).sum() == 0


@pytest.mark.parametrize("separator", [";", ","])
def test_separator_detected_from_member_dns(tmp_path: Path, separator: str) -> None:
    # a comma-joined member list still splits between DNs, not inside them
    members = ["CN=Smith\\, Bob,OU=Users,DC=x,DC=com", "CN=B,CN=Users,DC=x,DC=com", "CN=C,DC=x,DC=com"]
    text = f'"DistinguishedName","member"\n"CN=g","{separator.join(members)}"\n'
    (entry,) = read(write(tmp_path, text))
    assert entry.get("member") == tuple(members)


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_export_csv_use_culture_delimiter(tmp_path: Path, delimiter: str) -> None:
    # Export-Csv -UseCulture writes ';' on German or French systems
    lines = [
        TYPE_LINE,
        delimiter.join(['"DistinguishedName"', '"Surname"', '"proxyAddresses"']),
        delimiter.join(['"CN=Müller\\, Jörg,DC=x"', '"Müller"', '"SMTP:j@x.com|smtp:jm@x.com"']),
    ]
    (entry,) = read(write(tmp_path, "\r\n".join(lines) + "\r\n"))
    assert entry.dn == "CN=Müller\\, Jörg,DC=x"
    assert entry.get("sn") == ("Müller",)
    assert entry.get("proxyaddresses") == ("SMTP:j@x.com", "smtp:jm@x.com")


def test_separator_option_overrides_detection(tmp_path: Path) -> None:
    text = '"DistinguishedName","proxyAddresses"\n"CN=a","smtp:a@x.com # smtp:b@x.com"\n'
    (entry,) = read(write(tmp_path, text), separator=" # ")
    assert entry.get("proxyaddresses") == ("smtp:a@x.com", "smtp:b@x.com")


def test_property_value_collection_is_refused(tmp_path: Path) -> None:
    lines = [
        '"DistinguishedName","proxyAddresses"',
        '"CN=a","smtp:a@x.com"',
        '"CN=b","Microsoft.ActiveDirectory.Management.ADPropertyValueCollection"',
    ]
    path = write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(SourceError) as info:
        read(path)
    assert info.value.line == 3
    assert info.value.source == str(path)
    assert "@{n='proxyAddresses';e={$_.proxyAddresses -join ';'}}" in str(info.value)


def test_byte_array_literal_is_refused(tmp_path: Path) -> None:
    text = '"DistinguishedName","mS-DS-ConsistencyGuid"\n"CN=a","System.Byte[]"\n'
    with pytest.raises(SourceError, match=r"ToBase64String\(\$_\.'mS-DS-ConsistencyGuid'\)") as info:
        read(write(tmp_path, text))
    assert info.value.line == 2


# CSV syntax


def test_quoted_cells_with_commas_quotes_and_newlines(tmp_path: Path) -> None:
    text = (
        "DN,displayName,info,mail\n"
        '"CN=Smith\\, Bob,DC=x","Bob ""the builder"" Smith","line one\nline two, with comma",b@x.com\n'
        "CN=c,,,c@x.com\n"
    )
    bob, c = read(write(tmp_path, text))
    assert bob.dn == "CN=Smith\\, Bob,DC=x"
    assert bob.get("displayname") == ('Bob "the builder" Smith',)
    assert bob.get("info") == ("line one\nline two, with comma",)
    assert bob.get("mail") == ("b@x.com",)
    assert c.get("mail") == ("c@x.com",)


def test_blank_lines_are_not_entries(tmp_path: Path) -> None:
    entries = read(write(tmp_path, "DN,cn\r\nCN=a,a\r\n\r\n,\r\nCN=b,b\r\n"))
    assert [e.dn for e in entries] == ["CN=a", "CN=b"]


def test_unbalanced_quote_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'DN,cn\nCN=a,"two\nlines"\n"CN=b,x,y\nCN=c,z\n')
    with pytest.raises(SourceError, match="never closed") as info:
        read(path)
    assert info.value.line == 4
    assert info.value.source == str(path)


def test_row_with_too_many_cells_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'DN,cn\nCN=a,"two\nlines"\nCN=b,Smith, Bob\nCN=c,z\n')
    with pytest.raises(SourceError, match="3 cells but the header has 2") as info:
        read(path)
    assert info.value.line == 4


def test_row_without_dn_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="DN cell is empty") as info:
        read(write(tmp_path, "DN,cn\nCN=a,a\n\n,orphan\n"))
    assert info.value.line == 4


def test_missing_dn_column(tmp_path: Path) -> None:
    path = write(tmp_path, "cn,mail\nbob,b@x.com\n")
    with pytest.raises(SourceError) as info:
        read(path)
    message = str(info.value)
    assert str(path) in message
    assert "'DN'" in message and "'DistinguishedName'" in message
    assert "cn, mail" in message


def test_bad_binary_value_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="objectGUID") as info:
        read(write(tmp_path, "DN,objectGUID\nCN=a,X'00'\nCN=b,X'zz'\n"))
    assert info.value.line == 3


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        read(tmp_path / "absent.csv")
    with pytest.raises(SourceError, match="directory"):
        read(tmp_path)


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="empty"):
        read(write(tmp_path, ""))
    assert read(write(tmp_path, "DN,cn\n", name="header.csv")) == []


# encodings


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom(tmp_path: Path, encoding: str) -> None:
    text = "\ufeff" + "\r\n".join(POWERSHELL) + "\r\n"
    bob, _ = read(write(tmp_path, text.replace("Bob", "Jürgen"), encoding=encoding))
    assert bob.first("givenname") == "Jürgen"
    assert bob.first("objectguid") == GUID_BYTES


def test_utf8_with_bom(tmp_path: Path) -> None:
    (entry,) = read(write(tmp_path, "\ufeffDN,displayName\nCN=a,Zoë\n"))
    assert entry.dn == "CN=a"
    assert entry.get("displayname") == ("Zoë",)


def test_utf8_bom_before_type_line(tmp_path: Path) -> None:
    bob, _ = read(write(tmp_path, "\ufeff" + "\n".join(POWERSHELL)))
    assert bob.first("objectguid") == GUID_BYTES


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b'DN,cn\nCN=a,"two\nlines"\nCN=b,J\xfcrgen\n')
    with pytest.raises(SourceError) as info:
        read(path)
    assert info.value.line == 4
    assert "UTF-8" in str(info.value) and "--encoding" in str(info.value)


def test_forced_encoding(tmp_path: Path) -> None:
    path = tmp_path / "cp1252.csv"
    path.write_bytes("DN,sn\nCN=a,Müller –\n".encode("cp1252"))  # ü is 0xFC, – is 0x96
    (entry,) = read(path, encoding="cp1252")
    assert entry.get("sn") == ("Müller –",)


def test_utf16_without_bom_is_explained(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="utf-16-le"):
        read(write(tmp_path, "DN,cn\r\nCN=a,a\r\n", encoding="utf-16-le"))


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        CsvSource(tmp_path / "x.csv", encoding="no-such-codec")
    with pytest.raises(ConfigError):
        CsvSource(tmp_path / "x.csv", separator="")


# batching and progress


def test_batches_hold_whole_entries_and_progress_counts_bytes(tmp_path: Path) -> None:
    rows = [f"CN=u{i},u{i},smtp:u{i}@x.com;SMTP:u{i}@y.com" for i in range(5)]
    path = write(tmp_path, "DN,cn,proxyAddresses\n" + "\n".join(rows) + "\n")
    done: list[int] = []
    source = CsvSource(path, batch_size=2)
    batches = list(source.batches(None, done.append))
    assert [b["eid"].max() for b in batches] == [1, 1, 0]
    for batch in batches:
        assert batch.filter(pl.col("attr") == "proxyaddresses").height == 2 * batch["eid"].n_unique()
    assert sum(done) == source.size == path.stat().st_size
    assert [e.dn for e in source.entries()] == [f"CN=u{i}" for i in range(5)]


# round trip through Python's own CSV writer


# Any text a directory can hold: commas, quotes, CR, LF, NUL, emoji (lone surrogates cannot be UTF-8).
_VALUE = st.text(st.characters(blacklist_categories=["Cs"]), max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_VALUE, _VALUE), min_size=1, max_size=20))
def test_any_text_survives_rfc4180_quoting(tmp_path: Path, rows: list[tuple[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["DistinguishedName", "DisplayName", "info"])
    for i, (name, info) in enumerate(rows):
        writer.writerow([f"CN=u{i},DC=x", name, info])
    entries = read(write(tmp_path, buffer.getvalue(), name="roundtrip.csv"))
    assert [e.dn for e in entries] == [f"CN=u{i},DC=x" for i in range(len(rows))]
    for entry, (name, info) in zip(entries, rows, strict=True):
        assert entry.get("displayname") == ((name,) if name else ())
        assert entry.get("info") == ((info,) if info else ())
