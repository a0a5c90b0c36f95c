"""The LDIF reader (sources.ldif) on real files, and the LDIF writer (output.ldif) it round-trips with."""

from __future__ import annotations

import base64
import io
import re
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncprep.errors import SourceError
from syncprep.model import Entry
from syncprep.output.ldif import (
    attribute_name,
    fold_line,
    format_value,
    needs_base64,
    write_entries,
)
from syncprep.schema import BINARY_ATTRIBUTES
from syncprep.sources.base import BATCH_SCHEMA, entries_to_frame
from syncprep.sources.ldif import LdifSource

FIXTURE = Path("/work/shared/data/idfix-error-ou/idfix-error-ou.ldif")
needs_fixture = pytest.mark.skipif(not FIXTURE.exists(), reason="IdFix error-OU fixture not available")


# ---------------------------------------------------------------------------------------------
# helpers


def write(tmp_path: Path, text: str | bytes, name: str = "in.ldif") -> Path:
    """Write a file byte for byte (no newline translation), so CRLF tests mean what they say."""
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def read(path: Path, **kwargs: int) -> list[Entry]:
    return list(LdifSource(path, **kwargs).entries())


def frames(path: Path, attributes: Iterable[str] | None = None, **kwargs: int) -> list[pl.DataFrame]:
    attrs = None if attributes is None else frozenset(attributes)
    return list(LdifSource(path, **kwargs).batches(attrs))


def by_entry(batches: Iterable[pl.DataFrame]) -> list[dict[str, list[str]]]:
    """Batches as one {attr: sorted values} per entry, in order: batch contents, not row order."""
    out: list[dict[str, list[str]]] = []
    for frame in batches:
        assert frame.schema == pl.Schema(BATCH_SCHEMA)
        for _eid, rows in frame.sort("eid").group_by("eid", maintain_order=True):
            entry: dict[str, list[str]] = {}
            for attr, value in rows.select("attr", "value").iter_rows():
                entry.setdefault(attr, []).append(value)
            out.append({k: sorted(v) for k, v in entry.items()})
    return out


def check_contract(batches: Iterable[pl.DataFrame]) -> None:
    """sources/base.py: eids 0..n-1 in each batch, and exactly one dn row per entry."""
    for frame in batches:
        eids = frame["eid"].unique().sort().to_list()
        assert eids == list(range(len(eids)))
        dns = frame.filter(pl.col("attr") == "dn")["eid"].sort().to_list()
        assert dns == eids


def refusal(path: Path, attributes: Iterable[str] | None = None) -> SourceError:
    """The SourceError reading ``path`` raises, checked to be a one-line user message."""
    with pytest.raises(SourceError) as info:
        if attributes is None:
            read(path)
        else:
            frames(path, attributes)
    exc = info.value
    # The CLI prints str(exc): it must not drag a chained exception (a traceback) along.
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__
    assert "\n" not in str(exc) and "Traceback" not in str(exc)
    assert exc.source == str(path)
    return exc


def fold76(line: str) -> str:
    """Fold like ldapsearch: 76 columns per physical line, the continuation's space included."""
    parts = [line[:76]] + [" " + line[i : i + 75] for i in range(76, len(line), 75)]
    return "\n".join(parts)


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode("utf-8") if isinstance(data, str) else data).decode("ascii")


# ---------------------------------------------------------------------------------------------
# the IdFix error-OU fixture


@needs_fixture
def test_fixture_reads_every_entry() -> None:
    entries = read(FIXTURE)
    assert len(entries) == 36
    assert len({e.dn for e in entries}) == 36
    assert all(e.dn.endswith(",OU=Error,OU=IdFix,DC=contoso,DC=com") for e in entries)
    batches = frames(FIXTURE)
    check_contract(batches)
    assert sum(f.filter(pl.col("attr") == "dn").height for f in batches) == 36


@needs_fixture
def test_fixture_base64_values_decode() -> None:
    entries = {e.dn.split(",", 1)[0]: e for e in read(FIXTURE)}
    # "displayName:: ICBE..." in the file: leading and trailing spaces only survive as base64.
    assert entries["CN=dGroupDisplaynameWhitespace"].get("displayname") == (
        "  Dedicated group Displayname Whitespace  ",
    )
    assert entries["CN=dUserMailWhitespace"].get("mail") == ("  dUserMailWhitespace@lab.com  ",)
    # The scan path decodes the same way.
    rows = pl.concat(frames(FIXTURE, ["displayname"]))
    assert "  Dedicated group Displayname Whitespace  " in rows["value"].to_list()


@needs_fixture
def test_fixture_mixed_case_names_are_lower_case() -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    assert "mailNickName:" in text  # the file spells it unlike AD's "mailNickname"
    entries = read(FIXTURE)
    assert all(k == k.lower() for e in entries for k in e.attributes)
    nicknames = sum(len(e.get("mailnickname")) for e in entries)
    assert nicknames == len(re.findall(r"(?im)^mailnickname::? ", text))
    rows = pl.concat(frames(FIXTURE, ["mailnickname"]))
    assert set(rows["attr"]) == {"dn", "mailnickname"}
    assert rows.filter(pl.col("attr") == "mailnickname").height == nicknames


