"""The plan: decisions merged into one guarded modify per object, written as LDIF change records
and read back (by our reader, python-ldap's and ldapmodify's), plus property tests."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncprep.cli import run
from syncprep.decisions import accept, edit
from syncprep.errors import WorkspaceError
from syncprep.plan import (
    AttributeChange,
    Intent,
    ObjectChange,
    Plan,
    PlanConflict,
    build_plan,
    plan_changes,
    read_change_records,
    write_plan,
)
from syncprep.workspace import DecisionAction, Filters, open_workspace
from test_workspace import problem_users, scan_entries, user

EDIT, REMOVE = DecisionAction.EDIT, DecisionAction.REMOVE
DN = "CN=Bob,OU=Staff,DC=contoso,DC=com"


def ldif_of(plan: Plan, fold: int = 76) -> str:
    out = io.StringIO()
    write_plan(plan, out, fold=fold, header="test plan")
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# merging


def test_two_proxy_edits_on_one_object_are_one_record() -> None:
    plan = plan_changes(
        [
            Intent(1, DN, "proxyAddresses", "SMTP:a@contoso.com", EDIT, "smtp:a@contoso.com"),
            Intent(2, DN.lower(), "proxyaddresses", "smtp:b@contoso.com", EDIT, "SMTP:b@contoso.com"),
            Intent(3, DN, "mail", "a@contoso.com", EDIT, "b@contoso.com"),
            Intent(4, "CN=Other,DC=x", "proxyAddresses", "smtp:x@contoso.local", REMOVE),
        ]
    )
    assert len(plan) == 2
    bob, other = plan.objects
    assert bob.dn == DN
    assert bob.changes == (
        AttributeChange(
            "proxyAddresses", ("SMTP:a@contoso.com", "smtp:b@contoso.com"),
            ("smtp:a@contoso.com", "SMTP:b@contoso.com"), (1, 2),
        ),
        AttributeChange("mail", ("a@contoso.com",), ("b@contoso.com",), (3,)),
    )  # fmt: skip
    assert other.changes == (AttributeChange("proxyAddresses", ("smtp:x@contoso.local",), (), (4,)),)
    assert (plan.deleted, plan.added) == (4, 3)
    text = ldif_of(plan)
    assert text.count("changetype: modify") == 2
    assert "replace:" not in text


def test_an_edit_and_a_remove_of_one_value_conflict() -> None:
    with pytest.raises(PlanConflict) as conflict:
        plan_changes(
            [
                Intent(1, DN, "proxyAddresses", "smtp:a@x.com", EDIT, "smtp:b@x.com"),
                Intent(2, DN, "proxyAddresses", "smtp:a@x.com", REMOVE),
            ]
        )
    assert len(conflict.value.conflicts) == 1
    assert "findings 1 and 2" in conflict.value.conflicts[0]


def test_adding_a_value_another_decision_removes_conflicts() -> None:
    with pytest.raises(PlanConflict, match="1 conflicting"):
        plan_changes(
            [
                Intent(1, DN, "proxyAddresses", "smtp:a@x.com", REMOVE),
                Intent(2, DN, "proxyAddresses", "smtp:b@x.com", EDIT, "smtp:a@x.com"),
            ]
        )


def test_single_valued_attributes_take_one_new_value() -> None:
    with pytest.raises(PlanConflict, match="conflicting"):
        plan_changes([Intent(1, DN, "mail", "a@x", EDIT, "c@x"), Intent(2, DN, "mail", "b@x", EDIT, "c@x")])
    merged = plan_changes(
        [
            Intent(1, DN, "proxyAddresses", "smtp:a@x", EDIT, "smtp:c@x"),
            Intent(2, DN, "proxyAddresses", "smtp:b@x", EDIT, "smtp:c@x"),
        ]
    )
    assert merged.objects[0].changes[0].add == ("smtp:c@x",)
    assert merged.notes


def test_an_empty_attribute_is_only_added_and_binary_values_are_removed_as_bytes() -> None:
    guid = base64.b64encode(b"\x01\x02\xff").decode()
    plan = plan_changes(
        [
            Intent(1, DN, "displayName", "", EDIT, "Bob"),
            Intent(2, DN, "mS-DS-ConsistencyGuid", guid, REMOVE),
        ]
    )
    name, anchor = plan.objects[0].changes
    assert (name.delete, name.add) == ((), ("Bob",))
    assert (anchor.delete, anchor.add) == ((b"\x01\x02\xff",), ())
    assert f"mS-DS-ConsistencyGuid:: {guid}" in ldif_of(plan)
    assert read_change_records(ldif_of(plan)) == [
        ObjectChange(DN, tuple(AttributeChange(c.attribute, c.delete, c.add, ()) for c in plan.objects[0].changes))
    ]


_VALUE = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


@settings(max_examples=150)
@given(
    olds=st.lists(_VALUE, min_size=1, max_size=6, unique=True),
    data=st.data(),
)
def test_a_plan_never_deletes_a_value_no_decision_names(olds: list[str], data: st.DataObject) -> None:
    intents = []
    for n, old in enumerate(olds):
        if data.draw(st.booleans()):
            new = data.draw(_VALUE.filter(lambda v, old=old: v != old))
            intents.append(Intent(n, DN, "proxyAddresses", old, EDIT, new))
        else:
            intents.append(Intent(n, DN, "proxyAddresses", old, REMOVE))
    try:
        plan = plan_changes(intents)
    except PlanConflict:
        return
    (change,) = plan.objects[0].changes
    assert set(change.delete) == set(olds)
    assert set(change.add) == {i.new for i in intents if i.action == EDIT}
    assert not set(change.add) & {i.old for i in intents if i.action == REMOVE}


# ---------------------------------------------------------------------------------------------
# LDIF written and read back


_TEXT = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), min_size=1, max_size=40)
_EDGY = st.sampled_from([" lead", "trail ", ":colon", "<url", "Zoë", "a\nb", "a\r\nb", "#hash", "-", "dn: x", "é" * 50])
_VALUES = st.one_of(_TEXT, _EDGY, st.builds(lambda a, b: a + b, _EDGY, _TEXT))
_ATTRS = st.sampled_from(["proxyAddresses", "mail", "displayName", "userPrincipalName", "targetAddress"])


@st.composite
def object_changes(draw: st.DrawFn) -> ObjectChange:
    dn = "CN=" + draw(_VALUES).replace(",", "\\,") + ",DC=contoso,DC=com"
    attrs = draw(st.lists(_ATTRS, min_size=1, max_size=3, unique=True))
    changes = []
    for attr in attrs:
        delete = tuple(draw(st.lists(_VALUES, max_size=3, unique=True)))
        add = tuple(draw(st.lists(_VALUES, min_size=0 if delete else 1, max_size=3, unique=True)))
        changes.append(AttributeChange(attr, delete, add, ()))
    return ObjectChange(dn, tuple(changes))


@settings(max_examples=150)
@given(st.lists(object_changes(), min_size=1, max_size=3), st.sampled_from([0, 7, 76]))
def test_ldif_round_trip(objects: list[ObjectChange], fold: int) -> None:
    plan = Plan(tuple(objects))
    text = ldif_of(plan, fold)
    assert text.isascii()
    assert all(len(line) <= fold for line in text.splitlines() if fold and not line.startswith("#"))
    assert read_change_records(text) == objects
    assert python_ldap_read(text) == objects


def python_ldap_read(text: str) -> list[ObjectChange]:
    """An independent reader: python-ldap's LDIF parser."""
    ldif = pytest.importorskip("ldif")

    class Reader(ldif.LDIFParser):  # type: ignore[misc, name-defined]
        def __init__(self, data: bytes) -> None:
            super().__init__(io.BytesIO(data))
            self.out: list[ObjectChange] = []

        def handle_modify(self, dn: str, modops: list[tuple[int, str, list[bytes]]], controls: object = None) -> None:
            changes: dict[str, tuple[list[str], list[str]]] = {}
            for op, attr, vals in modops:
                pair = changes.setdefault(attr, ([], []))
                pair[0 if op == 1 else 1].extend(v.decode("utf-8") for v in vals)
            self.out.append(
                ObjectChange(dn, tuple(AttributeChange(a, tuple(d), tuple(n), ()) for a, (d, n) in changes.items()))
            )

    reader = Reader(text.encode("ascii"))
    reader.parse_change_records()
    return reader.out


