"""apply, apply --resume, undo and journal against an in-memory directory that behaves like AD's
modify: atomic, a delete of a value that is not there refused (noSuchAttribute), a second value in
a single-valued attribute refused. Connection loss and crashes are simulated; the real servers are
in tests/integration/test_apply_samba.py."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from syncprep import cli_apply
from syncprep.apply import journal_changes, value_changes
from syncprep.cli import run
from syncprep.journal import Journal
from syncprep.model import Entry
from syncprep.plan import MULTI_VALUED, build_plan
from syncprep.sources.ldapclient import Failure, Refusal, encode_value
from syncprep.workspace import normalize_dn, open_workspace
from test_workspace import problem_users, scan_entries, user

URL = "ldaps://dc1.contoso.com"


class Lost(Exception):
    """The connection went away."""


class Refused(Exception):
    def __init__(self, code: int, name: str, message: str = "") -> None:
        super().__init__(name)
        self.refusal = Refusal(code, name, message)


class Directory:
    """Objects by normalised DN: {lower-case attribute: [bytes]}; every modify request received."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.objects: dict[str, dict[str, list[bytes]]] = {
            normalize_dn(e.dn): {k: [encode_value(v) for v in vals] for k, vals in e.attributes.items()}
            for e in entries
        }
        self.requests: list[str] = []
        self.lose_after: int | None = None  # lose the connection when this many requests arrived
        self.in_flight_applied = True  # whether the request lost in flight reached the server
        self.denied: set[str] = set()

    def get(self, dn: str, attribute: str) -> list[str]:
        return [v.decode() for v in self.objects[normalize_dn(dn)].get(attribute.lower(), [])]

    def set(self, dn: str, attribute: str, *values: str) -> None:
        self.objects[normalize_dn(dn)][attribute.lower()] = [v.encode() for v in values]

    def modify(self, dn: str, changes: Sequence[tuple[str, Sequence[Any], Sequence[Any]]]) -> None:
        key = normalize_dn(dn)
        if key not in self.objects:
            raise Refused(32, "noSuchObject", "0000208D: NameErr")
        if key in self.denied:
            raise Refused(50, "insufficientAccessRights", "00002098: SecErr")
        attrs = {k: list(v) for k, v in self.objects[key].items()}
        for attribute, delete, add in changes:
            now = attrs.setdefault(attribute.lower(), [])
            for value in delete:
                raw = encode_value(value)
                if raw not in now:
                    raise Refused(16, "noSuchAttribute", "00002085: AtrErr: DSID-03151F80")
                now.remove(raw)
            for value in add:
                raw = encode_value(value)
                if raw in now:
                    raise Refused(20, "attributeOrValueExists", "00002083: AtrErr")
                if now and attribute.lower() not in MULTI_VALUED:
                    raise Refused(19, "constraintViolation", "single-valued")
                now.append(raw)
        self.objects[key] = {k: v for k, v in attrs.items() if v}