@needs_fixture
def test_fixture_progress_counts_every_line() -> None:
    calls: list[int] = []
    for _ in LdifSource(FIXTURE, batch_lines=50).batches(None, calls.append):
        pass
    assert all(n >= 0 for n in calls)
    lines = FIXTURE.read_text(encoding="utf-8").rstrip("\n").count("\n") + 1
    assert sum(calls) == lines  # the file ends with an attribute line


# ---------------------------------------------------------------------------------------------
# what content records may look like


LONG_DN = "CN=" + "Very Long Name " * 6 + ",OU=Sales and Marketing,OU=Europe,OU=Accounts,DC=contoso,DC=com"
LONG_DESC = "A description long enough to be folded more than once by ldapsearch " * 3


def test_folded_lines_are_joined(tmp_path: Path) -> None:
    photo = bytes(range(256))
    text = "\n".join(
        [
            "version: 1",
            "",
            fold76(f"dn: {LONG_DN}"),
            fold76(f"description: {LONG_DESC}"),
            fold76(f"thumbnailPhoto:: {b64(photo)}"),
            fold76(f"displayName:: {b64('  Zoë ' + 'x' * 80)}"),
            "mail: bob@contoso.com",
            "",
        ]
    )
    assert max(len(line) for line in text.splitlines()) == 76
    path = write(tmp_path, text)
    [entry] = read(path)
    assert entry == Entry(
        LONG_DN,
        {
            "description": (LONG_DESC,),
            "thumbnailphoto": (photo,),
            "displayname": ("  Zoë " + "x" * 80,),
            "mail": ("bob@contoso.com",),
        },
    )
    rows = by_entry(frames(path, ["description", "displayname"]))
    assert rows == [{"dn": [LONG_DN], "description": [LONG_DESC], "displayname": ["  Zoë " + "x" * 80]}]


def test_fold_of_an_attribute_not_asked_for_stays_with_it(tmp_path: Path) -> None:
    # Each continuation belongs to a line the scan does not read; glued to the line kept before
    # it, it would corrupt the dn ("CN=a" + "...") or the mail.
    text = "\n".join(
        [
            "dn: CN=a,DC=contoso,DC=com",
            fold76(f"description: {LONG_DESC}"),
            "mail: a@contoso.com",
            fold76(f"objectSid:: {b64(bytes(range(100)))}"),
            "sn: A",
            "",
            "dn: CN=b,DC=contoso,DC=com",
            "mail: b@contoso.com",
            fold76(f"info: {LONG_DESC}"),
            "",
        ]
    )
    path = write(tmp_path, text)
    assert by_entry(frames(path, ["mail"])) == [
        {"dn": ["CN=a,DC=contoso,DC=com"], "mail": ["a@contoso.com"]},
        {"dn": ["CN=b,DC=contoso,DC=com"], "mail": ["b@contoso.com"]},
    ]
    # Read in full, the same continuations land where they belong.
    a, b = read(path)
    assert a.get("description") == (LONG_DESC,) and a.get("sn") == ("A",)
    assert b.get("info") == (LONG_DESC,) and b.get("mail") == ("b@contoso.com",)


def test_fold_before_the_value_or_inside_the_name(tmp_path: Path) -> None:
    # Folding may cut anywhere: inside the name, right after the colon, inside fill spaces.
    text = "\n".join(
        [
            "dn: CN=a,DC=contoso,DC=com",
            "mai",
            " l: a@contoso.com",
            "displayName: ",
            " Ann",
            "sn:",
            "   Smith",
            "givenName: A",
            " nn",
            "",
        ]
    )
    path = write(tmp_path, text)
    expected = {"mail": ("a@contoso.com",), "displayname": ("Ann",), "sn": ("Smith",), "givenname": ("Ann",)}
    assert read(path) == [Entry("CN=a,DC=contoso,DC=com", expected)]
    rows = by_entry(frames(path, ["mail", "displayname", "sn", "givenname"]))
    assert rows == [{"dn": ["CN=a,DC=contoso,DC=com"], **{k: list(v) for k, v in expected.items()}}]


def test_comments_are_ignored_even_folded(tmp_path: Path) -> None:
    text = "\n".join(
        [
            "# extended LDIF",
            fold76("# base <" + LONG_DN + "> with scope subtree"),
            "version: 1",
            "",
            "# a comment between records",
            "dn: CN=a",
            "cn: a",
            "# a comment inside a record, folded",
            " onto a second line that must not join 'cn'",
            "sn: A",
            "",
            "# search result",
            "# numEntries: 1",
        ]
    )
    path = write(tmp_path, text)
    assert read(path) == [Entry("CN=a", {"cn": ("a",), "sn": ("A",)})]
    assert by_entry(frames(path, ["cn"])) == [{"dn": ["CN=a"], "cn": ["a"]}]


