"""Decisions: accept filters, edit, CSV export -> Excel -> import (ours and IdFix's), malformed
imports refused whole, and property tests of the CSV writer and reader."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncprep.cli import run
from syncprep.decisions import (
    ImportRefused,
    accept,
    csv_cell,
    decode_csv,
    edit,
    export_decisions,
    import_decisions,
    parse_csv,
    write_csv_rows,
)
from syncprep.engine import ScanOptions, scan
from syncprep.errors import WorkspaceError
from syncprep.model import Entry
from syncprep.output.formats import IDFIX_COLUMNS, neutralise
from syncprep.sources.ldif import LdifSource
from syncprep.workspace import DecisionAction, Filters, Workspace, open_workspace
from test_workspace import problem_users, scan_entries, user

IDFIX_LDIF = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "idfix-error-ou" / "idfix-error-ou.ldif"
GROUPS = "OU=Groups,DC=contoso,DC=com"


def directory() -> list[Entry]:
    """Users and a group with one problem each, and a duplicate between two users."""
    return [
        *problem_users(),
        user("fay", displayname="  Fay  "),  # whitespace in a name: safe
        user("gus", mail="shared@contoso.com", proxyaddresses="SMTP:shared@contoso.com"),
        user("hal", proxyaddresses=("SMTP:hal@contoso.com", "smtp:shared@contoso.com")),  # duplicate: manual
        Entry(
            f"CN=Team,{GROUPS}",
            {
                "objectclass": ("top", "group"),
                "cn": ("Team",),
                "samaccountname": ("team",),
                "displayname": ("Team ",),
                "mail": ("team@contoso.com",),
                "proxyaddresses": ("SMTP:team@contoso.com",),
                "grouptype": ("-2147483646",),
            },
        ),
    ]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = open_workspace(tmp_path / "w.db", create=True)
    workspace.record_scan(scan_entries(tmp_path, directory(), verified_domains=("contoso.com",)))
    yield workspace  # type: ignore[misc]
    workspace.close()


def decisions(ws: Workspace) -> dict[int, tuple[str, str | None]]:
    return {sf.id: (sf.decision.action.value, sf.decision.update) for sf in ws.findings() if sf.decision}


# ---------------------------------------------------------------------------------------------
# accept


def test_accept_needs_a_filter_or_all(ws: Workspace) -> None:
    with pytest.raises(WorkspaceError, match="--all"):
        accept(ws, Filters())


def test_accept_safe_only(ws: Workspace) -> None:
    result = accept(ws, Filters(safeties=("safe",)))
    chosen = [sf for sf in ws.findings() if sf.decision]
    assert result.accepted == len(chosen) >= 3
    assert {sf.finding.safety.value for sf in chosen} == {"safe"}
    assert all(sf.decision and sf.decision.update == sf.finding.update for sf in chosen)
    assert {sf.finding.attribute for sf in chosen} >= {"mail", "displayName"}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(errors=("whitespace",)), {("mail", "ann"), ("displayName", "fay"), ("displayName", "Team")}),
        (Filters(errors=("whitespace",), kinds=("group",)), {("displayName", "Team")}),
        (Filters(rules=("U",)), {("userPrincipalName", "bob")}),
        (Filters(attributes=("PROXYADDRESSES",)), {("proxyAddresses", "cy")}),
        (Filters(dn_suffixes=("ou=groups , dc=CONTOSO,dc=com",)), {("displayName", "Team")}),
        (Filters(errors=("duplicate",)), set()),  # manual, no value: never accepted
    ],
)
def test_accept_filters(ws: Workspace, filters: Filters, expected: set[tuple[str, str]]) -> None:
    accept(ws, filters)
    got = {(sf.finding.attribute, sf.finding.cn) for sf in ws.findings() if sf.decision}
    assert got == expected


def test_accept_leaves_manual_findings_and_existing_decisions(ws: Workspace) -> None:
    (bob,) = ws.findings(Filters(rules=("U",)))
    edit(ws, bob.id, update="bob.smith@contoso.com")
    result = accept(ws, Filters(), select_all=True)
    duplicates = ws.findings(Filters(errors=("duplicate",)))
    assert duplicates and all(sf.decision is None for sf in duplicates)
    assert result.need_value >= len(duplicates)
    assert result.already_decided == 1
    assert ws.finding(bob.id).decision.update == "bob.smith@contoso.com"  # type: ignore[union-attr]
    again = accept(ws, Filters(rules=("U",)), replace=True)
    assert again.accepted == 1
    assert ws.finding(bob.id).decision.update == bob.finding.update  # type: ignore[union-attr]


def test_accept_with_a_value_takes_manual_findings_and_checks_it(ws: Workspace) -> None:
    dups = ws.findings(Filters(errors=("duplicate",), attributes=("mail",)))
    assert dups
    result = accept(ws, Filters(ids=tuple(sf.id for sf in dups)), value="gus.two@contoso")
    assert result.accepted == len(dups)
    assert result.warnings and "still breaks" in result.warnings[0]


# ---------------------------------------------------------------------------------------------
# edit


def test_edit_sets_one_decision_and_warns_when_the_value_still_breaks_a_rule(ws: Workspace) -> None:
    (bob,) = ws.findings(Filters(rules=("U",)))
    good = edit(ws, bob.id, update="bob.smith@contoso.com")
    assert (good.action, good.update, good.warning) == (DecisionAction.EDIT, "bob.smith@contoso.com", "")
    bad = edit(ws, bob.id, update="bob smith2@contoso.com")
    assert "still breaks" in bad.warning and "U001" in bad.warning
    stored = ws.finding(bob.id).decision
    assert stored is not None and stored.update == "bob smith2@contoso.com" and stored.warning == bad.warning
    assert edit(ws, bob.id, action="remove").action == DecisionAction.REMOVE
    assert edit(ws, bob.id, action="EDIT").update == bob.finding.update
    assert edit(ws, bob.id, clear=True).action is None
    assert ws.finding(bob.id).decision is None
    log = ws.conn.execute("SELECT count(*) FROM decision_log WHERE finding_id = ?", (bob.id,)).fetchone()[0]
    assert log == 5


def test_edit_refuses_what_cannot_be_carried_out(ws: Workspace) -> None:
    (bob,) = ws.findings(Filters(rules=("U",)))
    with pytest.raises(WorkspaceError, match="current value"):
        edit(ws, bob.id, update=bob.finding.value)
    with pytest.raises(WorkspaceError, match="needs a value"):
        edit(ws, bob.id, update="")
    with pytest.raises(WorkspaceError, match="no finding 9999"):
        edit(ws, 9999, action="SKIP")
    dup = ws.findings(Filters(errors=("duplicate",)))[0]
    with pytest.raises(WorkspaceError, match="no proposed value"):
        edit(ws, dup.id, action="EDIT")


def test_edit_refuses_a_count(tmp_path: Path) -> None:
    many = user("ivy", usercertificate=tuple(bytes([i]) * 8 for i in range(17)))  # type: ignore[arg-type]
    with open_workspace(tmp_path / "w.db", create=True) as ws:
        ws.record_scan(scan_entries(tmp_path, [many]))
        (count,) = ws.findings(Filters(errors=("largeobject",)))
        with pytest.raises(WorkspaceError, match="is a count"):
            edit(ws, count.id, action="REMOVE")
        assert accept(ws, Filters(), select_all=True).accepted == 0


# ---------------------------------------------------------------------------------------------
# export and import


def excel_resave(path: Path, *, separator: str = ";", bom: bool = False, edits: dict[int, dict[str, str]]) -> None:
    """Rewrite an exported CSV as Excel would after a person changed some cells: another
    separator, no BOM, CRLF, minimal quoting. ``edits``: data row number (from 1) -> cells."""
    text, _ = decode_csv(path.read_bytes())
    parsed = parse_csv(text)
    rows = [list(IDFIX_COLUMNS)]
    for n, record in enumerate(parsed.records, start=1):
        cells = dict(record.cells)
        cells.update(edits.get(n, {}))
        rows.append([cells[c] for c in IDFIX_COLUMNS])
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as out:
        write_csv_rows(rows, out, separator=separator)


def test_export_import_round_trip_through_excel(ws: Workspace, tmp_path: Path) -> None:
    accept(ws, Filters(safeties=("safe",)))
    before = decisions(ws)
    path = tmp_path / "review.csv"
    count = export_decisions(ws, path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    # Importing the unchanged file changes nothing.
    result = import_decisions(ws, path)
    assert (result.rows, result.set, result.cleared, result.unchanged) == (count, 0, 0, count)
    assert decisions(ws) == before
    # A person edits in Excel (European: ';'), then saves: new decisions, one cleared.
    order = [sf for sf in ws.findings()]
    bob = next(n for n, sf in enumerate(order, 1) if sf.finding.cn == "bob")
    cy = next(n for n, sf in enumerate(order, 1) if sf.finding.cn == "cy")
    fay = next(n for n, sf in enumerate(order, 1) if sf.finding.cn == "fay")
    tricky = neutralise('=HYPERLINK("x");bob, "smith"@contoso.com')
    excel_resave(
        path,
        edits={bob: {"ACTION": "edit", "UPDATE": tricky}, cy: {"ACTION": "REMOVE"}, fay: {"ACTION": ""}},
    )
    result = import_decisions(ws, path)
    assert (result.set, result.cleared) == (2, 1)
    after = decisions(ws)
    assert after[order[bob - 1].id] == ("EDIT", '=HYPERLINK("x");bob, "smith"@contoso.com')
    assert after[order[cy - 1].id] == ("REMOVE", None)
    assert order[fay - 1].id not in after
    assert any("still breaks" in w for w in result.warnings)
    # And back out: the file holds what the workspace holds.
    export_decisions(ws, path, separator=";")
    assert import_decisions(ws, path).set == 0


def test_malformed_rows_are_reported_by_line_and_nothing_is_applied(ws: Workspace, tmp_path: Path) -> None:
    accept(ws, Filters(safeties=("safe",)))
    before = decisions(ws)
    log_before = ws.conn.execute("SELECT count(*) FROM decision_log").fetchone()[0]
    path = tmp_path / "review.csv"
    export_decisions(ws, path)
    order = ws.findings()
    bob = next(n for n, sf in enumerate(order, 1) if sf.finding.cn == "bob")
    cy = next(n for n, sf in enumerate(order, 1) if sf.finding.cn == "cy")
    one, two, three = [n for n in range(1, len(order) + 1) if n not in (bob, cy)][:3]
    excel_resave(
        path,
        separator=",",
        bom=True,
        edits={
            one: {"ACTION": "DELETE"},  # not an action
            two: {"VALUE": "changed in Excel", "ACTION": "EDIT", "UPDATE": "x"},  # no such value
            three: {"DISTINGUISHEDNAME": "CN=nobody,DC=x", "ACTION": "SKIP"},  # no such object
            bob: {"ACTION": "EDIT", "UPDATE": ""},  # EDIT without a value
            cy: {"ACTION": "REMOVE"},  # fine on its own, but not applied either
        },
    )
    with open(path, "a", encoding="utf-8", newline="") as out:
        out.write("CN=x,DC=y,x,user,mail,format,a,b,EDIT,extra,cells\r\n")
    with pytest.raises(ImportRefused) as refused:
        import_decisions(ws, path)
    problems = refused.value.problems
    lines = [int(p.split(":")[0].removeprefix("line ")) for p in problems]
    assert lines == sorted(lines)
    expected = {
        one + 1: "unknown ACTION 'DELETE'",
        two + 1: "was the VALUE cell changed",
        three + 1: "no finding for mail of CN=nobody",
        bob + 1: "needs a value",
        len(order) + 2: "cells but the header has 9",
    }
    assert lines == sorted(expected)
    for line, problem in zip(lines, problems, strict=True):
        assert expected[line] in problem, problem
    assert decisions(ws) == before
    assert ws.conn.execute("SELECT count(*) FROM decision_log").fetchone()[0] == log_before


def idfix_csv(findings: list, actions: dict[int, str]) -> str:  # type: ignore[type-arg]
    """A CSV as IdFix 2.x writes it: its column names, C# enum names for PROPOSEDACTION and
    ERROR, cells quoted only when they hold a comma (and never escaped), no BOM, CRLF."""
    names = {
        "character": "Character",
        "format": "Format",
        "topleveldomain": "TopLevelDomain",
        "duplicate": "Duplicate",
        "blank": "Blank",
        "length": "Length",
        "domainpart": "DomainPart",
        "localpart": "LocalPart",
    }

    def cell(value: str) -> str:
        return f'"{value}"' if "," in value else value

    lines = [",".join(IDFIX_COLUMNS)]
    for n, sf in enumerate(findings):
        f = sf.finding
        error = ", ".join(names.get(e.value, e.value.capitalize()) for e in f.errors)
        row = [f.dn, f.cn, f.object_class.value, f.attribute, error, f.value, f.update or "",
               f.action.value.capitalize(), actions.get(n, "")]  # fmt: skip
        lines.append(",".join(cell(c) for c in row))
    return "\r\n".join(lines) + "\r\n"


def test_idfix_csv_imports(tmp_path: Path) -> None:
    result = scan([LdifSource(IDFIX_LDIF)], ScanOptions(profile="dedicated"))
    with open_workspace(tmp_path / "w.db", create=True) as ws:
        ws.record_scan(result)
        findings = ws.findings()
        editable = [n for n, sf in enumerate(findings) if sf.finding.update and "," not in sf.finding.value]
        removable = [n for n, sf in enumerate(findings) if sf.finding.attribute == "proxyAddresses"]
        actions = {editable[0]: "EDIT", editable[1]: "COMPLETE", removable[0]: "REMOVE"}
        path = tmp_path / "idfix.csv"
        path.write_bytes(idfix_csv(findings, actions).encode("utf-8"))
        imported = import_decisions(ws, path)
        assert imported.idfix and imported.set == 3
        got = decisions(ws)
    assert got[findings[editable[0]].id] == ("EDIT", findings[editable[0]].finding.update)
    assert got[findings[editable[1]].id] == ("COMPLETE", None)
    assert got[findings[removable[0]].id] == ("REMOVE", None)


def test_idfix_rows_syncprep_does_not_know_are_ignored_without_a_decision(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "idfix.csv"
    path.write_text(
        ",".join(IDFIX_COLUMNS) + '\r\n"CN=zed,DC=x",zed,user,mail,Format,zed@x,,Edit,\r\n', encoding="utf-8"
    )
    result = import_decisions(ws, path)
    assert (result.rows, result.ignored_unknown, result.set) == (1, 1, 0)
    path.write_text(
        ",".join(IDFIX_COLUMNS) + '\r\n"CN=zed,DC=x",zed,user,mail,Format,zed@x,,Edit,COMPLETE\r\n', encoding="utf-8"
    )
    with pytest.raises(ImportRefused):
        import_decisions(ws, path)


def test_import_cli_lists_problems_then_one_error(
    ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(",".join(IDFIX_COLUMNS) + '\r\n"CN=zed,DC=x",zed,user,mail,format,zed@x,,EDIT,SKIP\r\n')
    capsys.readouterr()
    code = run(["import", str(path), "--db", str(ws.path)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err[0].startswith(f"syncprep: {path}: line 2: no finding for mail of CN=zed,DC=x")
    assert err[-1] == f"syncprep: error: {path}: 1 problem (listed above); nothing was imported"


def test_export_and_findings_cli(ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(ws.path)
    assert run(["accept", "--safety", "safe", "--db", db]) == 0
    assert "accepted 3 finding(s) (3 safe)" in capsys.readouterr().out
    assert run(["findings", "--decided", "--format", "jsonl", "--db", db]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line]
    assert len(rows) == 3 and all('"decision": {"action": "EDIT"' in r for r in rows)
    assert run(["show", "--error", "duplicate", "--db", db]) == 0
    assert "): 3 open finding(s)" in capsys.readouterr().out
    target = tmp_path / "out.csv"
    assert run(["export", str(target), "--separator", "semicolon", "--kind", "group", "--db", db]) == 0
    text = target.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0] == ";".join(IDFIX_COLUMNS) and len(text.splitlines()) == 2


def test_workspace_rejects_a_decision_that_breaks_its_constraints(ws: Workspace) -> None:
    fid = ws.findings()[0].id
    with pytest.raises(sqlite3.IntegrityError):
        ws.conn.execute(
            "INSERT INTO decisions (finding_id, action, origin, decided_at) VALUES (?, 'EDIT', 'x', 'now')", (fid,)
        )


# ---------------------------------------------------------------------------------------------
# property tests: CSV writer and reader


_CELL = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30)
_RISKY = st.sampled_from(["=1+2", "+x", "-y", "@z", "'q", " =a", "a,b", 'say "hi"', "l1\r\nl2", " edge ", "\tt", ";"])
_CELLS = st.one_of(_CELL, _RISKY, st.builds(lambda a, b: a + b, _RISKY, _CELL))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.lists(_CELLS, min_size=9, max_size=9), min_size=1, max_size=5),
    separator=st.sampled_from([",", ";", "\t"]),
    bom=st.booleans(),
)
def test_csv_round_trip(rows: list[list[str]], separator: str, bom: bool) -> None:
    # A real row always has a DN, and syncprep's own ERROR and PROPOSEDACTION spelling (IdFix's
    # "Character" and "Edit" mark a file as IdFix's, whose cells have no "'" prefix to remove).
    rows = [["CN=" + r[0], *r[1:4], "character,format", *r[5:7], "EDIT", r[8]] for r in rows]

    out = io.StringIO(newline="")
    write_csv_rows([list(IDFIX_COLUMNS), *([neutralise(c) for c in r] for r in rows)], out, separator=separator)
    data = out.getvalue().encode("utf-8")
    text, encoding = decode_csv((b"\xef\xbb\xbf" if bom else b"") + data)
    parsed = parse_csv(text)
    assert parsed.separator == separator and not parsed.problems
    assert encoding == ("utf-8-sig" if bom else "utf-8")
    assert [[parsed.cell(r, c) for c in IDFIX_COLUMNS] for r in parsed.records] == rows


@given(_CELLS)
def test_neutralised_cells_are_inert_and_restore(cell: str) -> None:
    from syncprep.output.formats import restore

    safe = neutralise(cell)
    assert restore(safe) == cell
    assert not safe.lstrip(" ").startswith(("=", "+", "-", "@")) or safe.startswith("'")


@given(_CELLS, st.sampled_from([",", ";", "\t"]))
def test_csv_cell_quotes_what_needs_it(cell: str, separator: str) -> None:
    quoted = csv_cell(cell, separator)
    if quoted != cell:
        assert quoted.startswith('"') and quoted.endswith('"')
        assert quoted[1:-1].replace('""', "").count('"') == 0
    else:
        assert separator not in cell and '"' not in cell and "\n" not in cell and "\r" not in cell