class FakeClient:
    """The WriteClient face over a Directory."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.writable = True
        self.sent = 0
        self.closed = False

    def modify_many(self, requests: Sequence[Any], window: int = 1) -> Iterator[tuple[int, BaseException | None]]:
        d = self.directory
        self.sent = 0
        for index, (dn, changes) in enumerate(requests):
            self.sent = index + 1
            if d.lose_after is not None and len(d.requests) >= d.lose_after:
                if d.in_flight_applied:
                    d.requests.append(normalize_dn(dn))
                    d.modify(dn, changes)
                raise Lost("connection reset by peer")
            d.requests.append(normalize_dn(dn))
            try:
                d.modify(dn, changes)
            except Refused as exc:
                yield index, exc
            else:
                yield index, None

    def read_values(self, dn: str, attributes: list[str]) -> dict[str, list[bytes]] | None:
        if self.directory.lose_after is not None and len(self.directory.requests) >= self.directory.lose_after:
            raise Lost("connection reset by peer")
        obj = self.directory.objects.get(normalize_dn(dn))
        if obj is None:
            return None
        return {a.lower(): list(obj[a.lower()]) for a in attributes if a.lower() in obj}

    def refusal(self, exc: BaseException) -> Refusal | None:
        return exc.refusal if isinstance(exc, Refused) else None

    def classify(self, exc: BaseException) -> tuple[Failure, str] | None:
        return (Failure.NO_ANSWER, str(exc)) if isinstance(exc, Lost) else None

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def directory(monkeypatch: pytest.MonkeyPatch) -> Directory:
    d = Directory([])
    monkeypatch.setattr(cli_apply, "connect", lambda endpoint, settings: FakeClient(d))
    return d


def setup(tmp_path: Path, directory: Directory, entries: Sequence[Entry], *accept: str) -> str:
    """Seed the directory, record a scan of the same objects, accept; returns the workspace path."""
    directory.objects.update(Directory(entries).objects)
    db = str(tmp_path / "w.db")
    result = scan_entries(tmp_path, entries)
    with open_workspace(db, create=True) as ws:
        ws.record_scan(result)
    assert run(["accept", "--db", db, *(accept or ("--safety", "safe"))]) == 0
    return db


def apply(db: str, *extra: str) -> int:
    return run(["apply", URL, "--db", db, "--auth", "anonymous", *extra])


def batch_rows(db: str, batch: int) -> list[dict[str, Any]]:
    with open_workspace(db) as ws:
        return [c.to_dict() for c in Journal(ws).changes(batch)]


def decision_states(db: str) -> dict[int, str]:
    conn = sqlite3.connect(db)
    return dict(conn.execute("SELECT finding_id, state FROM decisions"))


def whitespace_users(n: int) -> list[Entry]:
    return [user(f"u{i:03}", mail=f"u{i:03}@contoso.com ") for i in range(n)]


# ---------------------------------------------------------------------------------------------
# apply


def test_dry_run_prints_the_requests_and_writes_nothing(
    tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = setup(tmp_path, directory, problem_users())
    capsys.readouterr()
    monkeypatch.setattr(cli_apply, "connect", lambda *_a: pytest.fail("a dry run must not connect"))
    assert apply(db) == 0
    out, err = capsys.readouterr()
    assert "changetype: modify" in out and "delete: mail" in out and "add: mail" in out
    assert "replace:" not in out
    assert "dry run: would send 1 modify request(s), 1 value change(s)" in err and "add --yes" in err
    assert run(["journal", "--db", db]) == 0
    assert "no batches yet" in capsys.readouterr().out


def test_apply_writes_journals_and_marks_the_decisions(
    tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str]
) -> None:
    db = setup(tmp_path, directory, problem_users(), "--all")
    capsys.readouterr()
    assert apply(db, "--yes") == 0
    out, _err = capsys.readouterr()
    assert "batch 1: applied 3 value change(s) on 3 object(s)" in out
    ann = "CN=ann,OU=Staff,DC=contoso,DC=com"
    assert directory.get(ann, "mail") == ["ann@contoso.com"]
    assert directory.get("CN=cy,OU=Staff,DC=contoso,DC=com", "proxyAddresses") == ["SMTP:cy@contoso.com"]
    assert {r["state"] for r in batch_rows(db, 1)} == {"applied"}
    assert set(decision_states(db).values()) == {"applied"}
    with open_workspace(db) as ws:
        assert not build_plan(ws).objects  # nothing left to send
    assert apply(db, "--yes") == 0
    assert "nothing to change" in capsys.readouterr().err


def test_a_value_changed_since_the_scan_is_refused_and_left_as_it_is(
    tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str]
) -> None:
    db = setup(tmp_path, directory, problem_users(), "--all")
    ann = "CN=ann,OU=Staff,DC=contoso,DC=com"
    directory.set(ann, "mail", "ann.new@contoso.com")  # someone else's edit after the scan
    capsys.readouterr()
    assert apply(db, "--yes") == 1
    out, err = capsys.readouterr()
    assert directory.get(ann, "mail") == ["ann.new@contoso.com"]
    assert "refused 1: 1 the value changed since the scan" in out
    assert f"refused: {ann}: mail 'ann@contoso.com ' -> ann@contoso.com: the value changed since the scan" in err
    rows = {r["dn"]: r for r in batch_rows(db, 1)}
    assert rows[ann]["state"] == "failed"
    assert "noSuchAttribute (16)" in rows[ann]["message"]
    assert [r["state"] for d, r in rows.items() if d != ann] == ["applied", "applied"]
    assert sorted(decision_states(db).values()) == ["applied", "applied", "failed"]


def test_refusals_are_recorded_per_change_and_the_batch_goes_on(
    tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str]
) -> None:
    db = setup(tmp_path, directory, whitespace_users(5))
    directory.denied.add(normalize_dn("CN=u001,OU=Staff,DC=contoso,DC=com"))
    del directory.objects[normalize_dn("CN=u003,OU=Staff,DC=contoso,DC=com")]
    capsys.readouterr()
    assert apply(db, "--yes") == 1
    out = capsys.readouterr().out
    assert "applied 3 value change(s) on 3 object(s)" in out
    assert "refused 2: 1 insufficient rights, 1 the object is gone (moved, renamed or deleted)" in out


def test_the_max_changes_threshold(tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str]) -> None:
    db = setup(tmp_path, directory, whitespace_users(12))
    capsys.readouterr()
    assert apply(db, "--yes", "--max-changes", "11") == 2
    err = capsys.readouterr().err
    assert "changes 12 values, more than --max-changes 11" in err and "--max-changes 12" in err
    assert directory.requests == []
    assert apply(db, "--max-changes", "11") == 0  # the dry run says what it would take
    assert "add --yes --max-changes 12" in capsys.readouterr().err
    assert apply(db, "--yes", "--max-changes", "12") == 0
    assert len(directory.requests) == 12


def test_max_changes_counts_values() -> None:
    assert value_changes([(["a"], ["b"]), (["x"], []), ([], ["y"]), (["p", "q"], ["P", "Q"])]) == 5


def test_the_global_catalog_and_another_server_are_refused(
    tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = problem_users()
    directory.objects.update(Directory(entries).objects)
    db = str(tmp_path / "w.db")
    result = dataclasses.replace(scan_entries(tmp_path, entries), sources=("ldaps://dc1.contoso.test:636",))
    with open_workspace(db, create=True) as ws:
        ws.record_scan(result)
    run(["accept", "--db", db, "--safety", "safe"])
    capsys.readouterr()
    assert run(["apply", "gc://dc1.contoso.test", "--db", db, "--yes", "--auth", "anonymous"]) == 2
    assert "global catalog is a read-only copy" in capsys.readouterr().err
    assert run(["apply", "ldaps://dc9.fabrikam.test", "--db", db, "--yes", "--auth", "anonymous"]) == 2
    assert "--force" in capsys.readouterr().err
    assert run(["apply", "ldap://DC1.contoso.test", "--db", db, "--auth", "anonymous"]) == 0  # same host
    assert run(["apply", "ldaps://dc2.contoso.test", "--db", db, "--yes", "--auth", "anonymous", "--force"]) == 0
    assert "warning: --force: writing the plan of scan 1" in capsys.readouterr().err


def test_one_server_by_two_names() -> None:
    from syncprep.apply import same_server

    assert same_server("localhost", {"127.0.0.1"})
    assert same_server("DC1.Contoso.test.", {"dc1.contoso.test"})
    assert not same_server("dc9.fabrikam.test", {"dc1.contoso.test"})


def test_passwords_stay_out_of_the_journal_and_the_output(
    tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = setup(tmp_path, directory, problem_users())
    monkeypatch.setenv("PW", "Very-Secret-Pa55")
    args = ["apply", URL, "--db", db, "--yes", "--user", "admin@contoso.com", "--password-env", "PW"]
    assert run(args) == 0
    assert run(["journal", "--db", db, "--format", "jsonl"]) == 0
    out, err = capsys.readouterr()
    assert "Very-Secret-Pa55" not in out + err
    assert "admin@contoso.com" in out  # who wrote is recorded
    for path in tmp_path.iterdir():
        assert b"Very-Secret-Pa55" not in path.read_bytes(), path


# ---------------------------------------------------------------------------------------------
# connection lost, crash, resume


@pytest.mark.parametrize("reached", [True, False], ids=["in-flight-applied", "in-flight-lost"])
def test_connection_lost_mid_batch_then_resume_applies_each_change_once(
    tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str], reached: bool
) -> None:
    db = setup(tmp_path, directory, whitespace_users(100))
    directory.lose_after = 40
    directory.in_flight_applied = reached
    capsys.readouterr()
    assert apply(db, "--yes") == 2
    out, err = capsys.readouterr()
    assert "batch 1: applied 40 value change(s)" in out
    assert "stopped after 40 of the batch's changes" in err and "apply --resume" in err
    states = [r["state"] for r in batch_rows(db, 1)]
    assert states[:40] == ["applied"] * 40
    assert states[40] == "unknown"  # sent, no answer
    assert set(states[41:]) == {"queued"}
    # a new apply is refused until the batch is settled
    assert apply(db, "--yes") == 2
    assert "apply --resume" in capsys.readouterr().err
    assert run(["journal", "--db", db]) == 0
    assert "interrupted" in capsys.readouterr().out

    directory.lose_after = None
    assert run(["apply", "--resume", "--db", db, "--auth", "anonymous"]) == 0
    out = capsys.readouterr().out
    assert "batch 1: applied 60 value change(s)" in out
    assert ("found already applied" in out) == reached
    assert len(directory.requests) == len(set(directory.requests)) == 100  # every object once
    assert {r["state"] for r in batch_rows(db, 1)} == {"applied"}
    assert all(directory.get(f"CN=u{i:03},OU=Staff,DC=contoso,DC=com", "mail") == [f"u{i:03}@contoso.com"]
               for i in range(100))  # fmt: skip
    assert run(["apply", "--resume", "--db", db, "--auth", "anonymous"]) == 0
    assert "nothing to resume" in capsys.readouterr().out


def test_resume_after_a_crash_reads_each_object(
    tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The journal as a SIGKILL leaves it: rows marked 'sending', no answers recorded."""
    db = setup(tmp_path, directory, whitespace_users(4))
    with open_workspace(db) as ws:
        journal = Journal(ws)
        plan = build_plan(ws)
        batch_id, rows = journal.create_batch("apply", URL + ":636", plan.scan_id, journal_changes(plan))
        assert rows == journal.changes(batch_id)
        journal.record(journal.batch(batch_id), sending=rows)
    dn = [f"CN=u{i:03},OU=Staff,DC=contoso,DC=com" for i in range(4)]
    directory.set(dn[0], "mail", "u000@contoso.com")  # reached the server
    directory.set(dn[2], "mail", "someone.else@contoso.com")  # changed by somebody else
    del directory.objects[normalize_dn(dn[3])]  # deleted meanwhile
    capsys.readouterr()
    assert run(["journal", "1", "--db", db, "--format", "jsonl"]) == 0
    assert [json.loads(line)["state"] for line in capsys.readouterr().out.splitlines()] == ["unknown"] * 4
    assert run(["apply", "--resume", "--db", db, "--auth", "anonymous"]) == 1
    out = capsys.readouterr().out
    assert "applied 2 value change(s) on 2 object(s) (1 found already applied" in out
    assert "refused 2: 2 conflict" in out
    rows = batch_rows(db, 1)
    assert [r["state"] for r in rows] == ["applied", "applied", "failed", "failed"]
    assert "someone.else@contoso.com" in rows[2]["message"]
    assert directory.requests == [normalize_dn(dn[1])]  # only the one that had not reached the server
    assert directory.get(dn[2], "mail") == ["someone.else@contoso.com"]