SAMPLE = "\n".join(
    [
        "version: 1",
        "",
        "dn: CN=Zoë Müller,OU=Staff,DC=contoso,DC=com",
        "changetype: add",
        "objectClass: top",
        "objectClass: user",
        "cn: Zoë Müller",
        fold76(f"description: {LONG_DESC}"),
        "mail:: " + b64(" zoe@contoso.com "),
        "",
        "dn: CN=Bob,DC=contoso,DC=com",
        "cn: Bob",
        "",
    ]
)
SAMPLE_ENTRIES = [
    Entry(
        "CN=Zoë Müller,OU=Staff,DC=contoso,DC=com",
        {
            "objectclass": ("top", "user"),
            "cn": ("Zoë Müller",),
            "description": (LONG_DESC,),
            "mail": (" zoe@contoso.com ",),
        },
    ),
    Entry("CN=Bob,DC=contoso,DC=com", {"cn": ("Bob",)}),
]


def test_sample_reads(tmp_path: Path) -> None:
    # Also: "version: 1" is no attribute, "changetype: add" is accepted and dropped.
    assert read(write(tmp_path, SAMPLE)) == SAMPLE_ENTRIES


@pytest.mark.parametrize(
    ("encoding", "prefix", "newline"),
    [
        ("utf-8", b"", "\r\n"),
        ("utf-8", b"\xef\xbb\xbf", "\n"),
        ("utf-8", b"\xef\xbb\xbf", "\r\n"),
        ("utf-16-le", b"\xff\xfe", "\r\n"),  # ldifde -u
        ("utf-16-le", b"\xff\xfe", "\n"),
        ("utf-16-be", b"\xfe\xff", "\n"),
    ],
)
def test_encodings_and_line_endings(tmp_path: Path, encoding: str, prefix: bytes, newline: str) -> None:
    path = write(tmp_path, prefix + SAMPLE.replace("\n", newline).encode(encoding))
    assert read(path) == SAMPLE_ENTRIES
    assert by_entry(frames(path, ["mail"])) == [
        {"dn": [SAMPLE_ENTRIES[0].dn], "mail": [" zoe@contoso.com "]},
        {"dn": [SAMPLE_ENTRIES[1].dn]},
    ]


@pytest.mark.parametrize("prefix", [b"\xef\xbb\xbf", b"\xff\xfe"])
def test_byte_order_mark_keeps_line_numbers(tmp_path: Path, prefix: bytes) -> None:
    encoding = "utf-8" if prefix == b"\xef\xbb\xbf" else "utf-16-le"
    path = write(tmp_path, prefix + "version: 1\ndn: CN=a\nmail:: !!!\n".encode(encoding))
    assert refusal(path).line == 3


@pytest.mark.parametrize(
    ("line", "attr", "value"),
    [
        ("mail:bob@contoso.com", "mail", "bob@contoso.com"),  # no space after the colon
        ("proxyAddresses:SMTP:bob@contoso.com", "proxyaddresses", "SMTP:bob@contoso.com"),
        ("proxyAddresses: smtp:bob@contoso.com", "proxyaddresses", "smtp:bob@contoso.com"),
        ("description: a: b:: c", "description", "a: b:: c"),
        ("description:a: b", "description", "a: b"),
        ("mail:", "mail", ""),  # empty value
        ("mail: ", "mail", ""),
        ("mail::", "mail", ""),  # empty base64
        ("mail::" + b64("bob@contoso.com"), "mail", "bob@contoso.com"),
        ("cn:   Bob", "cn", "Bob"),  # RFC 2849 FILL: spaces after the colon are not the value
        ("mail::   " + b64(" x "), "mail", " x "),
        ("cn: Bob  Smith ", "cn", "Bob  Smith "),  # inner and trailing spaces are the value's
        ("CN: Bob", "cn", "Bob"),
        ("member;range=0-1499: CN=x", "member", "CN=x"),
        ("member;range=1500-*: CN=x", "member", "CN=x"),  # AD's last range
        ("1.2.840.113556.1.4.221: bob", "1.2.840.113556.1.4.221", "bob"),  # an OID names it too
        ("sn: Ünal", "sn", "Ünal"),  # non-ASCII without base64: not RFC 2849, but ldifde -u does it
    ],
)
def test_value_line_forms(tmp_path: Path, line: str, attr: str, value: str) -> None:
    path = write(tmp_path, f"dn: CN=a\n{line}\n")
    assert read(path) == [Entry("CN=a", {attr: (value,)})]
    assert by_entry(frames(path, [attr])) == [{"dn": ["CN=a"], attr: [value]}]