def test_reader_refuses_other_change_records() -> None:
    with pytest.raises(WorkspaceError, match="changetype: modify"):
        read_change_records("dn: CN=x\nchangetype: delete\n")
    with pytest.raises(WorkspaceError, match="add: attr"):
        read_change_records("dn: CN=x\nchangetype: modify\nreplace: mail\nmail: a\n-\n")


# ---------------------------------------------------------------------------------------------
# from the workspace, and the command line


def test_plan_of_a_workspace(tmp_path: Path) -> None:
    entries = [*problem_users(), user("eli", proxyaddresses=("SMTP:eli@contoso.com", "smtp:eli@contoso.local"),
                                         mail="eli@contoso.com ")]  # fmt: skip
    with open_workspace(tmp_path / "w.db", create=True) as ws:
        ws.record_scan(scan_entries(tmp_path, entries, verified_domains=("contoso.com",)))
        assert len(build_plan(ws)) == 0
        accept(ws, Filters(), select_all=True)
        (bob,) = ws.findings(Filters(rules=("U",)))
        edit(ws, bob.id, update="bob.smith@contoso.com")
        (cy_skip,) = ws.findings(Filters(dn_suffixes=("CN=cy,OU=Staff,DC=contoso,DC=com",)))
        edit(ws, cy_skip.id, action="SKIP")
        plan = build_plan(ws)
    by_dn = {o.dn.split(",")[0]: o for o in plan.objects}
    assert set(by_dn) == {"CN=ann", "CN=bob", "CN=eli"}
    assert [(c.attribute, c.delete, c.add, c.unsafe) for c in by_dn["CN=eli"].changes] == [
        ("mail", ("eli@contoso.com ",), ("eli@contoso.com",), False),  # safe: trimmed as proposed
        ("proxyAddresses", ("smtp:eli@contoso.local",), (), True),  # removing an address
    ]
    assert by_dn["CN=bob"].changes[0].add == ("bob.smith@contoso.com",)
    assert {i.finding_id for i in plan.unsafe} >= {bob.id}
    parsed = read_change_records(ldif_of(plan))
    assert [(o.dn, [(c.attribute, c.delete, c.add) for c in o.changes]) for o in parsed] == [
        (o.dn, [(c.attribute, c.delete, c.add) for c in o.changes]) for o in plan.objects
    ]