# ---------------------------------------------------------------------------------------------
# undo


def test_undo_restores_the_values_and_is_a_batch_of_its_own(
    tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str]
) -> None:
    db = setup(tmp_path, directory, problem_users(), "--all")
    before = json.dumps(directory.objects, default=repr, sort_keys=True)
    assert apply(db, "--yes") == 0
    assert json.dumps(directory.objects, default=repr, sort_keys=True) != before
    capsys.readouterr()
    assert run(["undo", "1", "--db", db]) == 0  # dry run
    out, err = capsys.readouterr()
    assert "add: mail\nmail:: YW5uQGNvbnRvc28uY29tIA==" in out and "dry run: would send 3 modify" in err
    assert run(["undo", "1", "--db", db, "--yes", "--auth", "anonymous"]) == 0
    assert "batch 2: reverted 3 value change(s) on 3 object(s)" in capsys.readouterr().out
    assert json.dumps(directory.objects, default=repr, sort_keys=True) == before
    assert {r["state"] for r in batch_rows(db, 1)} == {"undone"}
    assert {r["state"] for r in batch_rows(db, 2)} == {"applied"}
    assert set(decision_states(db).values()) == {"undone"}
    assert run(["journal", "--db", db, "--format", "jsonl"]) == 0
    batches = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(b["kind"], b["undoes"], b["counts"]) for b in batches] == [
        ("apply", None, {"undone": 3}),
        ("undo", 1, {"applied": 3}),
    ]
    assert run(["undo", "1", "--db", db, "--yes", "--auth", "anonymous"]) == 2
    assert "no applied change left to undo" in capsys.readouterr().err
    assert run(["undo", "2", "--db", db, "--yes", "--auth", "anonymous"]) == 2
    assert "is itself an undo" in capsys.readouterr().err