@pytest.mark.parametrize(
    "dn_line",
    [
        lambda dn: f"dn: {dn}",
        lambda dn: f"dn:{dn}",  # RFC 2849 FILL may be empty
        lambda dn: f"DN: {dn}",  # the tag is case-insensitive
        lambda dn: f"Dn:{dn}",
        lambda dn: f"dn:: {b64(dn)}",
        lambda dn: f"dn::{b64(dn)}",
    ],
)
def test_dn_line_forms(tmp_path: Path, dn_line: Callable[[str], str]) -> None:
    path = write(tmp_path, f"{dn_line('CN=a')}\ncn: a\n\n{dn_line('CN=b')}\ncn: b\n")
    assert read(path) == [Entry("CN=a", {"cn": ("a",)}), Entry("CN=b", {"cn": ("b",)})]
    batches = frames(path, ["cn"])
    check_contract(batches)
    assert by_entry(batches) == [{"dn": ["CN=a"], "cn": ["a"]}, {"dn": ["CN=b"], "cn": ["b"]}]


@pytest.mark.parametrize("batch_lines", [3, 7, 1000])
@pytest.mark.parametrize("tags", [("DN: ",), ("dn: ", "DN: ", "Dn:", "dn:: ")])
def test_dn_tag_spellings_across_batches(tmp_path: Path, tags: tuple[str, ...], batch_lines: int) -> None:
    """Records whose tag is not the lower-case "dn:", alone or mixed, in batches of every size."""
    records = []
    for i in range(40):
        tag = tags[i % len(tags)]
        dn = f"CN=u{i},DC=x"
        records.append(f"{tag}{b64(dn) if tag.startswith('dn::') else dn}\ncn: u{i}\nmail: u{i}@x.com\n")
    path = write(tmp_path, "\n".join(records))
    expected = [{"dn": [f"CN=u{i},DC=x"], "cn": [f"u{i}"], "mail": [f"u{i}@x.com"]} for i in range(40)]
    batches = frames(path, ["cn", "mail"], batch_lines=batch_lines)
    check_contract(batches)
    assert by_entry(batches) == expected
    if batch_lines < 1000:
        assert len(batches) > 1, "records are cut into batches at any spelling of the tag, not held as one"


def test_binary_values_written_as_text(tmp_path: Path) -> None:
    """ldbsearch writes objectGUID as a GUID string; LDIF may write printable bytes of any binary value
    as they are. Both are bytes like base64 values, a GUID string in AD's byte order."""
    guid = uuid.UUID("d2111359-443a-7e54-12f0-8971a2d771f9")
    text = (
        f"dn: CN=a\nobjectGUID: {guid}\nms-DS-ConsistencyGuid: {{{str(guid).upper()}}}\n\n"
        f"dn: CN=b\nobjectGUID:: {b64(guid.bytes_le)}\nuserCertificate: plain\n"
    )
    path = write(tmp_path, text)
    assert read(path) == [
        Entry("CN=a", {"objectguid": (guid.bytes_le,), "ms-ds-consistencyguid": (guid.bytes_le,)}),
        Entry("CN=b", {"objectguid": (guid.bytes_le,), "usercertificate": (b"plain",)}),
    ]
    guid64 = base64.b64encode(guid.bytes_le).decode()
    assert by_entry(frames(path, ["objectguid", "ms-ds-consistencyguid", "usercertificate"])) == [
        {"dn": ["CN=a"], "objectguid": [guid64], "ms-ds-consistencyguid": [guid64]},
        {"dn": ["CN=b"], "objectguid": [guid64], "usercertificate": [base64.b64encode(b"plain").decode()]},
    ]


def test_empty_dn_is_an_entry(tmp_path: Path) -> None:
    # The root DSE has an empty dn.
    path = write(tmp_path, "dn:\nobjectClass: top\n\ndn: \ncn: x\n")
    assert read(path) == [Entry("", {"objectclass": ("top",)}), Entry("", {"cn": ("x",)})]


def test_options_and_binary_values(tmp_path: Path) -> None:
    guid = bytes.fromhex("8f0c2e5d1a7b4c3d9e8f00112233aabb")
    cert = b"\x30\x82\x01\x0a" + bytes(60)
    text = "\n".join(
        [
            "dn: CN=a",
            f"objectGUID:: {b64(guid)}",
            f"userCertificate;binary:: {b64(cert)}",
            f"userCertificate;binary:: {b64(cert[::-1])}",
            "member;range=0-1499: CN=m1",
            "member;range=0-1499: CN=m2",
            "",
        ]
    )
    path = write(tmp_path, text)
    [entry] = read(path)
    assert entry.attributes == {
        "objectguid": (guid,),
        "usercertificate": (cert, cert[::-1]),
        "member": ("CN=m1", "CN=m2"),
    }
    # In frames, binary values stay base64 text: equal bytes compare equal as text.
    assert by_entry(frames(path, ["objectguid", "usercertificate", "member"])) == [
        {
            "dn": ["CN=a"],
            "objectguid": [b64(guid)],
            "usercertificate": sorted([b64(cert), b64(cert[::-1])]),
            "member": ["CN=m1", "CN=m2"],
        }
    ]


