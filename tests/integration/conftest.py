"""Real directory servers for integration tests: a Samba AD DC and an AD-shaped OpenLDAP slapd.

Session fixtures ``samba`` and ``slapd`` start the servers with tests/servers/samba.sh and
slapd.sh (provisioning, seeding and loading them the first time, a minute or so; later sessions
reuse the saved data), and return frozen dataclasses with everything a test needs to connect.

- A server that is already running and healthy (from an earlier session or started by hand) is
  reused and left running. A server this session started is stopped at the end, unless
  SYNCPREP_KEEP_SERVERS=1.
- Tests that write to Samba call ``samba.reset()`` when done (2-3 s): it restores the seeded state.
- Needs root and the packages of tests/servers/install.sh. Without them the tests are skipped with
  the reason, or fail when SYNCPREP_REQUIRE_SERVERS=1 (scripts/test sets it when it runs as root).
- State: $SYNCPREP_SERVERS_DIR (default /tmp/syncprep-test-servers).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVERS = ROOT / "tests" / "servers"
STATE = Path(os.environ.get("SYNCPREP_SERVERS_DIR", "/tmp/syncprep-test-servers"))
KEEP = os.environ.get("SYNCPREP_KEEP_SERVERS", "") not in ("", "0")
REQUIRE = os.environ.get("SYNCPREP_REQUIRE_SERVERS", "") not in ("", "0")


class _Urls:
    """ldap:// and ldaps:// URLs of a server by the name in its certificate."""

    hostname: str
    ldap_port: int
    ldaps_port: int

    @property
    def ldap_url(self) -> str:
        return f"ldap://{self.hostname}:{self.ldap_port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://{self.hostname}:{self.ldaps_port}"


@dataclass(frozen=True)
class SambaServer(_Urls):
    """A Samba 4 Active Directory domain controller on 127.0.0.1, seeded with demo.ldif."""

    host: str  # 127.0.0.1; use `hostname` for Kerberos and certificate checks
    hostname: str  # localhost: in the certificate and an SPN (ldap/localhost)
    ldap_port: int  # 389: simple binds need StartTLS; GSSAPI needs signing or TLS
    ldaps_port: int  # 636
    gc_port: int  # 3268, global catalog
    gcs_port: int  # 3269, global catalog over TLS
    kdc_port: int  # 88
    realm: str  # EXAMPLE.TEST
    domain: str  # EXAMPLE (NetBIOS)
    base_dn: str  # DC=example,DC=test
    seed_base: str  # OU=Contoso,DC=example,DC=test: where demo.ldif's objects are
    admin_dn: str  # CN=Administrator,CN=Users,DC=example,DC=test
    admin_upn: str  # Administrator@example.test
    password: str  # Administrator's password
    ca_file: str  # PEM of the test CA that signed the server certificate
    env: Mapping[str, str]  # KRB5_CONFIG and KRB5CCNAME (a ticket for Administrator) and LDAPTLS_CACERT
    seed_ldif: str  # the source: src/syncprep/data/demo.ldif, or $SYNCPREP_SAMBA_SEED
    seed_report: str  # JSON: objects added, skipped and changed, and the DN map source -> server
    seeded: int  # objects added from seed_ldif
    export_ldif: str  # the seeded objects read back with ldapsearch -LLL (README's attributes)
    export_ldapsearch_ldif: str  # the same as plain ldapsearch writes it (comments, paging trailer)
    export_ldbsearch_ldif: str  # the same objects as Samba's ldbsearch writes them (objectGUID as text)
    state_dir: str

    def report(self) -> dict[str, object]:
        with open(self.seed_report, encoding="utf-8") as f:
            data: dict[str, object] = json.load(f)
        return data

    def reset(self) -> None:
        """Back to the pristine seeded directory (stop, copy the saved copy back, start)."""
        _run("samba.sh", "reset")


@dataclass(frozen=True)
class SlapdServer(_Urls):
    """An OpenLDAP slapd with AD attribute names, loaded with bench/generate.py objects."""

    host: str  # 127.0.0.1
    hostname: str  # localhost (in the certificate)
    ldap_port: int  # 3890, StartTLS available
    ldaps_port: int  # 6360
    base_dn: str  # DC=contoso,DC=com, the generator's own base
    admin_dn: str  # cn=admin,DC=contoso,DC=com: the rootdn, no limits
    admin_password: str
    svc_dn: str  # cn=svc,DC=contoso,DC=com: AD-like limits
    svc_password: str
    size_limit: int  # 1000: svc's unpaged searches stop there (sizeLimitExceeded); largest page size
    outsider_dn: str  # cn=outsider,DC=contoso,DC=com: signs in, may not read the data (insufficientAccess)
    nopaging_dn: str  # cn=nopaging,DC=contoso,DC=com: svc's limits, and paged results refused
    ca_file: str
    objects: int  # generated objects (users, computers, contacts, groups) = entries of source_ldif
    source_ldif: str  # the generated LDIF that was loaded (same DNs and values)
    planted_json: str  # what the generator planted: errors, duplicates, skipped objects
    state_dir: str

    def reset(self) -> None:
        """Reload the generated data from scratch (about 20 s for 100,000 objects)."""
        _run("slapd.sh", "reset")


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(SERVERS / script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "SYNCPREP_SERVERS_DIR": str(STATE)},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


