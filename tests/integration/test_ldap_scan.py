"""Live scans against real servers: the same findings as an export, paging, and one-line errors.

Samba (a real AD DC, seeded with the sample organisation) answers over LDAPS, StartTLS, the global
catalog and Kerberos; slapd (100,000 AD-shaped objects) has AD's 1000-entry page limit for cn=svc.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from syncprep.engine import ScanOptions, ScanResult, scan
from syncprep.sources import LdifSource, open_source
from syncprep.sources.ldap import Credentials, LdapSettings, LdapSource, Secret, parse_url
from syncprep.sources.ldapclient import open_client

if TYPE_CHECKING:
    from conftest import SambaServer, SlapdServer

OPTIONS = ScanOptions(verified_domains=("contoso.com", "fabrikam.com"), tenant="contoso")
CLIENTS = ["python-ldap", "ldap3"]


def findings(result: ScanResult) -> list[str]:
    """Findings as sorted JSON lines: the contract other tools read."""
    import json

    return sorted(json.dumps(f.to_dict(), sort_keys=True) for f in result.findings)


def live(url: str, settings: LdapSettings, options: ScanOptions = OPTIONS) -> ScanResult:
    warnings: list[str] = []
    result = scan([LdapSource(parse_url(url), settings, warnings.append)], options)
    return result


def simple(server: SambaServer, client: str, **extra: object) -> LdapSettings:
    creds = Credentials("simple", server.admin_upn, Secret(server.password))
    return LdapSettings(credentials=creds, ca_file=server.ca_file, client=client, **extra)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def exported(samba: SambaServer, sample_seed: bool) -> list[str]:
    """What a scan of the LDIF export of the seeded objects finds."""
    result = scan([LdifSource(Path(samba.export_ldif))], OPTIONS)
    assert len(result.findings) > (50 if sample_seed else 0), "the seed should carry problems"
    return findings(result)


def test_ldbsearch_export_equals_ldapsearch_export(samba: SambaServer, exported: list[str], sample_seed: bool) -> None:
    """Samba's own ldbsearch writes objectGUID as a GUID string: the same findings, anchor duplicates included."""
    result = scan([LdifSource(Path(samba.export_ldbsearch_ldif))], OPTIONS)
    assert findings(result) == exported
    assert not sample_seed or any('"anchor"' in line for line in exported), "the sample plants an anchor collision"


@pytest.mark.parametrize("client", CLIENTS)
def test_ldaps_equals_export(samba: SambaServer, exported: list[str], client: str) -> None:
    result = live(samba.ldaps_url, simple(samba, client))
    assert result.objects_read >= samba.seeded - 10  # computers are left out by the search filter
    assert findings(result) == exported


@pytest.mark.parametrize("client", CLIENTS)
def test_starttls_equals_export(samba: SambaServer, exported: list[str], client: str) -> None:
    assert findings(live(samba.ldap_url, simple(samba, client, start_tls=True))) == exported


