"""The test directory servers themselves: reachable as documented, seeded as documented.

Samba: LDAPS, StartTLS, Kerberos and the global catalog work; every seeded object holds its
source values byte for byte; reset() undoes writes. slapd: AD-like limits for the service account,
and a paged search that reads all generated objects.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from ldap3 import (
    AUTO_BIND_NO_TLS,
    AUTO_BIND_TLS_BEFORE_BIND,
    BASE,
    KERBEROS,
    SASL,
    SUBTREE,
    Connection,
    Server,
    Tls,
)
from ldap3.core.exceptions import LDAPException

if TYPE_CHECKING:
    from conftest import SambaServer, SlapdServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "servers"))
from ldifrecords import attributes, read_ldif

RECIPIENTS = "(|(objectClass=user)(objectClass=contact)(objectClass=group))"
# What the seed keeps byte for byte (homeMDB is moved to this forest's Configuration partition).
# What Samba fills in when the source has none (a group's type, an account name, the GUID).
SERVER_DEFAULTS = {"groupType", "sAMAccountName", "objectGUID"}
COMPARED = [
    "objectClass",
    "cn",
    "sAMAccountName",
    "userPrincipalName",
    "mail",
    "mailNickname",
    "proxyAddresses",
    "targetAddress",
    "displayName",
    "givenName",
    "sn",
    "msExchRecipientTypeDetails",
    "msExchHideFromAddressLists",
    "groupType",
    "msExchMailboxGuid",
    "msRTCSIP-PrimaryUserAddress",
    "mS-DS-ConsistencyGuid",
    "objectGUID",
    "userCertificate",
    "department",
    "telephoneNumber",
]


def tls(ca_file: str) -> Tls:
    return Tls(ca_certs_file=ca_file, validate=ssl.CERT_REQUIRED)


def paged(conn: Connection, base: str, flt: str, attrs: list[str], size: int = 1000) -> list[dict]:
    entries = conn.extend.standard.paged_search(base, flt, SUBTREE, attributes=attrs, paged_size=size, generator=False)
    return [e for e in entries if e["type"] == "searchResEntry"]


def samba_admin(samba: SambaServer, *, port: int | None = None) -> Connection:
    server = Server(samba.hostname, port=port or samba.ldaps_port, use_ssl=True, tls=tls(samba.ca_file))
    return Connection(server, samba.admin_upn, samba.password, auto_bind=AUTO_BIND_NO_TLS, receive_timeout=30)


# --- Samba ---------------------------------------------------------------------------------------


def test_samba_ldaps_bind_sees_every_seeded_object(samba: SambaServer, sample_seed: bool) -> None:
    conn = samba_admin(samba)
    found = paged(conn, samba.seed_base, RECIPIENTS, ["objectClass"])
    assert len(found) == samba.seeded
    users = [e for e in found if "user" in [c.lower() for c in e["attributes"]["objectClass"]]]
    source_users = [
        r for r in read_ldif(samba.seed_ldif) if b"user" in [v.lower() for v in attributes(r)["objectclass"]]
    ]
    skipped = {s["dn"] for s in samba.report()["skipped"]}  # type: ignore[index]
    assert len(users) == len([r for r in source_users if r[0][1].decode() not in skipped])
    assert len(users) > (300 if sample_seed else 0)
    # Samba's own objects are outside the seed base
    conn.search(samba.admin_dn, "(objectClass=user)", BASE, attributes=["isCriticalSystemObject"])
    assert conn.entries[0].isCriticalSystemObject.value is True


def test_samba_seeded_values_are_the_source_values(samba: SambaServer, sample_seed: bool) -> None:
    """Every attribute of every seeded object, byte for byte, except what the seed report lists."""
    report = samba.report()
    changed = {c["dn"] for c in report["changed"]}  # type: ignore[index]
    dn_map: dict[str, str] = report["dn_map"]  # type: ignore[assignment]
    conn = samba_admin(samba)
    live = {e["dn"].lower(): e["raw_attributes"] for e in paged(conn, samba.seed_base, RECIPIENTS, COMPARED)}
    compared = 0
    for record in read_ldif(samba.seed_ldif):
        source_dn = record[0][1].decode()
        if source_dn not in dn_map or source_dn in changed:
            continue
        got = live[dn_map[source_dn].lower()]
        want = attributes(record)
        for name in COMPARED:
            if name in SERVER_DEFAULTS and name.lower() not in want:
                continue  # the source has none: the server made one up
            assert sorted(got.get(name, [])) == sorted(want.get(name.lower(), [])), (source_dn, name)
        compared += 1
    assert compared == samba.seeded - len(changed)
    if not sample_seed:
        return
    # the sample's planted invisible and non-ASCII characters survived
    upns = {v for e in live.values() for v in e.get("userPrincipalName", [])}
    assert "omar.haddad\u200b@contoso.com".encode() in upns
    proxies = {v for e in live.values() for v in e.get("proxyAddresses", [])}
    assert "smtp:jörg.lang@contoso.com".encode() in proxies
    assert "smtp:lea.roth\u00a0@fabrikam.com".encode() in proxies


def test_samba_export_holds_the_seeded_objects(samba: SambaServer) -> None:
    exported = read_ldif(samba.export_ldif)
    assert len(exported) == samba.seeded
    dns = {r[0][1].decode().lower() for r in exported}
    assert dns == {d.lower() for d in samba.report()["dn_map"].values()}  # type: ignore[union-attr]
    guids = [v for r in exported for v in attributes(r).get("objectguid", [])]
    assert len(guids) == samba.seeded and all(len(g) == 16 for g in guids)


def test_samba_starttls_and_plain_simple_bind(samba: SambaServer) -> None:
    server = Server(samba.hostname, port=samba.ldap_port, tls=tls(samba.ca_file))
    conn = Connection(server, samba.admin_upn, samba.password, auto_bind=AUTO_BIND_TLS_BEFORE_BIND)
    assert conn.tls_started
    conn.search(samba.seed_base, "(objectClass=user)", SUBTREE, attributes=["cn"], size_limit=5)
    assert conn.entries, "the seeded users are readable over StartTLS"
    # like a hardened AD: no simple bind without TLS
    plain = Connection(server, samba.admin_upn, samba.password)
    assert plain.bind() is False
    assert plain.result["result"] == 8  # strongerAuthRequired


@pytest.mark.sample_seed
def test_samba_global_catalog_has_the_exchange_attributes(samba: SambaServer) -> None:
    conn = samba_admin(samba, port=samba.gcs_port)
    conn.search("", "(msExchRecipientTypeDetails=2147483648)", SUBTREE, attributes=["targetAddress"], paged_size=1000)
    assert len(conn.entries) > 100
    assert all(str(e.targetAddress.value).lower().startswith("smtp:") for e in conn.entries)


def test_samba_kerberos_bind(samba: SambaServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in samba.env.items():
        monkeypatch.setenv(name, value)
    # ldap3 negotiates no SASL security layer: Samba (like AD) wants TLS around such a bind
    server = Server(samba.hostname, port=samba.ldap_port, tls=tls(samba.ca_file))
    conn = Connection(server, authentication=SASL, sasl_mechanism=KERBEROS, auto_bind=AUTO_BIND_TLS_BEFORE_BIND)
    conn.search(samba.admin_dn, "(objectClass=user)", BASE, attributes=["sAMAccountName"])
    assert conn.entries[0].sAMAccountName.value == "Administrator"
    ldaps = Server(samba.hostname, port=samba.ldaps_port, use_ssl=True, tls=tls(samba.ca_file))
    assert Connection(ldaps, authentication=SASL, sasl_mechanism=KERBEROS, auto_bind=AUTO_BIND_NO_TLS).bound
    # OpenLDAP's client signs and seals, so GSSAPI works on plain ldap://localhost too
    env = {**os.environ, **samba.env, "LDAPSASL_NOCANON": "on"}
    out = subprocess.run(
        ["ldapsearch", "-LLL", "-Y", "GSSAPI", "-H", samba.ldap_url, "-b", samba.admin_dn, "-s", "base", "cn"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "cn: Administrator" in out.stdout
    tickets = subprocess.run(["klist"], env=env, capture_output=True, text=True, check=True).stdout
    assert f"ldap/localhost@{samba.realm}" in tickets


def test_samba_reset_undoes_writes(samba: SambaServer) -> None:
    dn = f"CN=Reset Probe,{samba.seed_base}"
    conn = samba_admin(samba)
    assert conn.add(dn, ["top", "person", "organizationalPerson", "user"], {"userAccountControl": "514"}), conn.result
    samba.reset()
    after = samba_admin(samba)
    after.search(samba.seed_base, "(cn=Reset Probe)", SUBTREE)
    assert after.entries == []
    assert len(paged(after, samba.seed_base, RECIPIENTS, ["1.1"])) == samba.seeded


# --- slapd ---------------------------------------------------------------------------------------


def slapd_svc(slapd: SlapdServer) -> Connection:
    server = Server(slapd.hostname, port=slapd.ldaps_port, use_ssl=True, tls=tls(slapd.ca_file))
    return Connection(server, slapd.svc_dn, slapd.svc_password, auto_bind=AUTO_BIND_NO_TLS, receive_timeout=120)


def test_slapd_unpaged_search_stops_at_the_size_limit(slapd: SlapdServer) -> None:
    conn = slapd_svc(slapd)
    conn.search(slapd.base_dn, RECIPIENTS, SUBTREE, attributes=["1.1"])
    assert conn.result["result"] == 4, conn.result  # sizeLimitExceeded
    assert len(conn.response) == slapd.size_limit
    # a page may not be larger than the limit either
    with pytest.raises(LDAPException):
        conn.raise_exceptions = True
        conn.search(slapd.base_dn, RECIPIENTS, SUBTREE, attributes=["1.1"], paged_size=slapd.size_limit + 1)


def test_slapd_paged_search_returns_every_object(slapd: SlapdServer) -> None:
    conn = slapd_svc(slapd)
    cookie: bytes | None = None
    total = pages = 0
    while True:
        conn.search(slapd.base_dn, RECIPIENTS, SUBTREE, attributes=["1.1"], paged_size=1000, paged_cookie=cookie)
        assert conn.result["result"] == 0, conn.result
        n = sum(1 for r in conn.response if r["type"] == "searchResEntry")
        assert n <= slapd.size_limit
        total += n
        pages += 1
        cookie = conn.result["controls"]["1.2.840.113556.1.4.319"]["value"]["cookie"]
        if not cookie:
            break
    assert total == slapd.objects
    assert pages >= slapd.objects // 1000


def test_slapd_entries_are_the_generated_ones(slapd: SlapdServer) -> None:
    """StartTLS as the rootdn; the planted objects hold the generator's values byte for byte."""
    server = Server(slapd.hostname, port=slapd.ldap_port, tls=tls(slapd.ca_file))
    conn = Connection(server, slapd.admin_dn, slapd.admin_password, auto_bind=AUTO_BIND_TLS_BEFORE_BIND)
    with open(slapd.planted_json, encoding="utf-8") as f:
        planted = json.load(f)
    wanted = {p["dn"] for p in planted["planted_objects"][:40]}
    checked = 0
    for record in read_ldif(slapd.source_ldif, limit=5000):
        dn = record[0][1].decode()
        if dn not in wanted:
            continue
        want = attributes(record)
        names = [
            n for n in ("userPrincipalName", "proxyAddresses", "mail", "displayName", "objectGUID") if n.lower() in want
        ]
        assert conn.search(dn, "(objectClass=*)", BASE, attributes=names), (dn, conn.result)
        got = conn.response[0]["raw_attributes"]
        for name in names:
            assert sorted(got[name]) == sorted(want[name.lower()]), (dn, name)
        checked += 1
    assert checked >= 10