def test_multi_valued_attributes_keep_file_order(tmp_path: Path) -> None:
    text = "\n".join(
        [
            "dn: CN=a",
            "objectClass: top",
            "proxyAddresses: smtp:b@contoso.com",
            "objectClass: person",
            "proxyAddresses:: " + b64("SMTP:a@contoso.com"),
            "proxyAddresses:x500:/o=Contoso/cn=a",
            fold76("proxyAddresses: smtp:" + "c" * 80 + "@contoso.com"),
            "objectClass: user",
            "",
        ]
    )
    [entry] = read(write(tmp_path, text))
    assert entry.get("objectClass") == ("top", "person", "user")
    assert entry.get("proxyaddresses") == (
        "smtp:b@contoso.com",
        "SMTP:a@contoso.com",
        "x500:/o=Contoso/cn=a",
        "smtp:" + "c" * 80 + "@contoso.com",
    )


def test_attribute_filter_keeps_dn(tmp_path: Path) -> None:
    path = write(tmp_path, SAMPLE)
    assert by_entry(frames(path, [])) == [{"dn": [e.dn]} for e in SAMPLE_ENTRIES]
    assert by_entry(frames(path, ["cn", "nosuchattribute"])) == [
        {"dn": [e.dn], "cn": list(e.get("cn"))} for e in SAMPLE_ENTRIES
    ]
    everything = by_entry(frames(path))
    assert everything == [{"dn": [e.dn], **{k: sorted(v) for k, v in e.attributes.items()}} for e in SAMPLE_ENTRIES]