def test_undo_is_refused_where_the_value_changed_again(
    tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str]
) -> None:
    db = setup(tmp_path, directory, whitespace_users(3))
    assert apply(db, "--yes") == 0
    dn = "CN=u001,OU=Staff,DC=contoso,DC=com"
    directory.set(dn, "mail", "u001.later@contoso.com")
    capsys.readouterr()
    assert run(["undo", "1", "--db", db, "--yes", "--auth", "anonymous"]) == 1
    out = capsys.readouterr().out
    assert "reverted 2 value change(s)" in out and "refused 1: 1 conflict" in out
    assert directory.get(dn, "mail") == ["u001.later@contoso.com"]
    states = {r["dn"]: r["state"] for r in batch_rows(db, 1)}
    assert states[dn] == "applied" and sorted(states.values()) == ["applied", "undone", "undone"]


def test_batches_can_be_undone_in_any_order(
    tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = whitespace_users(4)
    db = setup(tmp_path, directory, entries, "--dn-suffix", "CN=u000,OU=Staff,DC=contoso,DC=com", "--all")
    before = json.dumps(directory.objects, default=repr, sort_keys=True)
    assert apply(db, "--yes") == 0
    for i in (1, 2, 3):
        run(["accept", "--db", db, "--dn-suffix", f"CN=u{i:03},OU=Staff,DC=contoso,DC=com", "--all"])
        assert apply(db, "--yes") == 0
    for batch in ("3", "1", "4", "2"):
        assert run(["undo", batch, "--db", db, "--yes", "--auth", "anonymous"]) == 0
    assert json.dumps(directory.objects, default=repr, sort_keys=True) == before
    capsys.readouterr()
    assert run(["journal", "--db", db]) == 0
    assert "undo of 3" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# the journal itself


def test_the_journal_only_moves_forward(tmp_path: Path, directory: Directory) -> None:
    db = setup(tmp_path, directory, whitespace_users(2))
    assert apply(db, "--yes") == 0
    conn = sqlite3.connect(db)
    for sql in (
        "UPDATE changes SET state = 'pending'",
        "UPDATE changes SET state = 'failed'",
        "UPDATE changes SET new_values = '[\"x\"]'",
        "UPDATE changes SET dn = 'CN=x'",
        "UPDATE batches SET note = 'rewritten'",
        "UPDATE batches SET finished_at = 'later'",
        "UPDATE batches SET source_url = 'ldap://elsewhere'",
        "DELETE FROM changes",
        "DELETE FROM batches",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="journal"):
            conn.execute(sql)
    conn.execute("UPDATE batches SET note = note || ' more'")  # a note only grows


def test_journal_lists_batches_and_changes(
    tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    db = setup(tmp_path, directory, problem_users(), "--all")
    directory.set("CN=ann,OU=Staff,DC=contoso,DC=com", "mail", "x@contoso.com")
    apply(db, "--yes")
    capsys.readouterr()
    assert run(["journal", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "finished" in out and "ldaps://dc1.contoso.com:636" in out
    assert run(["journal", "1", "--db", db, "--state", "failed", "--format", "jsonl"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["state"] == "failed" and row["old"] == ["ann@contoso.com "] and row["new"] == ["ann@contoso.com"]
    assert run(["journal", "1", "--db", db]) == 0
    assert "the value changed since the scan" in capsys.readouterr().out
    assert run(["journal", "7", "--db", db]) == 2
    assert "no batch 7" in capsys.readouterr().err


def test_undo_refuses_to_delete_a_value_the_server_could_confuse_with_another(
    tmp_path: Path, directory: Directory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Samba (unlike AD) lets 'smtp:a@x' join 'SMTP:a@x', and deleting 'smtp:a@x' may then take the
    primary: undo leaves such an object alone."""
    entries = [user("jo", proxyaddresses=("SMTP:jo@contoso.com", "smtp:jö@contoso.com"))]
    db = setup(tmp_path, directory, entries, "--attribute", "proxyAddresses", "--all", "--value", "smtp:JO@contoso.com")
    assert apply(db, "--yes") == 0
    dn = "CN=jo,OU=Staff,DC=contoso,DC=com"
    assert directory.get(dn, "proxyAddresses") == ["SMTP:jo@contoso.com", "smtp:JO@contoso.com"]
    capsys.readouterr()
    assert run(["undo", "1", "--db", db, "--yes", "--auth", "anonymous"]) == 1
    out, err = capsys.readouterr()
    assert "refused 1: 1 conflict" in out
    assert "holds smtp:JO@contoso.com and SMTP:jo@contoso.com, which the server may take for one another" in err
    assert directory.get(dn, "proxyAddresses") == ["SMTP:jo@contoso.com", "smtp:JO@contoso.com"]