def test_plan_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "w.db")
    with open_workspace(db, create=True) as ws:
        ws.record_scan(scan_entries(tmp_path, problem_users(), verified_domains=("contoso.com",)))
    assert run(["plan", "--db", db]) == 0
    captured = capsys.readouterr()
    assert "plan: nothing to change" in captured.err
    assert run(["accept", "--all", "--db", db]) == 0
    capsys.readouterr()
    out = tmp_path / "plan.ldif"
    assert run(["plan", "-o", str(out), "--db", db]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "syncprep: plan: 3 object(s), 3 value(s) deleted, 2 added; 2 unsafe"
    warnings = [line for line in err if line.startswith("syncprep: warning: unsafe: ")]
    assert len(warnings) == 2 and any("userPrincipalName bob smith@contoso.com -> " in w for w in warnings)
    text = out.read_text(encoding="ascii")
    assert text.startswith("# syncprep plan: scan 1 of w.db")
    assert len(read_change_records(text)) == 3
    if shutil.which("ldapmodify"):
        # -n: parse and show, never connect.
        done = subprocess.run(
            ["ldapmodify", "-n", "-x", "-H", "ldap://127.0.0.1:1", "-f", str(out)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("modifying entry") == 3


def test_plan_cli_reports_conflicts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "w.db")
    entries = [user("kim", proxyaddresses=("SMTP:kim@contoso.com", "smtp:kim@contoso.local", "smtp:k m@contoso.com"))]
    with open_workspace(db, create=True) as ws:
        ws.record_scan(scan_entries(tmp_path, entries, verified_domains=("contoso.com",)))
        local = ws.findings(Filters(errors=("topleveldomain",)))[0]
        spaced = ws.findings(Filters(errors=("character",)))[0]
        edit(ws, local.id, action="REMOVE")
        edit(ws, spaced.id, update="smtp:kim@contoso.local")
    code = run(["plan", "--db", db])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err[0].startswith(f"syncprep: conflict: finding {spaced.id} sets proxyAddresses of CN=kim")
    assert err[-1].startswith("syncprep: error: 1 conflicting decision")