@pytest.mark.parametrize("text", ["", "version: 1\n", "# only a comment\n", "\n\n"])
def test_files_without_entries(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert read(path) == []
    assert frames(path) == []


def test_base64_that_is_not_utf8_in_a_scanned_text_attribute(tmp_path: Path) -> None:
    path = write(tmp_path, "dn: CN=a\ncn: a\nmail:: " + b64(b"\xff\xfe bob") + "\n")
    exc = refusal(path, ["mail"])
    assert exc.line == 3 and "'mail' is not UTF-8 text" in str(exc)


def test_base64_that_is_not_utf8_outside_a_scan_is_kept_as_bytes(tmp_path: Path) -> None:
    # entries() reads every attribute, known or not: a value that does not decode as text stays
    # bytes (an unlisted binary attribute); a scan asking for the attribute refuses it instead.
    path = write(tmp_path, "dn: CN=a\nmsExchBlob:: //79\n")
    assert read(path) == [Entry("CN=a", {"msexchblob": (b"\xff\xfe\xfd",)})]
    assert by_entry(frames(path)) == [{"dn": ["CN=a"], "msexchblob": ["//79"]}]


# ---------------------------------------------------------------------------------------------
# entries spanning batch boundaries


def many_entries(n: int = 50) -> str:
    """A file of n entries of very different sizes, with every kind of line the reader finishes."""
    out = ["version: 1", "# generated", ""]
    for i in range(n):
        out.append(fold76(f"dn: CN=User {i} {'x' * (i * 3)},OU=People,DC=contoso,DC=com"))
        if i % 4 == 0:
            out.append("changetype: add")
        out.append("objectClass: user")
        out.append(f"mail:u{i}@contoso.com")
        for k in range(i % 6):
            out.append(f"proxyAddresses: smtp:u{i}.{k}@contoso.com")
        if i % 3 == 0:
            out.append("displayName:: " + b64(f" User {i} ä "))
        if i % 5 == 0:
            out.append(fold76(f"thumbnailPhoto:: {b64(bytes(range(i, i + 90)))}"))
            out.append("# folded")
            out.append(" comment")
        if i % 7 == 0:
            out.append(fold76(f"description: {LONG_DESC} {i}"))
            out.extend(f"member: CN=M{k}" for k in range(25))  # an entry bigger than a batch
        out.append(f"objectGUID:: {b64(i.to_bytes(16, 'big'))}")
        out.append("")
    return "\n".join(out)


@pytest.mark.parametrize("batch_lines", [1, 7, 64])
def test_batch_size_changes_nothing(tmp_path: Path, batch_lines: int) -> None:
    path = write(tmp_path, many_entries())
    whole = read(path)
    assert len(whole) == 50
    assert read(path, batch_lines=batch_lines) == whole

    for attributes in (None, ["mail", "displayname", "proxyaddresses"]):
        small = frames(path, attributes, batch_lines=batch_lines)
        big = frames(path, attributes)
        check_contract(small)
        assert len(small) > len(big)
        assert by_entry(small) == by_entry(big)


def test_error_line_numbers_in_later_batches(tmp_path: Path) -> None:
    lines = many_entries().split("\n")
    at = len(lines) - lines[::-1].index("objectClass: user")  # just after the last entry's first lines
    lines.insert(at, "mail:: not base64!")
    path = write(tmp_path, "\n".join(lines))
    assert refusal(path).line == at + 1
    with pytest.raises(SourceError) as info:
        frames(path, ["mail"], batch_lines=7)
    assert info.value.line == at + 1


# ---------------------------------------------------------------------------------------------
# refusals


REFUSALS = [
    # (file text, line number, words of the message, attribute the scan asks for)
    ("dn: CN=a\ncn: a\nthis line has no colon\n", 3, "no colon", "cn"),
    ("dn: CN=a\nchangetype: modify\nreplace: mail\nmail: x@b.com\n-\n", 2, "changetype: modify", "mail"),
    ("dn: CN=a\nchangetype:modify\nreplace: mail\nmail: x@contoso.com\n", 2, "changetype: modify", "mail"),
    ("version: 1\n\ndn: CN=a\ncn: a\n\ndn: CN=b\nchangetype: delete\n", 7, "changetype: delete", "cn"),
    ("dn: CN=a\nchangetype: modrdn\nnewrdn: CN=b\ndeleteoldrdn: 1\n", 2, "changetype: modrdn", "cn"),
    ("dn: CN=a\nchangetype: moddn\nnewrdn: CN=b\ndeleteoldrdn: 1\n", 2, "changetype: moddn", "cn"),
    ("dn: CN=a\ncontrol: 1.2.840.113556.1.4.805 true\nchangetype: delete\n", 2, "control", "cn"),
    ("dn: CN=a\ncn: a\njpegPhoto:< file:///etc/passwd\n", 3, "URL", "cn"),
    ("dn: CN=a\ncn: a\ndescription:<file:///etc/passwd\n", 3, "URL", "cn"),
    ("dn: CN=a\nmail:: !!!\n", 2, "broken base64", "mail"),
    ("dn: CN=a\nmail:: QUJ\n", 2, "broken base64", "mail"),  # not a multiple of 4
    ("dn:: " + b64(b"CN=\xff") + "\ncn: a\n", 1, "not UTF-8", "cn"),
    ("version: 1\n# c\ncn: a\ndn: CN=a\n", 3, "before the first 'dn:'", "cn"),
    ("mail: a@contoso.com\n\ndn: CN=a\n", 1, "before the first 'dn:'", "mail"),
    (" continued\ndn: CN=a\ncn: a\n", 1, "continuation", "cn"),
    ("dn: CN=a\ndisplay name: x\n", 2, "not a valid attribute name", "cn"),
    ("dn: CN=a\nmail_addr: x\n", 2, "not a valid attribute name", "mail_addr"),
    (b"dn: CN=a\ncn: a\nsn: M\xfcller\n", 3, "not UTF-8", "sn"),
    (b"dn: CN=a\ncn: a\n\ndn: CN=b\ncn: \xe9\n", 5, "not UTF-8", "mail"),
]


@pytest.mark.parametrize("scan", [False, True], ids=["entries", "batches"])
@pytest.mark.parametrize(("text", "line", "words", "attr"), REFUSALS)
def test_refusals(tmp_path: Path, text: str | bytes, line: int, words: str, attr: str, scan: bool) -> None:
    path = write(tmp_path, text)
    exc = refusal(path, [attr] if scan else None)
    assert exc.line == line
    assert str(exc).startswith(f"{path}:{line}: ")
    assert words in str(exc)


@pytest.mark.parametrize("batch_lines", [1, 3])
def test_change_records_are_named_across_batches(tmp_path: Path, batch_lines: int) -> None:
    text = "dn: CN=a\ncn: a\n\ndn: CN=b\nchangetype: modify\nreplace: mail\nmail: x@contoso.com\n-\n"
    path = write(tmp_path, text)
    with pytest.raises(SourceError, match=r":5: 'changetype: modify' is a change record"):
        read(path, batch_lines=batch_lines)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.ldif"
    exc = refusal(path)
    assert exc.line is None
    assert str(exc) == f"{path}: no such file"
    refusal(path, ["mail"])


def test_directory(tmp_path: Path) -> None:
    exc = refusal(tmp_path)
    assert exc.line is None
    assert str(exc).startswith(f"{tmp_path}: ") and "directory" in str(exc)


def test_broken_utf16(tmp_path: Path) -> None:
    # A lone high surrogate followed by "d": no UTF-16 decoder accepts it.
    path = write(tmp_path, b"\xff\xfe" + "dn: CN=a\n".encode("utf-16-le") + b"\x00\xd8d\x00")
    assert "UTF-16" in str(refusal(path))


# ---------------------------------------------------------------------------------------------
# the writer


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bob@contoso.com", False),
        ("smtp:bob@contoso.com", False),  # a colon inside is fine
        ("a<b", False),
        ("", False),
        ("Bob Smith", False),
        ("#hash", False),
        ("\x7fdel", False),  # RFC 2849 SAFE-CHAR goes up to 0x7F
        (" Bob", True),
        ("Bob ", True),
        (":Bob", True),
        ("<Bob", True),
        ("Zoë", True),
        ("a\nb", True),
        ("a\rb", True),
        ("a\x00b", True),
    ],
)
def test_needs_base64(value: str, expected: bool) -> None:
    assert needs_base64(value) is expected


