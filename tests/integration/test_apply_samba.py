"""Writing back to a real AD DC (Samba, seeded with the sample organisation): apply, rescan, undo,
a concurrent edit, SIGKILL in the middle of a batch and --resume, the --max-changes threshold and
an IdFix-format CSV round trip.

Every test starts from the pristine seeded directory (samba.reset()) and the module leaves it
pristine, so read-only tests running beside it see the seed again within seconds.
"""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from syncprep.cli import run
from syncprep.decisions import accept
from syncprep.engine import ScanOptions, ScanResult
from syncprep.model import Action, ErrorType, Finding, ObjectKind, Safety, Severity
from syncprep.workspace import Filters, open_workspace

if TYPE_CHECKING:
    from conftest import SambaServer

pytestmark = pytest.mark.sample_seed  # the apply tests edit objects of the bundled sample

PASSWORD_ENV = "SYNCPREP_TEST_SAMBA_PASSWORD"
SCAN_OPTIONS = ["--verified-domains", "contoso.com,fabrikam.com", "--tenant", "contoso"]
CHANGING = {"whenchanged", "usnchanged"}  # what any write changes on an object
JORG = "CN=Jorg Lang (non-ASCII proxy address),OU=Needs Review,{base}"


@pytest.fixture(scope="module")
def dc(samba: SambaServer) -> Iterator[SambaServer]:
    samba.reset()
    yield samba
    samba.reset()


@pytest.fixture
def server(dc: SambaServer, monkeypatch: pytest.MonkeyPatch) -> SambaServer:
    """The DC as seeded (reset before each test: they write)."""
    dc.reset()
    monkeypatch.setenv(PASSWORD_ENV, dc.password)
    return dc


def connection(server: SambaServer) -> list[str]:
    return ["--user", server.admin_upn, "--password-env", PASSWORD_ENV, "--ca-file", server.ca_file]


def scan_db(server: SambaServer, db: Path, *extra: str) -> int:
    return run(["scan", server.ldaps_url, *connection(server), *SCAN_OPTIONS, "--db", str(db), "--exit-zero",
                "--format", "jsonl", "-o", os.devnull, *extra])  # fmt: skip


def ldap_admin(server: SambaServer) -> Any:
    import ldap

    conn = ldap.initialize(server.ldaps_url, bytes_mode=False)
    conn.set_option(ldap.OPT_X_TLS_CACERTFILE, server.ca_file)
    conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
    conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
    conn.simple_bind_s(server.admin_upn, server.password)
    return conn


def export(server: SambaServer, dns: list[str]) -> str:
    """The objects as an LDIF-like text: every attribute the server returns for '*' less whenChanged
    and uSNChanged (any write moves them). The values of an attribute are a set in LDAP: an undo
    gives back every value, but the server lists a value added again after the others, so they
    are sorted here."""
    import ldap

    conn = ldap_admin(server)
    out = []
    try:
        for dn in sorted(dns, key=str.lower):
            for found, attrs in conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["*"]):
                out.append(f"dn: {found}")
                for name in sorted(attrs, key=str.lower):
                    if name.lower() not in CHANGING:
                        out.extend(f"{name}: {v!r}" for v in sorted(attrs[name]))
                out.append("")
    finally:
        conn.unbind_s()
    return "\n".join(out)


def values(server: SambaServer, dn: str, attribute: str) -> list[str]:
    import ldap

    conn = ldap_admin(server)
    try:
        for _dn, attrs in conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", [attribute]):
            return [v.decode() for k, vs in attrs.items() if k.lower() == attribute.lower() for v in vs]
    finally:
        conn.unbind_s()
    return []


def journal(db: Path, batch: int) -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT dn, attribute, state, server_message FROM changes WHERE batch_id = ? ORDER BY seq, id", (batch,)
        ).fetchall()
    finally:
        conn.close()


