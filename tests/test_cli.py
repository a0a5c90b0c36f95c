"""The command line, end to end: in-process through ``syncprep.cli.run`` (exit code returned,
output captured), and a few times as a real ``python -m syncprep`` process.

Inputs are real LDIF files written with the project's LDIF writer into tmp_path.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from syncprep.cli import main, run
from syncprep.model import Action, Entry, ErrorType, ObjectKind, Safety, Severity
from syncprep.output.formats import IDFIX_COLUMNS, restore
from syncprep.output.ldif import write_entries
from test_workspace import BASE, user

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IDFIX_FIXTURE = SHARED_DATA / "idfix-error-ou" / "idfix-error-ou.ldif"

# The JSON/JSONL contract (Finding.to_dict): exactly these keys, severity and note included.
CONTRACT_KEYS = {
    "dn", "cn", "object_class", "attribute", "value", "errors", "rule", "update", "safety", "action",
    "holders", "severity", "note",
}
HOLDER_KEYS = {"dn", "attribute", "object_class"}
CSV_HEADER = "DISTINGUISHEDNAME,COMMONNAME,OBJECTCLASS,ATTRIBUTE,ERROR,VALUE,UPDATE,PROPOSEDACTION,ACTION"


# ---------------------------------------------------------------------------------------------
# helpers


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> Outcome:
    """Run the CLI in-process; output captured."""
    capsys.readouterr()  # start clean
    code = run([str(a) for a in args])
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def process(*args: str | Path, cwd: Path) -> Outcome:
    """Run ``python -m syncprep`` as a real process."""
    env = {k: v for k, v in os.environ.items() if k != "SYNCPREP_DEBUG"}
    done = subprocess.run(
        [sys.executable, "-m", "syncprep", *(str(a) for a in args)],
        cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8", timeout=120, check=False,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def ldif(path: Path, entries: Iterable[Entry]) -> Path:
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        write_entries(entries, out)
    return path


def jsonl(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def rules_of(findings: list[dict[str, object]]) -> set[str]:
    return {str(f["rule"]) for f in findings}


def assert_one_error_line(result: Outcome, *expected: str) -> None:
    assert result.code == 2, result
    assert len(result.err_lines) == 1, f"expected one stderr line, got: {result.err!r}"
    assert result.err_lines[0].startswith("syncprep: error: "), result.err
    for text in expected:
        assert text in result.err_lines[0]
    assert result.out == ""
    assert "Traceback" not in result.out + result.err


@pytest.fixture
def clean_ldif(tmp_path: Path) -> Path:
    return ldif(tmp_path / "clean.ldif", [user("alice"), user("brian")])


@pytest.fixture
def mixed_ldif(tmp_path: Path) -> Path:
    """Users with one known problem each (and one valid user)."""
    return ldif(
        tmp_path / "mixed.ldif",
        [
            user("ann", displayname=' =HYPERLINK("x")'),  # whitespace warning; the fix starts with '='
            user("bob", userprincipalname='bob,"smith"@contoso.com'),  # comma and quote: character
            # topleveldomain; the primary SMTP address suggests fabrikam.com, a suffix map contoso.com
            user("carl", userprincipalname="carl@contoso.local", mail="carl@fabrikam.com",
                 proxyaddresses="SMTP:carl@fabrikam.com"),
            user("dora", userprincipalname="dora@litware.com"),  # fine until domains are verified
            user("emil"),  # valid
        ],
    )


@pytest.fixture(scope="module")
def demo_jsonl() -> list[dict[str, object]]:
    # Module-scoped, so it cannot use capsys: a real process, once.
    result = process("scan", "demo", "--format", "jsonl", cwd=Path(__file__).parent)
    assert result.code == 1, result.err
    return jsonl(result.out)


# ---------------------------------------------------------------------------------------------
# scan demo, text


def test_scan_demo_text(capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(capsys, "scan", "demo")
    assert result.code == 1
    first = result.out.splitlines()[0]
    pattern = r"Scanned \d+ objects from 1 source\(s\) in [\d.]+ s: \d+ in scope, \d+ skipped \(profile m365\)\."
    assert re.match(pattern, first), first
    # The summary table: error types by attribute, with a total column.
    assert re.search(r"\d+ findings on \d+ objects", result.out)
    for heading in ("error", "total", "anchor", "blank", "format", "mail"):
        assert heading in result.out
    assert "Skipped, as Entra Connect would:" in result.out
    # Findings by object: DN (kind), attribute: 'value', error types [codes], fix.
    assert re.search(r"^CN=.+,DC=com  \(user\)$", result.out, re.MULTILINE)
    assert re.search(r"^  userPrincipalName: '.+'$", result.out, re.MULTILINE)
    assert re.search(r"^      fix: ", result.out, re.MULTILINE)
    assert "also held by:" in result.out
    # The sample tenant is announced on stderr, never mixed into the report.
    assert result.err.startswith("syncprep: demo: using the sample tenant")
    assert "Traceback" not in result.err


def _summary_table(report: str) -> str:
    """The text between the "N findings on M objects" title and the skipped counts."""
    start = re.search(r"^\d+ findings on \d+ objects", report, re.MULTILINE)
    assert start
    return report[start.end() : report.index("Skipped, as Entra Connect would:")]


def test_scan_demo_summary_table_names_in_full(
    capsys: pytest.CaptureFixture[str], demo_jsonl: list[dict[str, object]]
) -> None:
    table = _summary_table(cli(capsys, "scan", "demo").out)
    assert "…" not in table
    words = set(re.findall(r"[\w-]+", table))
    errors = {e for f in demo_jsonl for e in f["errors"]}  # type: ignore[attr-defined]
    attributes = {str(f["attribute"]) for f in demo_jsonl}
    assert errors - words == set()
    assert attributes - words == set()


def test_python_dash_m_scan_demo(tmp_path: Path) -> None:
    result = process("scan", "demo", cwd=tmp_path)
    assert result.code == 1, result.err
    assert result.out.startswith("Scanned ")
    assert re.search(r"\d+ findings on \d+ objects", result.out)
    assert "Traceback" not in result.err


def test_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(capsys, "scan", "demo", "--exit-zero", "--format", "jsonl")
    assert result.code == 0
    assert len(jsonl(result.out)) > 10


def test_clean_ldif_exits_zero(capsys: pytest.CaptureFixture[str], clean_ldif: Path) -> None:
    result = cli(capsys, "scan", clean_ldif)
    assert result.code == 0, result.out
    assert "Scanned 2 objects from 1 source(s)" in result.out
    assert "2 in scope, 0 skipped" in result.out
    assert "No findings" in result.out
    assert result.err == ""
    for fmt in ("jsonl", "csv"):
        result = cli(capsys, "scan", clean_ldif, "--format", fmt)
        assert result.code == 0
    assert cli(capsys, "scan", clean_ldif, "--format", "jsonl").out == ""


def test_python_dash_m_clean_ldif(clean_ldif: Path, tmp_path: Path) -> None:
    result = process("scan", clean_ldif, cwd=tmp_path)
    assert result.code == 0, result.err
    assert "No findings" in result.out


# ---------------------------------------------------------------------------------------------
# JSON Lines and JSON


def test_jsonl_contract(demo_jsonl: list[dict[str, object]]) -> None:
    assert len(demo_jsonl) > 20
    duplicates = 0
    for f in demo_jsonl:
        assert set(f) == CONTRACT_KEYS, f
        assert isinstance(f["dn"], str) and f["dn"]
        assert isinstance(f["cn"], str) and f["cn"]
        assert f["object_class"] in {k.value for k in ObjectKind}
        assert isinstance(f["attribute"], str) and isinstance(f["value"], str)
        errors = f["errors"]
        assert isinstance(errors, list) and errors
        assert set(errors) <= {e.value for e in ErrorType}
        assert re.fullmatch(r"[A-Z]\d{3}", str(f["rule"]))
        assert f["update"] is None or isinstance(f["update"], str)
        assert f["safety"] in {s.value for s in Safety}
        assert f["action"] in {a.value for a in Action}
        assert f["severity"] in {s.value for s in Severity}
        assert isinstance(f["note"], str)
        holders = f["holders"]
        assert isinstance(holders, list)
        for h in holders:
            assert isinstance(h, dict) and set(h) == HOLDER_KEYS
            assert h["object_class"] in {k.value for k in ObjectKind}
        if "duplicate" in errors:
            duplicates += 1
            assert len(holders) >= 2, f
            # The finding's own object is among the holders, with the attribute it holds it in.
            assert {"dn": f["dn"], "attribute": f["attribute"], "object_class": f["object_class"]} in holders, f
        elif "anchor" not in errors:
            assert holders == [], f
    assert duplicates >= 5


def test_jsonl_duplicate_of_different_kinds(demo_jsonl: list[dict[str, object]]) -> None:
    """ObjectTypeMismatch: holders of different kinds are named with their kinds."""
    mixed = [
        f for f in demo_jsonl
        if "duplicate" in f["errors"] and len({h["object_class"] for h in f["holders"]}) > 1  # type: ignore[union-attr]
    ]
    assert mixed, "the demo has a value shared by objects of different kinds"
    assert any("ObjectTypeMismatch" in str(f["note"]) for f in mixed)


def test_json_document(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    result = cli(capsys, "scan", "demo", "--format", "json")
    assert result.code == 1
    doc = json.loads(result.out)
    assert set(doc) == {
        "syncprep", "sources", "profile", "objects_read", "objects_in_scope", "skipped", "summary", "findings",
    }
    assert doc["profile"] == "m365"
    assert len(doc["sources"]) == 1 and doc["sources"][0].endswith("demo.ldif")
    assert doc["objects_read"] > 300
    assert doc["objects_in_scope"] + sum(doc["skipped"].values()) == doc["objects_read"]
    findings = doc["findings"]
    assert findings and all(set(f) == CONTRACT_KEYS for f in findings)
    # The summary counts each finding under each of its error types.
    for error, row in doc["summary"].items():
        assert sum(row.values()) == sum(1 for f in findings if error in f["errors"])
    # The same findings as JSON Lines, in the same order.
    as_lines = cli(capsys, "scan", "demo", "--format", "jsonl")
    assert jsonl(as_lines.out) == findings
    # -o writes the document to the file, nothing to stdout.
    target = tmp_path / "report.json"
    written = cli(capsys, "scan", "demo", "--format", "json", "-o", target)
    assert written.code == 1 and written.out == ""
    assert json.loads(target.read_text(encoding="utf-8"))["findings"] == findings


# ---------------------------------------------------------------------------------------------
# CSV


def test_csv_file(capsys: pytest.CaptureFixture[str], mixed_ldif: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    result = cli(capsys, "scan", mixed_ldif, "--format", "csv", "-o", target)
    assert result.code == 1
    assert result.out == ""
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM, for Excel"
    assert raw.count(b"\n") == raw.count(b"\r\n") > 1, "every line ends with CRLF"
    text = raw.decode("utf-8-sig")
    assert text.split("\r\n", 1)[0] == CSV_HEADER
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == IDFIX_COLUMNS
    assert all(len(r) == len(IDFIX_COLUMNS) for r in rows)
    cells = [dict(zip(IDFIX_COLUMNS, r, strict=True)) for r in rows[1:]]
    by_cn = {c["COMMONNAME"]: c for c in cells}
    assert set(by_cn) == {"ann", "bob", "carl"}

    # RFC 4180: a value with a comma and quotes survives the round trip.
    bob = by_cn["bob"]
    assert bob["VALUE"] == 'bob,"smith"@contoso.com'
    assert bob["ATTRIBUTE"] == "userPrincipalName" and bob["ERROR"] == "character"
    assert bob["DISTINGUISHEDNAME"] == f"CN=bob,{BASE}"
    assert bob["OBJECTCLASS"] == "user"
    assert bob["PROPOSEDACTION"] == "EDIT" and bob["ACTION"] == ""

    # A formula-like cell is neutralised with a leading "'".
    ann = by_cn["ann"]
    assert ann["ERROR"] == "whitespace"
    # A spreadsheet may trim the space, so a formula behind it is neutralised too.
    assert ann["VALUE"] == "' =HYPERLINK(\"x\")"
    assert restore(ann["VALUE"]) == ' =HYPERLINK("x")'
    assert ann["UPDATE"] == "'=HYPERLINK(\"x\")"
    assert restore(ann["UPDATE"]) == '=HYPERLINK("x")'

    # The same findings as JSON Lines.
    as_lines = jsonl(cli(capsys, "scan", mixed_ldif, "--format", "jsonl").out)
    assert [(f["dn"], f["attribute"], f["value"]) for f in as_lines] == [
        (c["DISTINGUISHEDNAME"], c["ATTRIBUTE"], restore(c["VALUE"])) for c in cells
    ]


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_csv_neutralises_formula_cells(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, start: str
) -> None:
    # The cn, the flagged value and its trimmed fix all start with the formula character.
    formula = f"{start}SUM(1+1)"
    source = ldif(tmp_path / "formula.ldif", [user("formula", cn=formula, displayname=f"{formula} ")])
    target = tmp_path / "report.csv"
    assert cli(capsys, "scan", source, "--format", "csv", "-o", target).code == 1
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"), newline="")))
    assert len(rows) == 2
    row = dict(zip(IDFIX_COLUMNS, rows[1], strict=True))
    assert row["ATTRIBUTE"] == "displayName"
    for column in ("COMMONNAME", "VALUE", "UPDATE"):
        assert row[column].startswith("'" + start), (column, row[column])
    assert restore(row["VALUE"]) == f"{formula} "
    assert restore(row["UPDATE"]) == formula


def test_python_dash_m_csv_to_stdout(mixed_ldif: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "syncprep", "scan", str(mixed_ldif), "--format", "csv"],
        cwd=tmp_path, capture_output=True, timeout=120, check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith(CSV_HEADER.encode() + b"\r\n")
    assert done.stdout.count(b"\n") == done.stdout.count(b"\r\n") == 4


# ---------------------------------------------------------------------------------------------
# narrowing: --select, --ignore, --base-dn, --exclusions


def test_select_and_ignore(capsys: pytest.CaptureFixture[str], demo_jsonl: list[dict[str, object]]) -> None:
    everything = rules_of(demo_jsonl)
    assert any(r.startswith("U") for r in everything) and any(r.startswith("X") for r in everything)

    selected = jsonl(cli(capsys, "scan", "demo", "--select", "U", "--format", "jsonl").out)
    assert selected and all(str(f["rule"]).startswith("U") for f in selected)
    assert len(selected) < len(demo_jsonl)

    ignored = jsonl(cli(capsys, "scan", "demo", "--ignore", "duplicate", "--format", "jsonl").out)
    assert ignored
    assert not [f for f in ignored if "duplicate" in f["errors"]]  # type: ignore[operator]
    assert not [f for f in ignored if str(f["rule"]).startswith("X")]
    assert len(ignored) == sum(1 for f in demo_jsonl if f["errors"] != ["duplicate"])

    # Several items, comma-separated or repeated.
    both = jsonl(cli(capsys, "scan", "demo", "--select", "U008,X001", "--select", "D", "--format", "jsonl").out)
    assert both and rules_of(both) <= {"U008", "X001", "D001", "D002", "D003"}


def test_select_unknown_code(capsys: pytest.CaptureFixture[str], clean_ldif: Path) -> None:
    result = cli(capsys, "scan", clean_ldif, "--select", "NOPE")
    assert_one_error_line(result, "NOPE")


def test_select_unknown_code_on_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_error_line(cli(capsys, "scan", "demo", "--select", "NOPE"), "NOPE")


def test_python_dash_m_select_unknown_code(clean_ldif: Path, tmp_path: Path) -> None:
    result = process("scan", clean_ldif, "--ignore", "NOPE", cwd=tmp_path)
    assert_one_error_line(result, "NOPE")


def test_base_dn(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = ldif(
        tmp_path / "two-ous.ldif",
        [
            user("inside", base="OU=Sales,DC=contoso,DC=com", userprincipalname="inside@contoso.local"),
            user("outside", base="OU=Labs,DC=contoso,DC=com", userprincipalname="outside@contoso.local"),
        ],
    )
    full = json.loads(cli(capsys, "scan", source, "--format", "json").out)
    assert {f["dn"] for f in full["findings"]} == {"CN=inside,OU=Sales,DC=contoso,DC=com",
                                                   "CN=outside,OU=Labs,DC=contoso,DC=com"}
    # The base DN matches case-insensitively.
    result = cli(capsys, "scan", source, "--base-dn", "ou=sales,dc=contoso,dc=com", "--format", "json")
    doc = json.loads(result.out)
    assert [f["dn"] for f in doc["findings"]] == ["CN=inside,OU=Sales,DC=contoso,DC=com"]
    assert doc["skipped"] == {"outside the selected --base-dn": 1}
    assert doc["objects_in_scope"] == 1
    text = cli(capsys, "scan", source, "--base-dn", "OU=Sales,DC=contoso,DC=com")
    assert "outside the selected --base-dn" in text.out
    # Repeatable: both OUs back in scope.
    again = cli(capsys, "scan", source, "--base-dn", "OU=Sales,DC=contoso,DC=com",
                "--base-dn", "OU=Labs,DC=contoso,DC=com", "--format", "json")
    assert len(json.loads(again.out)["findings"]) == 2


def test_base_dn_on_demo(capsys: pytest.CaptureFixture[str]) -> None:
    base = "OU=Needs Review,DC=contoso,DC=com"
    doc = json.loads(cli(capsys, "scan", "demo", "--base-dn", base, "--format", "json").out)
    assert doc["skipped"]["outside the selected --base-dn"] > 100
    assert doc["findings"]
    assert all(f["dn"].lower().endswith("," + base.lower()) for f in doc["findings"])


def test_exclusions_none_widens_scope(capsys: pytest.CaptureFixture[str]) -> None:
    default = json.loads(cli(capsys, "scan", "demo", "--format", "json").out)
    none = json.loads(cli(capsys, "scan", "demo", "--exclusions", "none", "--format", "json").out)
    idfix = json.loads(cli(capsys, "scan", "demo", "--exclusions", "idfix", "--format", "json").out)
    assert none["objects_read"] == default["objects_read"] == idfix["objects_read"]
    assert none["objects_in_scope"] > default["objects_in_scope"]
    assert sum(none["skipped"].values()) < sum(default["skipped"].values())
    assert "isCriticalSystemObject is TRUE" in default["skipped"]
    assert "isCriticalSystemObject is TRUE" not in none["skipped"]


def test_show_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    plain = cli(capsys, "scan", "demo").out
    listed = cli(capsys, "scan", "demo", "--show-skipped").out
    assert "Skipped objects:" not in plain
    assert "Skipped objects:" in listed
    assert re.search(r"^  CN=.+  \(isCriticalSystemObject is TRUE\)$", listed, re.MULTILINE)


def test_strict_ascii(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    source = ldif(tmp_path / "names.ldif", [user("juergen", displayname="Jürgen Müller", givenname="Jürgen")])
    assert cli(capsys, "scan", source).code == 0
    result = cli(capsys, "scan", source, "--strict-ascii", "--format", "jsonl")
    assert result.code == 1
    findings = jsonl(result.out)
    assert {(f["attribute"], f["rule"], f["severity"]) for f in findings} == {
        ("displayName", "C004", "warning"), ("givenName", "C004", "warning"),
    }
    assert {f["update"] for f in findings} == {"Jurgen Muller", "Jurgen"}


# ---------------------------------------------------------------------------------------------
# profile, domains, suffix map


@pytest.mark.skipif(not IDFIX_FIXTURE.exists(), reason="IdFix error-OU fixture not available")
def test_profile_dedicated(capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(capsys, "scan", "--profile", "dedicated", IDFIX_FIXTURE, "--format", "jsonl")
    assert result.code == 1
    dedicated = jsonl(result.out)
    assert {"N004", "T003", "T004"} <= rules_of(dedicated)
    by_rule = {str(f["rule"]): f for f in dedicated}
    assert by_rule["N004"]["attribute"] == "mailNickname" and by_rule["N004"]["errors"] == ["blank"]
    assert by_rule["T003"]["attribute"] == "targetAddress" and by_rule["T003"]["errors"] == ["blank"]
    assert by_rule["T004"]["attribute"] == "targetAddress"
    assert any("MailnicknameBlank" in str(f["dn"]) for f in dedicated if f["rule"] == "N004")
    # The dedicated-only rules do not run in the default profile.
    m365 = jsonl(cli(capsys, "scan", IDFIX_FIXTURE, "--format", "jsonl").out)
    assert not {"N004", "T003", "T004"} & rules_of(m365)


def test_verified_domains(capsys: pytest.CaptureFixture[str], mixed_ldif: Path, tmp_path: Path) -> None:
    def unverified(*options: str | Path) -> list[tuple[object, object]]:
        out = cli(capsys, "scan", mixed_ldif, *options, "--format", "jsonl").out
        return [
            (f["dn"], f["value"])
            for f in jsonl(out)
            if "unverifieddomain" in f["errors"] and f["attribute"] == "userPrincipalName"  # type: ignore[operator]
        ]

    dora = (f"CN=dora,{BASE}", "dora@litware.com")
    assert unverified() == []
    assert unverified("--verified-domains", "contoso.com") == [dora]
    assert unverified("--verified-domains", "contoso.com,litware.com") == []

    listing = tmp_path / "domains.txt"
    listing.write_text(
        "# the tenant's verified domains\ncontoso.com   # primary\n\n  fabrikam.com\n", encoding="utf-8"
    )
    assert unverified("--verified-domains", f"@{listing}") == [dora]
    listing.write_text("contoso.com\nlitware.com # acquired\n", encoding="utf-8")
    assert unverified("--verified-domains", f"@{listing}") == []


def test_verified_domains_unreadable_file(capsys: pytest.CaptureFixture[str], mixed_ldif: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    assert_one_error_line(cli(capsys, "scan", mixed_ldif, "--verified-domains", f"@{missing}"), str(missing))


def test_upn_suffix_map(capsys: pytest.CaptureFixture[str], mixed_ldif: Path) -> None:
    def carl(*options: str) -> dict[str, object]:
        out = cli(capsys, "scan", mixed_ldif, *options, "--format", "jsonl").out
        (finding,) = [f for f in jsonl(out) if f["value"] == "carl@contoso.local"]
        return finding

    without = carl()
    assert without["errors"] == ["topleveldomain"]
    assert without["update"] == "carl@fabrikam.com"  # the domain of the primary SMTP address
    mapped = carl("--upn-suffix-map", "contoso.local=contoso.com")
    assert mapped["update"] == "carl@contoso.com"
    assert mapped["action"] == "EDIT" and mapped["safety"] == "unsafe"
    # A map for another suffix changes nothing.
    assert carl("--upn-suffix-map", "corp.local=contoso.com")["update"] == "carl@fabrikam.com"


# ---------------------------------------------------------------------------------------------
# several sources


def test_duplicate_across_two_sources(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    shared = "smtp:shared@contoso.com"
    first = ldif(tmp_path / "emea.ldif", [user("eve", base="OU=Staff,DC=emea,DC=contoso,DC=com",
                                               proxyaddresses=("SMTP:eve@contoso.com", shared))])
    second = ldif(tmp_path / "apac.ldif", [user("fay", base="OU=Staff,DC=apac,DC=contoso,DC=com",
                                                proxyaddresses=("SMTP:fay@contoso.com", shared))])
    # Each file alone is clean.
    assert cli(capsys, "scan", first).code == 0
    assert cli(capsys, "scan", second).code == 0

    result = cli(capsys, "scan", first, second, "--format", "json")
    assert result.code == 1
    doc = json.loads(result.out)
    assert doc["sources"] == [str(first), str(second)]
    assert doc["objects_read"] == 2
    findings = doc["findings"]
    eve, fay = "CN=eve,OU=Staff,DC=emea,DC=contoso,DC=com", "CN=fay,OU=Staff,DC=apac,DC=contoso,DC=com"
    assert sorted(f["dn"] for f in findings) == sorted([eve, fay])
    holders = [
        {"dn": fay, "attribute": "proxyAddresses", "object_class": "user"},
        {"dn": eve, "attribute": "proxyAddresses", "object_class": "user"},
    ]
    for f in findings:
        assert f["value"] == shared and f["errors"] == ["duplicate"] and f["rule"] == "X001"
        assert sorted(f["holders"], key=lambda h: h["dn"]) == sorted(holders, key=lambda h: h["dn"])
    text = cli(capsys, "scan", first, second)
    assert "from 2 source(s)" in text.out
    assert f"also held by: {fay} (proxyAddresses)" in text.out


# ---------------------------------------------------------------------------------------------
# input errors: exit 2, one stderr line, no traceback


@dataclass(frozen=True)
class BadInput:
    name: str
    text: str
    line: int | None  # the line the error names


BAD_INPUTS = [
    BadInput(
        "no-colon",
        "version: 1\n\ndn: CN=a,DC=contoso,DC=com\nobjectClass: user\ncn: a\nthis line has no colon\n",
        6,
    ),
    BadInput(
        "change-record",
        "version: 1\n\ndn: CN=a,DC=contoso,DC=com\nchangetype: modify\nreplace: mail\nmail: a@contoso.com\n-\n",
        4,
    ),
    BadInput(
        "broken-base64",
        "version: 1\n\ndn: CN=a,DC=contoso,DC=com\nobjectClass: user\ncn: a\ndisplayName:: @@not base64@@\n",
        6,
    ),
]


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[b.name for b in BAD_INPUTS])
def test_malformed_ldif(capsys: pytest.CaptureFixture[str], tmp_path: Path, bad: BadInput) -> None:
    path = tmp_path / f"{bad.name}.ldif"
    path.write_bytes(bad.text.encode("utf-8"))
    for fmt in ("text", "jsonl", "csv"):
        assert_one_error_line(cli(capsys, "scan", path, "--format", fmt), f"{path}:{bad.line}: ")


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.ldif"
    assert_one_error_line(cli(capsys, "scan", missing), str(missing), "no such file")


def test_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert_one_error_line(cli(capsys, "scan", tmp_path), str(tmp_path), "directory")


def test_bad_source_among_good_writes_no_report(
    capsys: pytest.CaptureFixture[str], clean_ldif: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.ldif"
    bad.write_text(BAD_INPUTS[0].text, encoding="utf-8")
    target = tmp_path / "report.csv"
    assert_one_error_line(cli(capsys, "scan", clean_ldif, bad, "--format", "csv", "-o", target), f"{bad}:6: ")
    assert not target.exists()


@pytest.mark.parametrize("bad", [BAD_INPUTS[1]], ids=[BAD_INPUTS[1].name])
def test_python_dash_m_malformed_ldif(tmp_path: Path, bad: BadInput) -> None:
    path = tmp_path / f"{bad.name}.ldif"
    path.write_bytes(bad.text.encode("utf-8"))
    assert_one_error_line(process("scan", path, cwd=tmp_path), f"{path}:{bad.line}: ")
    missing = tmp_path / "missing.ldif"
    assert_one_error_line(process("scan", missing, cwd=tmp_path), str(missing))


# ---------------------------------------------------------------------------------------------
# syncprep rules


def test_rules_list(capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(capsys, "rules")
    assert result.code == 0
    for code in ("U001", "U008", "X001", "A001", "C001", "P005", "T003"):
        assert code in result.out, code
    assert re.search(r"\d+ checks", result.out)


@pytest.mark.parametrize("name", ["U008", "u008", "upn-non-routable-domain"])
def test_rules_explain(capsys: pytest.CaptureFixture[str], name: str) -> None:
    result = cli(capsys, "rules", name)
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].startswith("U008 upn-non-routable-domain")
    for heading in ("What it does", "Why it matters", "Example", "Fix safety"):
        assert heading in lines, heading
    assert "bob@contoso.local -> bob@contoso.com" in result.out


def test_rules_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_error_line(cli(capsys, "rules", "NOPE"), "NOPE")


def test_python_dash_m_rules(tmp_path: Path) -> None:
    result = process("rules", "X001", cwd=tmp_path)
    assert result.code == 0, result.err
    assert result.out.startswith("X001 duplicate-address")


# ---------------------------------------------------------------------------------------------
# help


def _option_names(command: click.Command) -> list[str]:
    return [opt for p in command.params if isinstance(p, click.Option) and not p.hidden for opt in p.opts]


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(capsys, "--help")
    assert result.code == 0
    assert "Usage: syncprep" in result.out
    for command in ("scan", "rules"):
        assert re.search(rf"^\s+{command}\s", result.out, re.MULTILINE), command
    assert "--version" in result.out
    assert cli(capsys, "-h").out == result.out


SCAN_OPTIONS = [
    "--profile", "--verified-domains", "--tenant", "--upn-suffix-map", "--exclusions", "--select", "--ignore",
    "--base-dn", "--strict-ascii", "--max-proxy-addresses", "--format", "-o", "--output", "--show-skipped",
    "--exit-zero", "--no-progress", "--encoding", "--separator", "--help",
]


def test_scan_help(capsys: pytest.CaptureFixture[str]) -> None:
    result = cli(capsys, "scan", "--help")
    assert result.code == 0
    assert "Usage: syncprep scan" in result.out
    scan_command = main.commands["scan"]  # type: ignore[attr-defined]
    declared = _option_names(scan_command)
    assert set(SCAN_OPTIONS) - {"--help"} <= set(declared)
    for option in [*declared, *SCAN_OPTIONS]:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", result.out), option
    for choice in ("m365", "dedicated", "entra", "idfix", "none", "text", "json", "jsonl", "csv"):
        assert choice in result.out


def test_python_dash_m_help(tmp_path: Path) -> None:
    result = process("scan", "--help", cwd=tmp_path)
    assert result.code == 0, result.err
    assert "--verified-domains" in result.out
    version = process("--version", cwd=tmp_path)
    assert version.code == 0 and version.out.startswith("syncprep")