@pytest.mark.parametrize(
    ("attr", "value", "line"),
    [
        ("mail", "bob@contoso.com", "mail: bob@contoso.com"),
        ("mailnickname", "bob", "mailNickname: bob"),
        ("proxyaddresses", "SMTP:bob@contoso.com", "proxyAddresses: SMTP:bob@contoso.com"),
        ("displayname", "  Bob ", "displayName:: ICBCb2Ig"),
        ("sn", "Zoë", "sn:: Wm/Dqw=="),
        ("objectguid", b"\x00\x01", "objectGUID:: AAE="),
        ("usercertificate;binary", b"\x00", "userCertificate;binary:: AA=="),
        ("extensionattribute1", "x", "extensionattribute1: x"),  # unknown: as given
        ("mail", "", "mail:"),
        ("dn", "CN=Bob,DC=contoso,DC=com", "dn: CN=Bob,DC=contoso,DC=com"),
        ("dn", " CN=Bob", "dn:: IENOPUJvYg=="),
    ],
)
def test_format_value(attr: str, value: str | bytes, line: str) -> None:
    assert format_value(attr, value) == line


def test_format_value_surrogateescape_gives_back_the_bytes() -> None:
    # sources.base.as_text decodes stray bytes with surrogateescape; writing restores them.
    text = b"M\xfcller".decode("utf-8", errors="surrogateescape")
    assert format_value("sn", text) == "sn:: " + b64(b"M\xfcller")
    with pytest.raises(UnicodeEncodeError):
        format_value("sn", "\ud800")
    with pytest.raises(TypeError):
        format_value("sn", 3)  # type: ignore[arg-type]


def test_attribute_name() -> None:
    assert attribute_name("samaccountname") == "sAMAccountName"
    assert attribute_name("userCertificate;binary") == "userCertificate;binary"
    assert attribute_name("member;range=0-1499") == "member;range=0-1499"


@pytest.mark.parametrize("fold", [6, 10, 76, 200])
def test_fold_line(fold: int) -> None:
    line = "description: " + "0123456789" * 25
    folded = fold_line(line, fold)
    parts = folded.split("\n")
    assert all(len(p) <= fold for p in parts)
    assert all(p.startswith(" ") for p in parts[1:])
    assert parts[0] + "".join(p[1:] for p in parts[1:]) == line
    assert fold_line(line, 0) == line
    assert fold_line("cn: x", fold) == "cn: x"


@pytest.mark.parametrize("fold", [-1, 1, 5])
def test_fold_too_narrow(fold: int) -> None:
    with pytest.raises(ValueError, match="fold"):
        write_entries([], io.StringIO(), fold=fold)


def test_write_entries_layout() -> None:
    out = io.StringIO()
    entries = [
        Entry("CN=Bob,DC=contoso,DC=com", {"mailnickname": ("bob",), "proxyaddresses": ("SMTP:b@x", "c")}),
        Entry(" CN=Zoë", {"displayname": ("Zoë",), "dn": ("CN=ignored",), "empty": ()}),
    ]
    assert write_entries(iter(entries), out) == 2
    assert out.getvalue() == (
        "version: 1\n"
        "\n"
        "dn: CN=Bob,DC=contoso,DC=com\n"
        "mailNickname: bob\n"
        "proxyAddresses: SMTP:b@x\n"
        "proxyAddresses: c\n"
        "\n"
        f"dn:: {b64(' CN=Zoë')}\n"
        f"displayName:: {b64('Zoë')}\n"
    )
    empty = io.StringIO()
    assert write_entries([], empty) == 0
    assert empty.getvalue() == "version: 1\n"


def test_written_file_is_ascii_and_folded(tmp_path: Path) -> None:
    entries = [Entry("CN=" + "é" * 100, {"description": ("ü" * 200, "x" * 300), "photo": (bytes(300),)})]
    out = io.StringIO()
    write_entries(entries, out)
    text = out.getvalue()
    assert text.isascii()
    assert max(len(line) for line in text.splitlines()) == 76
    assert read(write(tmp_path, text)) == entries


# ---------------------------------------------------------------------------------------------
# round trip: whatever the writer writes, the reader reads back