@pytest.mark.parametrize(
    ("client", "url_kind"), [("python-ldap", "ldap"), ("python-ldap", "ldaps"), ("ldap3", "ldaps")]
)
def test_kerberos_equals_export(
    samba: SambaServer, exported: list[str], client: str, url_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in samba.env.items():
        monkeypatch.setenv(key, value)
    settings = LdapSettings(credentials=Credentials("kerberos"), ca_file=samba.ca_file, client=client)
    url = samba.ldaps_url if url_kind == "ldaps" else samba.ldap_url
    assert findings(live(url, settings)) == exported


def test_global_catalog_reads_the_forest(samba: SambaServer, exported: list[str]) -> None:
    warnings: list[str] = []
    url = f"gcs://{samba.hostname}:{samba.gcs_port}"
    result = scan([LdapSource(parse_url(url), simple(samba, "python-ldap"), warnings.append)], OPTIONS)
    # The GC holds the partial attribute set: whatever it lacks is named in a warning, never silent.
    missing = " ".join(warnings)
    if not warnings:
        assert findings(result) == exported
    else:
        assert "global catalog does not hold" in missing
        assert result.objects_read >= samba.seeded - 10


@pytest.mark.sample_seed
def test_base_and_filter_narrow_the_scan(samba: SambaServer) -> None:
    base = f"OU=Groups,{samba.seed_base}"
    groups = live(samba.ldaps_url, simple(samba, "python-ldap", base=base))
    assert groups.objects_read > 0
    assert all(f.dn.endswith(base) for f in groups.findings)
    only = live(samba.ldaps_url, simple(samba, "python-ldap", filter="(objectClass=contact)"))
    assert only.objects_read > 0
    assert {f.object_class.value for f in only.findings} <= {"contact"}


@pytest.mark.sample_seed
def test_range_retrieval_reads_every_value(samba: SambaServer) -> None:
    """Read 306 proxy addresses in ranges of 100, as AD hands out member;range=0-1499."""
    settings = simple(samba, "python-ldap")
    source = LdapSource(parse_url(samba.ldaps_url), settings)
    client = open_client(source.endpoint, settings)
    client.connect()
    try:
        many = [
            (dn, attrs)
            for dn, attrs in client.search(samba.seed_base, "(objectClass=user)", ["proxyAddresses"], 1000)
            if len(attrs.get("proxyAddresses", [])) > 300
        ]
        assert len(many) == 1, "the sample has one user with 306 proxy addresses"
        dn, whole = many[0]
        first = client.read_attribute(dn, "proxyAddresses;range=0-99")
        assert list(first) == ["proxyAddresses;range=0-99"] and len(first["proxyAddresses;range=0-99"]) == 100
        entry = source._untag(client, dn, dict(first))
        assert sorted(entry["proxyAddresses"]) == sorted(whole["proxyAddresses"])
    finally:
        client.close()


@pytest.mark.parametrize("client", CLIENTS)
def test_paging_under_a_1000_entry_limit_returns_every_object(slapd: SlapdServer, client: str) -> None:
    """cn=svc may see 1000 entries per page and per unpaged search, like an AD account."""
    settings = LdapSettings(
        credentials=Credentials("simple", slapd.svc_dn, Secret(slapd.svc_password)),
        ca_file=slapd.ca_file,
        client=client,
        base=f"OU=Groups,{slapd.base_dn}" if client == "ldap3" else None,  # ldap3 is slow: a few thousand
    )
    source = LdapSource(parse_url(slapd.ldaps_url), settings)
    dns = {_dn(dn).lower() for dn, _attrs in source._records(frozenset({"objectclass"}), lambda _n: None)}
    expected = _expected_dns(slapd, settings.base)
    assert len(expected) > slapd.size_limit * 2
    assert dns == expected


def _expected_dns(slapd: SlapdServer, base: str | None) -> set[str]:
    """Users, groups and contacts (not computers) of the generated file, below base."""
    from syncprep.sources.ldif import LdifSource as Ldif

    out = set()
    for entry in Ldif(Path(slapd.source_ldif)).entries():
        classes = {str(c).lower() for c in entry.attributes.get("objectclass", ())}
        if "computer" in classes or not classes & {"user", "group", "contact"}:
            continue
        if base is None or entry.dn.lower().endswith(base.lower()):
            out.add(_dn(entry.dn).lower())
    return out


def test_live_slapd_scan_equals_its_source_file(slapd: SlapdServer) -> None:
    settings = LdapSettings(
        credentials=Credentials("simple", slapd.svc_dn, Secret(slapd.svc_password)),
        ca_file=slapd.ca_file,
        client="python-ldap",
    )
    live_result = scan([LdapSource(parse_url(slapd.ldaps_url), settings)], ScanOptions())
    file_result = scan([LdifSource(Path(slapd.source_ldif))], ScanOptions())
    assert len(live_result.findings) > 1000
    # slapd hands DNs back in its own spelling (cn=, \2c for a comma); AD and Samba keep them as stored.
    assert _same_dns(findings(live_result)) == _same_dns(findings(file_result))


def _dn(dn: str) -> str:
    import ldap.dn

    return ldap.dn.dn2str([[(t.lower(), v, 1) for t, v, _k in rdn] for rdn in ldap.dn.str2dn(dn)])


def _same_dns(lines: list[str]) -> list[str]:
    """Findings with every DN in one spelling."""
    import json

    out = []
    for line in lines:
        item = json.loads(line)
        item["dn"] = _dn(item["dn"])
        for holder in item["holders"]:
            holder["dn"] = _dn(holder["dn"])
        if " keeps it." in item["note"]:  # the keeper's DN, as the server spelled it
            keeper, rest = item["note"].split(" keeps it.", 1)
            item["note"] = f"{_dn(keeper)} keeps it.{rest}"
        out.append(json.dumps(item, sort_keys=True))
    return sorted(out)


# -- errors: one line, exit 2, nothing secret -------------------------------------------------------


def syncprep(
    args: Sequence[str], env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncprep", "scan", *args, "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
    )


def signed_in(samba: SambaServer) -> list[str]:
    """Scan Samba over LDAPS as Administrator; the password comes from $SP_PW."""
    return [samba.ldaps_url, "--user", samba.admin_upn, "--password-env", "SP_PW", "--ca-file", samba.ca_file]


def one_line_error(done: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("syncprep: error: "), done.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


@pytest.mark.parametrize("client", CLIENTS)
def test_wrong_password(samba: SambaServer, client: str) -> None:
    secret = "Wrong-Passw0rd-4711"
    done = syncprep(
        [
            samba.ldaps_url,
            "--client",
            client,
            "--user",
            samba.admin_upn,
            "--password-env",
            "SP_PW",
            "--ca-file",
            samba.ca_file,
        ],
        env={"SP_PW": secret},
    )
    one_line_error(done, "refused the user name or password", samba.admin_upn)
    assert secret not in done.stderr + done.stdout


@pytest.mark.parametrize("client", CLIENTS)
def test_self_signed_certificate_without_ca_file(samba: SambaServer, client: str) -> None:
    done = syncprep(
        [samba.ldaps_url, "--client", client, "--user", samba.admin_upn, "--password-env", "SP_PW"],
        env={"SP_PW": samba.password, "LDAPTLS_CACERT": ""},
    )
    one_line_error(done, "not trusted", "--ca-file")
    assert samba.password not in done.stderr


@pytest.mark.parametrize("client", CLIENTS)
def test_unreachable_port(client: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    done = syncprep(
        [f"ldaps://127.0.0.1:{port}", "--client", client, "--user", "a@b", "--password-env", "SP_PW"], {"SP_PW": "x"}
    )
    one_line_error(done, "cannot connect", f"127.0.0.1:{port}")


def test_insecure_is_loudly_warned(samba: SambaServer) -> None:
    done = syncprep(
        [samba.ldaps_url, "--insecure", "--user", samba.admin_upn, "--password-env", "SP_PW", "--format", "jsonl"],
        env={"SP_PW": samba.password, "LDAPTLS_CACERT": ""},
    )
    assert done.returncode == 1, done.stderr
    assert "WARNING: --insecure" in done.stderr
    assert done.stdout.count("\n") == len(scan([LdifSource(Path(samba.export_ldif))]).findings)


def test_anonymous_search_is_refused_with_advice(samba: SambaServer) -> None:
    done = syncprep([samba.ldaps_url, "--auth", "anonymous", "--ca-file", samba.ca_file])
    one_line_error(done, "sign-in")


def test_size_limit_without_paging(slapd: SlapdServer) -> None:
    done = syncprep(
        [
            slapd.ldaps_url,
            "--page-size",
            "0",
            "--user",
            slapd.svc_dn,
            "--password-env",
            "SP_PW",
            "--ca-file",
            slapd.ca_file,
            "--base",
            f"OU=Groups,{slapd.base_dn}",
        ],
        env={"SP_PW": slapd.svc_password},
    )
    one_line_error(done, "size limit", "--page-size")


def _slapd_tls(slapd: SlapdServer, client: str) -> list[str]:
    return [slapd.ldaps_url, "--client", client, "--ca-file", slapd.ca_file]


@pytest.mark.parametrize("client", CLIENTS)
def test_insufficient_rights(slapd: SlapdServer, client: str) -> None:
    """An account that signs in but may not read the objects: one line that says so, not 'no findings'."""
    done = syncprep(
        [*_slapd_tls(slapd, client), "--user", slapd.outsider_dn, "--password-env", "SP_PW"],
        env={"SP_PW": slapd.svc_password},
    )
    one_line_error(done, "may not read these objects", slapd.outsider_dn, "use an account")


@pytest.mark.parametrize("client", CLIENTS)
def test_server_that_will_not_page(slapd: SlapdServer, client: str) -> None:
    """Paged results refused for the account: the advice is about paging, not about the page size."""
    done = syncprep(
        [*_slapd_tls(slapd, client), "--user", slapd.nopaging_dn, "--password-env", "SP_PW"],
        env={"SP_PW": slapd.svc_password},
    )
    one_line_error(done, "does not allow", "paged results", "--page-size 0")


def test_password_is_not_in_the_process_list(samba: SambaServer) -> None:
    """While a scan runs, its command line names the variable, never the password."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncprep", "scan", *signed_in(samba), "--format", "jsonl", "-o", os.devnull],
        env={**os.environ, "SP_PW": samba.password},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    seen = b""
    while proc.poll() is None:
        try:
            seen += Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        except OSError:
            break
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert b"SP_PW" in seen or seen == b""
    assert samba.password.encode() not in seen + err


def test_cli_scan_of_samba_equals_export(samba: SambaServer, tmp_path: Path) -> None:
    out = tmp_path / "live.jsonl"
    done = syncprep(
        [
            *signed_in(samba),
            "--format",
            "jsonl",
            "-o",
            str(out),
            "--verified-domains",
            "contoso.com,fabrikam.com",
            "--tenant",
            "contoso",
        ],
        env={"SP_PW": samba.password},
    )
    assert done.returncode == 1, done.stderr
    via_file = open_source(samba.export_ldif)
    expected = findings(scan([via_file], OPTIONS))
    import json

    got = sorted(json.dumps(json.loads(line), sort_keys=True) for line in out.read_text(encoding="utf-8").splitlines())
    assert got == expected


def test_duplicates_span_a_directory_and_a_file(samba: SambaServer, tmp_path: Path) -> None:
    """A partner's export holding an address of a live Samba user: one duplicate, both holders."""
    user = next(
        e
        for e in LdifSource(Path(samba.export_ldif)).entries()
        if "user" in {str(c).lower() for c in e.attributes.get("objectclass", ())} and e.attributes.get("mail")
    )
    mail = str(user.attributes["mail"][0])
    partner = tmp_path / "partner.ldif"
    partner.write_text(
        "dn: CN=Partner Copy,OU=Contacts,DC=partner,DC=test\n"
        "objectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: contact\n"
        f"cn: Partner Copy\nmail: {mail}\nproxyAddresses: SMTP:{mail}\nmailNickname: partnercopy\n"
        f"targetAddress: SMTP:{mail}\n",
        encoding="utf-8",
    )
    result = scan([LdapSource(parse_url(samba.ldaps_url), simple(samba, "python-ldap")), LdifSource(partner)], OPTIONS)
    shared = [f for f in result.findings if f.dn.startswith("CN=Partner Copy") and "duplicate" in f.errors]
    assert shared, "the partner's copy duplicates a live address"
    holders = {h.dn for f in shared for h in f.holders}
    assert user.dn in holders and "CN=Partner Copy,OU=Contacts,DC=partner,DC=test" in holders


def test_password_from_standard_input(samba: SambaServer) -> None:
    """--password-file - takes the password from a pipe (a secrets manager, a CI secret)."""
    args = [samba.ldaps_url, "--user", samba.admin_upn, "--password-file", "-", "--ca-file", samba.ca_file]
    done = syncprep([*args, "--format", "jsonl"], stdin=samba.password + "\n")
    assert done.returncode == 1, done.stderr
    assert done.stdout.count("\n") == len(scan([LdifSource(Path(samba.export_ldif))]).findings)
    assert samba.password not in done.stdout + done.stderr
    wrong = syncprep(args, stdin="Wrong-Passw0rd-4711\n")
    one_line_error(wrong, "refused the user name or password")


def test_ntlm_refused_by_samba_is_explained(samba: SambaServer) -> None:
    """Samba drops ldap3's NTLM sign-in (Windows AD takes it): say what to use instead."""
    done = syncprep(
        [
            samba.ldaps_url,
            "--auth",
            "ntlm",
            "--user",
            f"{samba.domain}\\Administrator",
            "--password-env",
            "SP_PW",
            "--ca-file",
            samba.ca_file,
        ],
        env={"SP_PW": samba.password},
    )
    one_line_error(done, "NTLM", "--auth kerberos")
    assert samba.password not in done.stderr


@pytest.mark.parametrize("client", CLIENTS)
def test_down_level_name_over_tls_signs_in_simply(
    samba: SambaServer, exported: list[str], client: str, tmp_path: Path
) -> None:
    """DOMAIN\\name over LDAPS needs no NTLM: a simple bind, which AD and Samba take, reads everything."""
    out = tmp_path / "f.jsonl"
    sign_in = ["--client", client, "--user", f"{samba.domain}\\Administrator", "--password-env", "SP_PW"]
    tenant = ["--verified-domains", ",".join(OPTIONS.verified_domains), "--tenant", str(OPTIONS.tenant)]
    output = ["--format", "jsonl", "-o", str(out)]
    done = syncprep(
        [samba.ldaps_url, *sign_in, "--ca-file", samba.ca_file, *tenant, *output], env={"SP_PW": samba.password}
    )
    assert done.returncode == 1, done.stderr
    assert sorted(json.dumps(json.loads(line), sort_keys=True) for line in out.read_text().splitlines()) == exported
