"""bench/generate.py: the synthetic LDIF parses, holds every planted error it claims, and nothing else.

The checks here are written from RULES.md, not from the generator: which objects §1.1 skips, what
each §6 error type means for a value, which values §3 says must be unique.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import pytest

from syncprep.model import Entry, ErrorType
from syncprep.sources.ldif import LdifSource

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "generate.py"
N = 2000


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_generate", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # worker processes (jobs > 1) find it by name
    spec.loader.exec_module(module)
    return module


gen = _load()


class Bench:
    def __init__(self, path: Path, summary: dict) -> None:
        self.path = path
        self.summary = summary
        self.entries: list[Entry] = list(LdifSource(path).entries())
        self.by_dn = {e.dn: e for e in self.entries}
        self.planted = {p["dn"]: p for p in summary["planted_objects"]}
        self.skipped = {s["dn"]: s for s in summary["skipped_objects"]}
        self.in_scope = [e for e in self.entries if e.dn not in self.skipped]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    path = tmp_path_factory.mktemp("bench") / "bench.ldif"
    summary = gen.generate(N, path, seed=7, skip_rate=0.02, jobs=1)
    return Bench(path, summary)


# ---------------------------------------------------------------------------------------------
# RULES.md in a few lines


def text(entry: Entry, attr: str) -> list[str]:
    return [v for v in entry.get(attr) if isinstance(v, str)]


def first(entry: Entry, attr: str) -> str | None:
    values = text(entry, attr)
    return values[0] if values else None


def smtp(entry: Entry) -> list[str]:
    return [v for v in text(entry, "proxyaddresses") if v.lower().startswith("smtp:")]


def exclusion(entry: Entry) -> str | None:
    """Why RULES.md §1.1 (profile m365) skips an entry, or None when it is in scope."""
    kind = text(entry, "objectclass")[-1].lower()
    if kind not in ("user", "inetorgperson", "contact", "group"):
        return "kind"
    if (first(entry, "iscriticalsystemobject") or "").upper() == "TRUE":
        return "critical"
    if "\\0ACNF:" in entry.dn:
        return "cnf"
    sam = first(entry, "samaccountname")
    nick = first(entry, "mailnickname")
    rtd = int(first(entry, "msexchrecipienttypedetails") or 0)
    if kind in ("user", "inetorgperson"):
        if sam is None:
            return "no sam"
        if sam.upper().startswith(("AAD_", "MSOL_")) or sam.upper() == "SUPPORT_388945A0":
            return "service sam"
        if (nick or "").startswith("SystemMailbox{"):
            return "system mailbox"
        if rtd & 0x21C07000:
            return "recipient type"
    if kind != "group" and any((v or "").upper().startswith("CAS_") and "}" in v for v in (nick, sam)):
        return "cas"
    if kind == "contact":
        if not any("@" in v for v in smtp(entry)) and "@" not in (first(entry, "mail") or ""):
            return "contact not mail-enabled"
        hidden = (first(entry, "msexchhidefromaddresslists") or "").upper() == "TRUE"
        if "(MSOL)" in (first(entry, "displayname") or "") and hidden:
            return "msol contact"
    if kind == "group":
        if sam == "MSOL_AD_Sync_RichCoexistence" or rtd & 0x40000000:
            return "group"
        security = int(first(entry, "grouptype") or 0) & 0x80000000
        if not security and not first(entry, "mail") and not smtp(entry):
            return "distribution not mail-enabled"
    return None


DNS = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$", re.I)
UPN_LOCAL = re.compile(r"^[A-Za-z0-9'.\-_!#^~]+$")


def shows(error: str, attr: str, value: str | int | None, entry: Entry, verified: list[str]) -> bool:
    """Does the planted value really carry this RULES.md §6 error (per §2, §4, §5)?"""
    if error == "largeobject":
        return isinstance(value, int) and value > (300 if attr == "proxyAddresses" else 15)
    if error == "blank":
        return value is None or not str(value).strip()
    assert isinstance(value, str)
    address = value.split(":", 1)[1] if attr in ("proxyAddresses", "targetAddress") else value
    local, _, domain = address.strip().rpartition("@")
    tld_ok = domain.rsplit(".", 1)[-1].lower() not in ("local", "lan", "corp", "internal")
    if error == "character":
        bad_ascii = not value.isascii() or not value.isprintable()
        return bad_ascii or "&" in value or (attr == "userPrincipalName" and not UPN_LOCAL.match(local))
    if error == "format":
        return address.count("@") != 1 or ".." in local
    if error == "length":
        limit = {"userPrincipalName": 113, "displayName": 256, "mailNickname": 64}[attr]
        return len(value) > limit or (attr == "userPrincipalName" and len(local) > 64)
    if error == "topleveldomain":
        return not tld_ok
    if error == "domainpart":
        return not DNS.match(domain)
    if error == "localpart":
        return local.startswith(".") or local.endswith(".")
    if error == "unverifieddomain":
        return DNS.match(domain) is not None and tld_ok and not any(
            domain.lower() == d or domain.lower().endswith("." + d) for d in verified)
    if error == "whitespace":
        return value != value.strip()
    if error == "primary":
        return sum(v.startswith("SMTP:") for v in text(entry, "proxyaddresses")) != 1
    if error == "reserved":
        return domain.endswith(".microsoftonline.com") or (
            domain.endswith(".onmicrosoft.com") and domain not in verified)
    raise AssertionError(f"no check for {error}")


def namespaces(entry: Entry) -> dict[str, set[str]]:
    """The values RULES.md §3 says must be unique across objects, by namespace."""
    spaces: dict[str, set[str]] = defaultdict(set)
    for v in [*text(entry, "userprincipalname"), *text(entry, "mail")]:
        spaces["address"].add(v.strip().lower())
    for v in text(entry, "proxyaddresses"):
        kind, _, rest = v.partition(":")
        if kind.lower() == "smtp":
            spaces["address"].add(rest.lower())
        else:
            spaces[kind.upper()].add(rest.lower())
    for attr in ("mailnickname", "targetaddress"):
        spaces[attr].update(v.lower() for v in text(entry, attr))
    for attr in ("objectguid", "ms-ds-consistencyguid"):
        spaces["anchor"].update(v.hex() for v in entry.get(attr) if isinstance(v, bytes))
    return spaces


# ---------------------------------------------------------------------------------------------
# the file


def test_parses_with_one_entry_per_object(bench: Bench) -> None:
    assert bench.path.read_bytes().startswith(b"version: 1\n\ndn")
    assert len(bench.entries) == N
    assert len(bench.by_dn) == N, "DNs are unique"
    sidecar = json.loads(Path(str(bench.path) + ".planted.json").read_text(encoding="utf-8"))
    assert sidecar == json.loads(json.dumps(bench.summary))
    assert sidecar["entries"] == N
    kinds = sidecar["kinds"]
    assert sum(kinds.values()) == N
    ordinary = kinds["user"] + kinds["group"] + kinds["contact"]
    assert 0.80 < kinds["user"] / ordinary < 0.90
    assert 0.06 < kinds["group"] / ordinary < 0.14
    assert 0.02 < kinds["contact"] / ordinary < 0.08


def test_lines_are_folded_at_76_and_base64_where_needed(bench: Bench) -> None:
    raw = bench.path.read_text(encoding="ascii")  # non-ASCII text only ever appears base64-encoded
    lines = raw.split("\n")
    assert max(map(len, lines)) <= 76
    assert sum(ln.startswith(" ") for ln in lines) > N  # DNs, X500 addresses, ... are folded
    assert "dn:: " in raw and "displayName:: " in raw and "objectGUID:: " in raw
    names = [first(e, "displayname") or "" for e in bench.in_scope if e.dn not in bench.planted]
    assert any(not n.isascii() for n in names), "accented and non-Latin names are present"
    assert any(re.search(r"[\u4e00-\u9fff\u0400-\u04ff\u0370-\u03ff]", n) for n in names)


def test_every_error_type_is_planted(bench: Bench) -> None:
    counts = bench.summary["planted"]
    assert set(counts) == {t.value for t in ErrorType}
    assert all(counts[t] > 0 for t in counts), counts
    assert sum(counts.values()) == bench.summary["planted_total"] == len(bench.planted)
    assert 0.01 < len(bench.planted) / N < 0.03


def test_planted_values_are_there_and_are_the_error_they_claim(bench: Bench) -> None:
    verified = bench.summary["verified_domains"]
    for p in bench.summary["planted_objects"]:
        entry = bench.by_dn[p["dn"]]
        assert exclusion(entry) is None, p
        attr = p["attribute"]
        if p["type"] in ("duplicate", "anchor"):
            continue  # see test_duplicates_have_two_holders
        if p["type"] == "largeobject":
            assert len(entry.get(attr)) == p["count"]
            value = p["count"]
        elif "value" in p:
            value = p["value"]
            assert value in entry.get(attr), p
        else:
            value = first(entry, attr)
        assert shows(p["type"], attr, value, entry, verified), p


def test_duplicates_have_two_holders(bench: Bench) -> None:
    dups = [p for p in bench.summary["planted_objects"] if p["type"] in ("duplicate", "anchor")]
    assert dups
    for p in dups:
        mine, other = bench.by_dn[p["dn"]], bench.by_dn[p["other_dn"]]
        assert p["dn"] != p["other_dn"]
        assert exclusion(mine) is None and exclusion(other) is None, p
        shared = {
            space: values & namespaces(other).get(space, set()) for space, values in namespaces(mine).items()
        }
        assert any(shared.values()), p
        assert p["kind"] == p["other_kind"] or p["variant"] in ("upn_equals_group_address",
                                                                 "contact_mail_equals_user")


def test_skipped_objects_are_what_rules_exclude(bench: Bench) -> None:
    reasons = {s["variant"] for s in bench.summary["skipped_objects"]}
    assert reasons == {what for what, _ in gen.SKIP_REASONS}, "every kind of excluded object is there"
    for entry in bench.entries:
        why = exclusion(entry)
        assert (why is not None) == (entry.dn in bench.skipped), (entry.dn, why)


def test_no_accidental_collisions(bench: Bench) -> None:
    """UPN, sAMAccountName and every §3 namespace are unique, except where a duplicate was planted."""
    upns: dict[str, list[str]] = defaultdict(list)
    sams: dict[str, list[str]] = defaultdict(list)
    holders: dict[tuple[str, str], set[str]] = defaultdict(set)
    for entry in bench.in_scope:
        for space, values in namespaces(entry).items():
            for value in values:
                holders[space, value].add(entry.dn)
        if entry.dn in bench.planted:
            continue
        for upn in text(entry, "userprincipalname"):
            upns[upn.lower()].append(entry.dn)
        for sam in text(entry, "samaccountname"):
            sams[sam.lower()].append(entry.dn)
    assert len(upns) > 0.8 * N and all(len(v) == 1 for v in upns.values())
    assert len(sams) > 0.9 * N and all(len(v) == 1 for v in sams.values())
    planted_dups = {p["dn"] for p in bench.summary["planted_objects"] if p["type"] in ("duplicate", "anchor")}
    for (space, value), dns in holders.items():
        if len(dns) > 1:
            assert dns & planted_dups, (space, value, dns)


# ---------------------------------------------------------------------------------------------
# the generator


def test_fast_path_writes_what_the_generic_encoder_writes(tmp_path: Path) -> None:
    """Every record re-encoded value by value (and refolded) gives the same bytes: the hand-built
    f-strings choose base64 and folding exactly as the generic LDIF writer does."""
    fast, slow = tmp_path / "fast.ldif", tmp_path / "slow.ldif"
    gen.generate(1500, fast, seed=3, jobs=1)
    gen.generate(1500, slow, seed=3, jobs=1, generic=True)
    assert fast.read_bytes() == slow.read_bytes()


def test_output_depends_on_the_seed_not_on_jobs(tmp_path: Path) -> None:
    one, two, other = tmp_path / "one.ldif", tmp_path / "two.ldif", tmp_path / "other.ldif"
    gen.generate(1200, one, seed=5, jobs=1, part_size=500)
    gen.generate(1200, two, seed=5, jobs=2, part_size=500)
    gen.generate(1200, other, seed=6, jobs=1, part_size=500)
    assert one.read_bytes() == two.read_bytes()
    assert one.read_bytes() != other.read_bytes()
    assert Path(f"{one}.planted.json").read_bytes() == Path(f"{two}.planted.json").read_bytes()
    assert not list(tmp_path.glob("*.tmp")), "part files are cleaned up"
    dns = [e.dn for e in LdifSource(one).entries()]
    assert len(dns) == len(set(dns)) == 1200, "DNs stay unique across parts"


def test_unfolded_and_crlf_files_hold_the_same_entries(tmp_path: Path) -> None:
    folded, flat, crlf = tmp_path / "folded.ldif", tmp_path / "flat.ldif", tmp_path / "crlf.ldif"
    gen.generate(400, folded, seed=9, jobs=1)
    gen.generate(400, flat, seed=9, fold=0, jobs=1)
    gen.generate(400, crlf, seed=9, crlf=True, jobs=1)
    flat_text = flat.read_text(encoding="ascii")
    assert not re.search(r"^ ", flat_text, re.M) and max(map(len, flat_text.split("\n"))) > 76
    assert crlf.read_bytes() == folded.read_bytes().replace(b"\n", b"\r\n")
    entries = list(LdifSource(folded).entries())
    assert entries == list(LdifSource(flat).entries()) == list(LdifSource(crlf).entries())


def test_binary_values_are_bytes(bench: Bench) -> None:
    entry = next(e for e in bench.in_scope if text(e, "objectclass")[-1] == "user" and e.dn not in bench.planted)
    guid = entry.get("objectguid")[0]
    assert isinstance(guid, bytes) and len(guid) == 16
    sid = entry.get("objectsid")[0]
    assert isinstance(sid, bytes) and sid[:8] == bytes([1, 5, 0, 0, 0, 0, 0, 5])
    assert base64.b64encode(guid).decode() in bench.path.read_text(encoding="ascii")


def test_command_line(tmp_path: Path) -> None:
    out = tmp_path / "cli.ldif"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "300", str(out), "--seed", "1", "--error-rate", "0.05", "--fold", "76"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "300 objects" in result.stderr
    sidecar = json.loads(Path(f"{out}.planted.json").read_text(encoding="utf-8"))
    assert sidecar["objects"] == 300 and sidecar["planted_total"] > 0
    bad = subprocess.run([sys.executable, str(SCRIPT), "10", str(out), "--error-rate", "2"],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2


def test_phases_bench_reports_every_phase_for_the_whole_file(bench: Bench) -> None:
    """bench/phases.py reads the whole file and prints the three phases with figures."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "phases.py"), str(bench.path), "--batches", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout
    assert f"{len(bench.entries):,} objects" in out
    phases = ("read (LDIF source alone)", "rules (1 batches", "scan (read + rules + findings)", "of which findings")
    for phase in phases:
        line = next(line for line in out.splitlines() if phase in line)
        wall, cpu = (float(x) for x in line.split()[-2:])
        assert wall >= 0 and cpu >= 0