# Attribute names with no LDIF meaning of their own. Excluded: "dn" (written once, first),
# "changetype" and "control" (they make a change record), and binary attribute names, whose
# values are bytes: objectGUID below stands for those.
RESERVED = frozenset({"dn", "changetype", "control"})
names = st.one_of(
    st.sampled_from(["mail", "mailnickname", "proxyaddresses", "displayname", "samaccountname", "cn"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,14}", fullmatch=True),
).filter(lambda n: n not in RESERVED and n not in BINARY_ATTRIBUTES)

# Any text, with the characters that matter to LDIF drawn often: edge spaces, ":" and "<" (value
# markers), line breaks, NUL, DN punctuation. Some values are ASCII, so plain "attr: value" lines
# get tested as well as base64 ones (one "é" makes a whole value base64), and some hold ": ", the
# separator, inside. Excluded, and the only thing LDIF cannot carry as text: lone surrogates
# (category Cs), which have no UTF-8 encoding.
MARKS = " :<,;=+\"'#\\\n\r\x00\t\x7f-"
ascii_texts = st.text(st.one_of(st.characters(max_codepoint=127), st.sampled_from(MARKS)), max_size=40)
any_char = st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from([*MARKS, "é", "\u200b", "\U0001f600"]))
any_texts = st.text(any_char, max_size=40)
with_separator = st.builds("{}: {}".format, ascii_texts, st.one_of(ascii_texts, any_texts))
texts = st.one_of(ascii_texts, any_texts, with_separator)

# Attributes need at least one value: an attribute without values has no line to be written on.
attributes = st.dictionaries(
    names,  # lower case and without options, like every Entry key (model.Entry)
    st.lists(texts, min_size=1, max_size=3).map(tuple),
    max_size=4,
)
entries_st = st.builds(
    lambda dn, attrs, guid: Entry(dn, {**attrs, **({"objectguid": guid} if guid else {})}),
    texts,
    attributes,
    st.one_of(st.none(), st.lists(st.binary(max_size=40), min_size=1, max_size=2).map(tuple)),
)


def written(tmp_path: Path, entries: list[Entry], fold: int) -> Path:
    out = io.StringIO()
    assert write_entries(entries, out, fold=fold) == len(entries)
    return write(tmp_path, out.getvalue(), f"round-trip-{fold}.ldif")


@pytest.mark.parametrize("fold", [76, 0])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(entries_st, max_size=4))
def test_round_trip(tmp_path: Path, fold: int, entries: list[Entry]) -> None:
    path = written(tmp_path, entries, fold)
    assert read(path) == entries

    # The scan path holds the same values, binary ones as base64 text.
    expected = entries_to_frame(entries)
    got = frames(path)
    check_contract(got)
    assert by_entry(got) == by_entry([expected] if expected.height else [])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(entries_st, min_size=2, max_size=4))
def test_round_trip_in_small_batches(tmp_path: Path, entries: list[Entry]) -> None:
    # Batches of 4 lines: nearly every entry, and many folded lines, straddle a batch boundary.
    assert read(written(tmp_path, entries, 20), batch_lines=4) == entries


def test_ldapsearch_paged_output_with_its_result_trailer(tmp_path: Path) -> None:
    """ldapsearch without -LLL: comments, and after each page a result block echoing the paging control."""
    text = (
        "# extended LDIF\n#\n# LDAPv3\n# base <DC=contoso,DC=com> with scope subtree\n"
        "# filter: (objectClass=user)\n# requesting: mail proxyAddresses\n# with pagedResults control: size=1\n#\n\n"
        "# Ann, Staff, contoso.com\ndn: CN=Ann,OU=Staff,DC=contoso,DC=com\nobjectClass: user\n"
        "mail: ann@contoso.com\nproxyAddresses: SMTP:ann@contoso.com\n\n"
        "# search result\nsearch: 2\nresult: 0 Success\n"
        "control: 1.2.840.113556.1.4.319 false MAUCAQAEAA==\npagedresults: cookie=\n\n"
        "# Bob, Staff, contoso.com\ndn: CN=Bob,OU=Staff,DC=contoso,DC=com\nobjectClass: user\n"
        "mail: ann@contoso.com\n\n"
        "# search result\nsearch: 3\nresult: 0 Success\n"
        "control: 1.2.840.113556.1.4.319 false MAUCAQAEAA==\npagedresults: cookie=\n\n"
        "# numResponses: 3\n# numEntries: 2\n"
    )
    path = tmp_path / "ldapsearch.ldif"
    path.write_text(text, encoding="utf-8")
    entries = list(LdifSource(path).entries())
    assert [e.dn for e in entries] == ["CN=Ann,OU=Staff,DC=contoso,DC=com", "CN=Bob,OU=Staff,DC=contoso,DC=com"]
    assert entries[1].attributes["mail"] == ("ann@contoso.com",)
    # Any other control still marks a change record.
    path.write_text(text.replace("1.2.840.113556.1.4.319", "1.2.840.113556.1.4.805"), encoding="utf-8")
    with pytest.raises(SourceError, match="control"):
        list(LdifSource(path).entries())
