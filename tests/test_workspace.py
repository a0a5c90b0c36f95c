"""The workspace file: schema, stable finding identity across rescans, resolution, file errors.

Real SQLite files in tmp_path; scans of real LDIF files written with the project's LDIF writer.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncprep.cli import run
from syncprep.engine import ScanOptions, ScanResult, scan
from syncprep.errors import WorkspaceError
from syncprep.model import Entry
from syncprep.output.ldif import write_entries
from syncprep.sources.ldif import LdifSource
from syncprep.workspace import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    DecisionAction,
    Filters,
    _escape_dn_value,
    _parse_dn,
    finding_key,
    normalize_dn,
    open_workspace,
)

BASE = "OU=Staff,DC=contoso,DC=com"
USER_CLASSES = ("top", "person", "organizationalPerson", "user")


def user(name: str, dn: str | None = None, base: str = BASE, **attrs: str | tuple[str, ...]) -> Entry:
    """A valid, mail-enabled user; keyword arguments replace or add attributes (lower-case names)."""
    attributes: dict[str, tuple[str, ...]] = {
        "objectclass": USER_CLASSES,
        "cn": (name,),
        "samaccountname": (name,),
        "userprincipalname": (f"{name}@contoso.com",),
        "mail": (f"{name}@contoso.com",),
        "mailnickname": (name,),
        "displayname": (name.capitalize(),),
        "proxyaddresses": (f"SMTP:{name}@contoso.com",),
    }
    for key, value in attrs.items():
        attributes[key] = value if isinstance(value, tuple) else (value,)
    return Entry(dn or f"CN={name},{base}", attributes)


def scan_entries(tmp_path: Path, entries: Iterable[Entry], name: str = "dir.ldif", **options: object) -> ScanResult:
    path = tmp_path / name
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        write_entries(entries, out)
    return scan([LdifSource(path)], ScanOptions(**options))  # type: ignore[arg-type]


def problem_users() -> list[Entry]:
    return [
        user("ann", mail="ann@contoso.com "),  # whitespace: safe fix
        user("bob", userprincipalname="bob smith@contoso.com"),  # character: unsafe fix
        user("cy", proxyaddresses=("SMTP:cy@contoso.com", "smtp:cy@contoso.local")),  # topleveldomain: REMOVE
        user("dee"),
    ]


# ---------------------------------------------------------------------------------------------
# schema


def test_new_workspace_has_the_versioned_schema(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    with open_workspace(db, create=True) as ws:
        assert ws.latest_scan() is None
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"scans", "findings", "scan_findings", "decisions", "decision_log", "batches", "changes"} <= tables
    columns = {r[1] for r in conn.execute("PRAGMA table_info(changes)")}
    assert {"batch_id", "dn", "attribute", "old_values", "new_values", "state", "server_message"} <= columns
    columns = {r[1] for r in conn.execute("PRAGMA table_info(batches)")}
    assert {"id", "created_at", "source_url"} <= columns


def test_the_journal_is_append_only(tmp_path: Path) -> None:
    db = tmp_path / "w.db"
    open_workspace(db, create=True).close()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO batches (created_at, source_url) VALUES ('now', 'ldaps://dc1')")
    conn.execute(
        "INSERT INTO changes (batch_id, seq, dn, attribute, old_values, new_values, finding_ids)"
        " VALUES (1, 1, 'CN=x', 'mail', '[]', '[]', '[]')"
    )
    conn.commit()
    for table in ("changes", "batches"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(f"DELETE FROM {table}")


def test_a_scan_is_recorded_with_its_settings_and_counts(tmp_path: Path) -> None:
    result = scan_entries(tmp_path, problem_users(), verified_domains=("contoso.com",))
    with open_workspace(tmp_path / "w.db", create=True) as ws:
        done = ws.record_scan(result)
        record = ws.require_scan()
        stored = ws.findings()
    assert done.new == len(result.findings) == record.findings == len(stored) >= 3
    assert record.options.verified_domains == ("contoso.com",)
    assert record.sources == result.sources
    assert record.objects_read == 4
    assert {s.finding for s in stored} == set(result.findings)


# ---------------------------------------------------------------------------------------------
# identity across rescans


def test_a_decision_survives_a_rescan_with_other_dn_spelling(tmp_path: Path) -> None:
    first = scan_entries(tmp_path, problem_users())
    respelled = [
        Entry(f"cn={str(e.first('cn')).upper()} , ou=staff,DC=Contoso, DC=COM", dict(e.attributes))
        for e in problem_users()
    ]
    with open_workspace(tmp_path / "w.db", create=True) as ws:
        ws.record_scan(first)
        bob = ws.findings(Filters(attributes=("userPrincipalName",)))[0]
        ws.set_decisions([(bob.id, DecisionAction.EDIT, "bob.smith@contoso.com", "")], origin="test")
        again = ws.record_scan(scan_entries(tmp_path, respelled, name="again.ldif"))
        assert (again.new, again.resolved) == (0, 0)
        after = ws.finding(bob.id)
    assert after.status == "open" and after.last_scan == 2 and after.first_scan == 1
    assert after.decision is not None and after.decision.update == "bob.smith@contoso.com"
    assert after.finding.dn.startswith("cn=BOB , ou=staff")  # refreshed to the latest spelling


def test_a_fixed_finding_becomes_resolved_and_comes_back_with_its_decision(tmp_path: Path) -> None:
    with open_workspace(tmp_path / "w.db", create=True) as ws:
        ws.record_scan(scan_entries(tmp_path, problem_users()))
        ann = ws.findings(Filters(errors=("whitespace",)))[0]
        ws.set_decisions([(ann.id, DecisionAction.EDIT, "ann@contoso.com", "")], origin="test")
        fixed = [user("ann"), *problem_users()[1:]]
        done = ws.record_scan(scan_entries(tmp_path, fixed, name="fixed.ldif"))
        assert (done.new, done.resolved) == (0, 1)
        gone = ws.finding(ann.id)
        assert (gone.status, gone.resolved_scan) == ("resolved", 2)
        assert gone.decision is not None  # resolved, not deleted
        assert ann.id not in {s.id for s in ws.findings()}
        assert ann.id in {s.id for s in ws.findings(status="resolved")}
        back = ws.record_scan(scan_entries(tmp_path, problem_users(), name="back.ldif"))
        assert back.reopened == 1
        again = ws.finding(ann.id)
    assert again.status == "open" and again.resolved_scan is None
    assert again.decision is not None and again.decision.update == "ann@contoso.com"


def test_other_error_types_make_another_finding(tmp_path: Path) -> None:
    entries = [user("eve", userprincipalname="eve@litware.com")]
    with open_workspace(tmp_path / "w.db", create=True) as ws:
        ws.record_scan(scan_entries(tmp_path, entries))
        assert ws.findings() == []
        ws.record_scan(scan_entries(tmp_path, entries, verified_domains=("contoso.com",)))
        (eve,) = ws.findings()
        assert eve.first_scan == 2


def test_finding_key_normalises_dn_and_attribute_only() -> None:
    key = finding_key("CN=Bob,OU=Staff,DC=x", "mail", "Bob@x.com", ["whitespace", "character"])
    assert key == finding_key("cn=bob , ou=STAFF,dc=X", "MAIL", "Bob@x.com", ["character", "whitespace"])
    assert key != finding_key("CN=Bob,OU=Staff,DC=x", "mail", "bob@x.com", ["whitespace", "character"])
    assert key != finding_key("CN=Bob,OU=Staff,DC=x", "mail", "Bob@x.com", ["whitespace"])
    assert key != finding_key("CN=Bob2,OU=Staff,DC=x", "mail", "Bob@x.com", ["whitespace", "character"])


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("CN=Smith\\, Bob,OU=Staff,DC=x", "cn=smith\\2c bob , ou=staff,dc=x"),
        ("CN=J\\C3\\BCrgen,DC=x", "CN=Jürgen,DC=x"),
        ('CN="Smith, Bob",DC=x', "CN=Smith\\, Bob,DC=x"),
        ("CN=a+SN=b,DC=x", "cn=a + sn=b,dc=x"),
        ("CN=Ab\\0ACNF:123,DC=x", "cn=ab\\0acnf:123,dc=x"),
    ],
)
def test_normalize_dn_equates_spellings(one: str, other: str) -> None:
    assert normalize_dn(one) == normalize_dn(other)


def test_normalize_dn_keeps_escaped_edge_spaces() -> None:
    assert normalize_dn("CN=\\ Bob\\ ,DC=x") != normalize_dn("CN=Bob,DC=x")


_DN_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@given(st.lists(st.tuples(st.sampled_from(["CN", "OU", "DC", "cn"]), _DN_TEXT), min_size=1, max_size=4))
def test_normalize_dn_of_an_escaped_dn_is_the_slow_path_and_idempotent(rdns: list[tuple[str, str]]) -> None:
    dn = ",".join(f"{t}={_escape_dn_value(v)}" for t, v in rdns)
    slow = ",".join("+".join(f"{t}={_escape_dn_value(v)}" for t, v in rdn) for rdn in _parse_dn(dn))
    assert normalize_dn(dn) == slow
    assert normalize_dn(normalize_dn(dn)) == normalize_dn(dn)


# ---------------------------------------------------------------------------------------------
# file errors


def test_missing_workspace_is_not_created_by_readers(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="no workspace here"):
        open_workspace(tmp_path / "none.db")
    assert not (tmp_path / "none.db").exists()


def test_not_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("hello, I am a text file\n")
    with pytest.raises(WorkspaceError, match="not a SQLite database"):
        open_workspace(path, create=True)
    assert path.read_text() == "hello, I am a text file\n"


def test_another_programs_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(WorkspaceError, match="another program"):
        open_workspace(path, create=True)


def test_a_newer_workspace_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    open_workspace(path, create=True).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(WorkspaceError, match="newer syncprep"):
        open_workspace(path)


def test_a_locked_workspace(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    result = scan_entries(tmp_path, problem_users())
    open_workspace(path, create=True).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with open_workspace(path, timeout=0.1) as ws, pytest.raises(WorkspaceError, match="locked"):
            ws.record_scan(result)
    finally:
        other.execute("ROLLBACK")
        other.close()
    with open_workspace(path) as ws:
        assert ws.latest_scan() is None  # nothing half-written


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_workspace(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(WorkspaceError, match="cannot"):
            open_workspace(folder / "w.db", create=True)
    finally:
        folder.chmod(0o700)


# ---------------------------------------------------------------------------------------------
# the command line


def test_scan_db_records_and_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "dir.ldif"
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        write_entries(problem_users(), out)
    assert run(["scan", str(path), "--format", "jsonl", "--db"]) == 1
    err = capsys.readouterr().err
    assert "recorded scan 1 in syncprep.db" in err
    assert (tmp_path / "syncprep.db").exists()
    assert run(["scan", str(path), "--format", "jsonl", "--db", "other.db"]) == 1
    assert "recorded scan 1 in other.db: 3 findings (3 new" in capsys.readouterr().err

    (tmp_path / "text.db").write_text("not a database")
    for args in (["scan", str(path), "--db", "text.db"], ["findings", "--db", "text.db"], ["plan", "--db", "x.db"]):
        code = run(args)
        captured = capsys.readouterr()
        assert code == 2, args
        lines = captured.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("syncprep: error: "), captured.err
        assert "Traceback" not in captured.err
    assert not (tmp_path / "x.db").exists()