def _unavailable() -> str | None:
    """Why the servers cannot run here, or None."""
    if os.geteuid() != 0:
        return "the test directory servers need root"
    check = subprocess.run([str(SERVERS / "install.sh"), "--check"], capture_output=True, text=True)
    if check.returncode != 0:
        return f"{check.stdout.strip()}: run tests/servers/install.sh as root"
    return None


def _start(script: str) -> bool:
    """Start a server (provisioning it if needed); True when this call started it."""
    reason = _unavailable()
    if reason:
        if REQUIRE:
            pytest.fail(f"SYNCPREP_REQUIRE_SERVERS is set but {reason}")
        pytest.skip(reason)
    was_running = subprocess.run([str(SERVERS / script), "status"], capture_output=True).returncode == 0
    _run(script, "up")
    return not was_running


@pytest.fixture(scope="session")
def samba() -> Iterator[SambaServer]:
    started = _start("samba.sh")
    state = STATE / "samba"
    report = json.loads((state / "seed-report.json").read_text(encoding="utf-8"))
    yield SambaServer(
        host="127.0.0.1",
        hostname="localhost",
        ldap_port=389,
        ldaps_port=636,
        gc_port=3268,
        gcs_port=3269,
        kdc_port=88,
        realm="EXAMPLE.TEST",
        domain="EXAMPLE",
        base_dn="DC=example,DC=test",
        seed_base=report["seed_base"],
        admin_dn="CN=Administrator,CN=Users,DC=example,DC=test",
        admin_upn="Administrator@example.test",
        password=os.environ.get("SAMBA_ADMIN_PASSWORD", "Syncprep-Test-1"),
        ca_file=str(STATE / "tls" / "ca.pem"),
        env=MappingProxyType(
            {
                "KRB5_CONFIG": str(state / "krb5.conf"),
                "KRB5CCNAME": f"FILE:{state / 'krb5cc'}",
                "LDAPTLS_CACERT": str(STATE / "tls" / "ca.pem"),
            }
        ),
        seed_ldif=report["source"],
        seed_report=str(state / "seed-report.json"),
        seeded=report["added"],
        export_ldif=str(state / "export.ldif"),
        export_ldapsearch_ldif=str(state / "export-ldapsearch.ldif"),
        export_ldbsearch_ldif=str(state / "export-ldbsearch.ldif"),
        state_dir=str(state),
    )
    if started and not KEEP:
        _run("samba.sh", "stop")


@pytest.fixture(scope="session")
def slapd() -> Iterator[SlapdServer]:
    started = _start("slapd.sh")
    state = STATE / "slapd"
    password = os.environ.get("SLAPD_PASSWORD", "syncprep-test")
    source = state / "source.ldif"
    planted = json.loads((state / "source.ldif.planted.json").read_text(encoding="utf-8"))
    yield SlapdServer(
        host="127.0.0.1",
        hostname="localhost",
        ldap_port=3890,
        ldaps_port=6360,
        base_dn="DC=contoso,DC=com",
        admin_dn="cn=admin,DC=contoso,DC=com",
        admin_password=password,
        svc_dn="cn=svc,DC=contoso,DC=com",
        svc_password=password,
        size_limit=1000,
        outsider_dn="cn=outsider,DC=contoso,DC=com",
        nopaging_dn="cn=nopaging,DC=contoso,DC=com",
        ca_file=str(STATE / "tls" / "ca.pem"),
        objects=int(planted["objects"]),
        source_ldif=str(source),
        planted_json=str(state / "source.ldif.planted.json"),
        state_dir=str(state),
    )
    if started and not KEEP:
        _run("slapd.sh", "stop")


# Samba is seeded with the bundled sample unless SYNCPREP_SAMBA_SEED names another LDIF file
# (tests/servers/samba.sh). Tests that look for the sample's own objects are marked sample_seed.
SAMPLE_SEED = not os.environ.get("SYNCPREP_SAMBA_SEED")


@pytest.fixture(scope="session")
def sample_seed() -> bool:
    """Whether Samba holds the bundled sample (rather than a SYNCPREP_SAMBA_SEED file)."""
    return SAMPLE_SEED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason="looks for objects of the bundled sample seed (SYNCPREP_SAMBA_SEED is set)")
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
        if not SAMPLE_SEED and item.get_closest_marker("sample_seed"):
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs the real test directory servers (tests/servers)")
    config.addinivalue_line("markers", "sample_seed: looks for objects of the bundled sample in Samba")
    # ldap3 2.9.1 checks certificate names with ssl.match_hostname, deprecated since Python 3.7
    config.addinivalue_line("filterwarnings", "ignore:ssl.match_hostname:DeprecationWarning")