def decided_keys(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {k for (k,) in conn.execute("SELECT f.key FROM findings f JOIN decisions d ON d.finding_id = f.id"
                                           " WHERE d.action IN ('EDIT', 'REMOVE')")}  # fmt: skip
    finally:
        conn.close()


def open_keys(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        (latest,) = conn.execute("SELECT max(id) FROM scans").fetchone()
        return {k for (k,) in conn.execute("SELECT key FROM findings WHERE status = 'open' AND last_scan = ?",
                                           (latest,))}  # fmt: skip
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("client", ["python-ldap", "ldap3"])
def test_accepted_fixes_are_applied_and_a_rescan_no_longer_finds_them(
    server: SambaServer, tmp_path: Path, client: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "w.db"
    assert scan_db(server, db) == 0
    assert run(["accept", "--db", str(db), "--safety", "safe,unsafe"]) == 0
    decided = decided_keys(db)
    assert len(decided) > 15
    capsys.readouterr()
    code = run(["apply", server.ldaps_url, "--db", str(db), "--yes", "--client", client, *connection(server)])
    out, err = capsys.readouterr()
    rows = journal(db, 1)
    failed = [r for r in rows if r[2] != "applied"]
    assert code == (1 if failed else 0), err
    assert len(failed) <= 2, failed  # Samba may refuse a UPN or two; everything else goes through
    assert "batch 1: applied" in out
    assert scan_db(server, db) == 0
    still_open = decided & open_keys(db)
    conn = sqlite3.connect(db)
    open_dns = {dn.lower() for (dn,) in conn.execute(
        f"SELECT dn FROM findings WHERE key IN ({','.join('?' * len(still_open))})", sorted(still_open))}  # fmt: skip
    conn.close()
    assert open_dns <= {dn.lower() for dn, *_ in failed}  # only what the server refused is still there


def test_apply_then_undo_restores_an_identical_export(
    server: SambaServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "w.db"
    assert scan_db(server, db) == 0
    assert run(["accept", "--db", str(db), "--safety", "safe,unsafe"]) == 0
    # Not this one: see test_undo_refuses_a_value_the_server_could_take_for_another
    assert run(["accept", "--db", str(db), "--dn-suffix", JORG.format(base=server.seed_base), "--all",
                "--value", "smtp:jorg.lang@contoso.net", "--replace"]) == 0  # fmt: skip
    assert run(["plan", "--db", str(db), "-o", str(tmp_path / "plan.ldif")]) == 0
    with open_workspace(db) as ws:
        touched = sorted({sf.finding.dn for sf in ws.findings(Filters(decided=True))})
    before = export(server, touched)
    code = run(["apply", server.ldaps_url, "--db", str(db), "--yes", *connection(server)])
    assert code in (0, 1)
    assert export(server, touched) != before
    capsys.readouterr()
    assert run(["undo", "1", "--db", str(db), "--yes", *connection(server)]) == 0
    assert "batch 2: reverted" in capsys.readouterr().out
    assert export(server, touched) == before
    assert {state for _dn, _a, state, _m in journal(db, 1)} <= {"undone", "failed"}


def test_a_repaired_address_the_object_already_holds_is_removed_not_added(
    server: SambaServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Jörg holds 'smtp:jörg.lang@contoso.com' beside his primary 'SMTP:jorg.lang@contoso.com': the
    repaired address is already there, so the fix removes the faulty one and the primary stays."""
    db = tmp_path / "w.db"
    dn = JORG.format(base=server.seed_base)
    assert scan_db(server, db) == 0
    assert run(["accept", "--db", str(db), "--dn-suffix", dn, "--attribute", "proxyAddresses", "--all"]) == 0
    assert run(["apply", server.ldaps_url, "--db", str(db), "--yes", *connection(server)]) == 0
    after = values(server, dn, "proxyAddresses")
    assert "SMTP:jorg.lang@contoso.com" in after
    assert not any(v.lower() == "smtp:jörg.lang@contoso.com" for v in after)


def test_undo_refuses_a_value_the_server_could_take_for_another(
    server: SambaServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An administrator edits 'smtp:jörg.lang@contoso.com' to 'smtp:jorg.lang@contoso.com', which the
    object already holds as its primary 'SMTP:jorg.lang@contoso.com'. AD refuses to add it (its
    values compare without case); Samba adds it, and would then delete the primary when asked to
    delete 'smtp:jorg.lang@contoso.com'. Undo sees the two and leaves both."""
    import json

    db = tmp_path / "w.db"
    dn = JORG.format(base=server.seed_base)
    assert scan_db(server, db) == 0
    capsys.readouterr()
    assert run(["findings", "--db", str(db), "--format", "jsonl"]) in (0, 1)
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (finding,) = [r for r in rows if r["dn"] == dn and r["value"] == "smtp:jörg.lang@contoso.com"]
    assert run(["edit", str(finding["id"]), "--db", str(db), "--update", "smtp:jorg.lang@contoso.com"]) == 0
    code = run(["apply", server.ldaps_url, "--db", str(db), "--yes", *connection(server)])
    if code == 1:  # refused like AD does: nothing to undo
        assert "the new value is already there" in capsys.readouterr().out
        return
    after_apply = values(server, dn, "proxyAddresses")
    assert {"SMTP:jorg.lang@contoso.com", "smtp:jorg.lang@contoso.com"} <= set(after_apply)
    capsys.readouterr()
    assert run(["undo", "1", "--db", str(db), "--yes", *connection(server)]) == 1
    out, err = capsys.readouterr()
    assert "refused 1: 1 conflict" in out and "may take for one another" in err
    assert values(server, dn, "proxyAddresses") == after_apply


def test_a_value_changed_by_someone_else_is_refused_and_kept(
    server: SambaServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import ldap

    db = tmp_path / "w.db"
    assert scan_db(server, db) == 0
    assert run(["accept", "--db", str(db), "--safety", "safe"]) == 0
    dn = f"CN=Tara Space (trailing space in mail),OU=Needs Review,{server.seed_base}"
    conn = ldap_admin(server)
    conn.modify_s(dn, [(ldap.MOD_REPLACE, "mail", [b"tara.s@contoso.com"])])  # a colleague, meanwhile
    conn.unbind_s()
    capsys.readouterr()
    assert run(["apply", server.ldaps_url, "--db", str(db), "--yes", *connection(server)]) == 1
    out, err = capsys.readouterr()
    assert "refused 1: 1 the value changed since the scan" in out
    assert f"refused: {dn}: mail 'tara.space@contoso.com ' -> tara.space@contoso.com" in err
    assert values(server, dn, "mail") == ["tara.s@contoso.com"]
    (row,) = [r for r in journal(db, 1) if r[0] == dn]
    assert row[2] == "failed" and "noSuchAttribute" in row[3]
    assert sum(1 for r in journal(db, 1) if r[2] == "applied") >= 4


def big_workspace(
    server: SambaServer, db: Path, attributes: tuple[str, ...] = ("displayName",)
) -> list[tuple[str, str]]:
    """A workspace whose accepted decisions change these attributes of every seeded user that has
    them (as if a scan had found them all): a batch large enough to kill in the middle. Returns
    (dn, displayName) of the users."""
    import ldap

    conn = ldap_admin(server)
    wanted = "".join(f"({a}=*)" for a in attributes)
    found = conn.search_s(server.seed_base, ldap.SCOPE_SUBTREE, f"(&(objectClass=user){wanted})", list(attributes))
    conn.unbind_s()
    found = [(dn, attrs) for dn, attrs in found if dn and all(len(attrs[a]) == 1 for a in attributes)]
    findings = [
        Finding(
            dn,
            dn,
            ObjectKind.USER,
            a,
            attrs[a][0].decode(),
            (ErrorType.FORMAT,),
            "T",
            ("T",),
            Severity.WARNING,
            attrs[a][0].decode() + " (fixed)",
            Safety.SAFE,
            Action.EDIT,
        )
        for dn, attrs in found
        for a in attributes
    ]
    result = ScanResult(findings, __import__("collections").Counter(), [], len(found), len(found),
                        (server.ldaps_url,), (), ScanOptions())  # fmt: skip
    with open_workspace(db, create=True) as ws:
        ws.record_scan(result)
        accept(ws, Filters(), select_all=True)
    return [(dn, attrs[attributes[0]][0].decode()) for dn, attrs in found]


def usn_changed(server: SambaServer, dns: list[str]) -> dict[str, int]:
    import ldap

    conn = ldap_admin(server)
    try:
        return {
            dn: int(conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["uSNChanged"])[0][1]["uSNChanged"][0])
            for dn in dns
        }
    finally:
        conn.unbind_s()


def test_sigkill_in_the_middle_of_a_batch_then_resume_applies_each_change_once(
    server: SambaServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "w.db"
    targets = big_workspace(server, db)
    assert len(targets) > 150
    dns = [dn for dn, _v in targets]
    env = {**os.environ, PASSWORD_ENV: server.password}
    argv = [sys.executable, "-m", "syncprep", "apply", server.ldaps_url, "--db", str(db), "--yes",
            "--max-changes", "1000", *connection(server)]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    answered = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
            (answered,) = conn.execute("SELECT count(*) FROM changes WHERE state != 'pending'").fetchone()
            conn.close()
        except sqlite3.Error:
            pass
        if answered >= 32:  # the first group answered; the next one is on the wire
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the batch finished before it could be killed; make it larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    rows = journal(db, 1)
    states = {dn: state for dn, _a, state, _message in rows}
    assert {"applied", "pending"} <= set(states.values())  # killed in the middle
    # The server may still work through requests it had received; wait until it is done.
    usn_after_kill = usn_changed(server, dns)
    while (settled := usn_changed(server, dns)) != usn_after_kill:
        usn_after_kill = settled
        time.sleep(0.5)
    capsys.readouterr()
    assert run(["journal", "1", "--db", str(db), "--format", "jsonl"]) == 0
    shown = capsys.readouterr().out
    assert '"state": "unknown"' in shown  # sent, no answer recorded

    assert run(["apply", "--resume", "--db", str(db), *connection(server)]) == 0
    out = capsys.readouterr().out
    assert "batch 1: applied" in out
    rows = journal(db, 1)
    assert {state for _dn, _a, state, _m in rows} == {"applied"}
    confirmed = {dn for dn, _a, _s, message in rows if message == "found applied when the object was read back"}
    usn_after_resume = usn_changed(server, dns)
    for dn, value in targets:
        assert values(server, dn, "displayName") == [value + " (fixed)"], dn
        if dn in confirmed or states[dn] == "applied":
            assert usn_after_resume[dn] == usn_after_kill[dn], f"{dn} was written again"
        else:
            assert usn_after_resume[dn] > usn_after_kill[dn], f"{dn} was never written"


def test_the_max_changes_threshold_holds(
    server: SambaServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "w.db"
    targets = big_workspace(server, db, ("displayName", "givenName"))
    changes = 2 * len(targets)
    assert changes > 500
    capsys.readouterr()
    assert run(["apply", server.ldaps_url, "--db", str(db), "--yes", *connection(server)]) == 2
    assert f"changes {changes} values, more than --max-changes 500" in capsys.readouterr().err
    assert run(["apply", server.ldaps_url, "--db", str(db), "--yes", "--max-changes", "10", *connection(server)]) == 2
    assert f"changes {changes} values, more than --max-changes 10" in capsys.readouterr().err
    assert all(values(server, dn, "displayName") == [v] for dn, v in targets)
    assert sqlite3.connect(db).execute("SELECT count(*) FROM batches").fetchone() == (0,)
    assert run(["apply", server.ldaps_url, "--db", str(db), "--max-changes", "10"]) == 0  # the dry run tells
    assert f"add --yes --max-changes {changes} to write" in capsys.readouterr().err


def test_idfix_csv_round_trip(server: SambaServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """scan --db -> export -> edit the CSV as in Excel -> import -> plan -> apply -> rescan."""
    db = tmp_path / "w.db"
    assert scan_db(server, db) == 0
    review = tmp_path / "review.csv"
    assert run(["export", str(review), "--db", str(db)]) == 0
    with open(review, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    chosen = {}
    for row in rows:
        dn, attribute, value = row["DISTINGUISHEDNAME"], row["ATTRIBUTE"], row["VALUE"]
        if attribute == "mailNickname" and value == "mia&frank":
            row["ACTION"], row["UPDATE"] = "EDIT", "mia.frank"  # our own value instead of the proposal
            chosen[dn] = ("mailNickname", ["mia.frank"])
        elif attribute == "proxyAddresses" and value == "smtp:gwen.ward@contoso.local":
            row["ACTION"] = "REMOVE"
            chosen[dn] = ("proxyAddresses", None)
        elif attribute == "displayName" and row["PROPOSEDACTION"] == "EDIT" and row["UPDATE"]:
            row["ACTION"] = "EDIT"
            chosen[dn] = ("displayName", [row["UPDATE"]])
    assert len(chosen) >= 4
    with open(review, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
    assert run(["import", str(review), "--db", str(db)]) == 0
    plan = tmp_path / "plan.ldif"
    assert run(["plan", "--db", str(db), "-o", str(plan)]) == 0
    assert plan.read_text().count("changetype: modify") == len(chosen)
    decided = decided_keys(db)
    capsys.readouterr()
    assert run(["apply", server.ldaps_url, "--db", str(db), "--yes", *connection(server)]) == 0
    assert scan_db(server, db) == 0
    assert not decided & open_keys(db)
    for dn, (attribute, expected) in chosen.items():
        now = values(server, dn, attribute)
        if expected is None:
            assert "smtp:gwen.ward@contoso.local" not in now
        else:
            assert now == expected
