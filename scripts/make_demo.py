"""Build the bundled sample directory, src/syncprep/data/demo.ldif.

Contoso Ltd. (fictional) runs one forest with two domains, contoso.com and emea.contoso.com,
and bought Fabrikam, whose addresses it still carries. Most objects are clean; a planted few
show every error type and every exclusion of RULES.md, each with a name that says what it shows.
The output is deterministic: run it again and the file does not change.

    python scripts/make_demo.py            # rewrites src/syncprep/data/demo.ldif
"""

from __future__ import annotations

import hashlib
import random
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from syncprep.model import Entry  # noqa: E402
from syncprep.output.ldif import write_entries  # noqa: E402

TENANT = "contoso"
ROUTING = f"{TENANT}.mail.onmicrosoft.com"
ROOT_DN = "DC=contoso,DC=com"
EMEA_DN = "DC=emea,DC=contoso,DC=com"
X500_PREFIX = "X500:/o=ExchangeLabs/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn="
DB = (
    "CN=Mailbox Database 01,CN=Databases,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),"
    "CN=Administrative Groups,CN=Contoso,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=com"
)

FIRST = [
    "Adele",
    "Alex",
    "Allan",
    "Amara",
    "Ana",
    "Ben",
    "Bianca",
    "Carlos",
    "Chen",
    "Chloe",
    "Daniel",
    "Diego",
    "Elena",
    "Emma",
    "Fatima",
    "Felix",
    "Grace",
    "Hana",
    "Henrik",
    "Isabel",
    "Ivan",
    "Jamal",
    "Jana",
    "Jonas",
    "Julia",
    "Kenji",
    "Laura",
    "Leo",
    "Lina",
    "Lucas",
    "Maria",
    "Mateo",
    "Mei",
    "Mohamed",
    "Nadia",
    "Nina",
    "Noah",
    "Olga",
    "Omar",
    "Pablo",
    "Priya",
    "Rafael",
    "Rosa",
    "Sam",
    "Sara",
    "Sofia",
    "Tom",
    "Yuki",
    "Zara",
]
LAST = [
    "Andersen",
    "Baker",
    "Becker",
    "Costa",
    "Cruz",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Gomez",
    "Hansen",
    "Hughes",
    "Ito",
    "Jensen",
    "Khan",
    "Kim",
    "Kowalski",
    "Larsen",
    "Lopez",
    "Martin",
    "Meyer",
    "Moreau",
    "Nakamura",
    "Novak",
    "Okafor",
    "Olsen",
    "Patel",
    "Perez",
    "Rossi",
    "Santos",
    "Schmidt",
    "Silva",
    "Singh",
    "Suzuki",
    "Tanaka",
    "Weber",
    "Wong",
    "Young",
    "Zhang",
]
# People whose names are not ASCII: fine in names, transliterated in addresses (not errors).
INTERNATIONAL = [
    ("Jürgen", "Müller"),
    ("Zoë", "Çelik"),
    ("Søren", "Ødegård"),
    ("Łucja", "Wójcik"),
    ("Renée", "Faure"),
    ("José", "Núñez"),
    ("Ayşe", "Yılmaz"),
    ("Björn", "Åström"),
]
DEPARTMENTS = ["Sales", "Marketing", "Finance", "Engineering", "Support", "Legal", "HR", "Operations"]


def ascii_name(text: str) -> str:
    table = str.maketrans({"ß": "ss", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ı": "i"})
    return "".join(c for c in unicodedata.normalize("NFKD", text.translate(table)) if c.isascii() and c.isalnum())


class Builder:
    """Collects entries with unique sAMAccountNames and stable GUIDs."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.sams: set[str] = set()
        self.rng = random.Random(2026)

    def guid(self, seed: str) -> bytes:
        return hashlib.sha256(seed.encode()).digest()[:16]

    def sam(self, base: str) -> str:
        base = base[:20]
        candidate, n = base, 1
        while candidate.lower() in self.sams:
            suffix = str(n)
            candidate, n = base[: 20 - len(suffix)] + suffix, n + 1
        self.sams.add(candidate.lower())
        return candidate

    def add(self, dn: str, attrs: dict[str, list[str | bytes]]) -> None:
        clean = {k.lower(): tuple(v) for k, v in attrs.items() if v}
        self.entries.append(Entry(dn, clean))

    def user(
        self,
        given: str,
        sn: str,
        *,
        domain_dn: str = ROOT_DN,
        smtp_domain: str = "contoso.com",
        ou: str = "Users",
        mailbox: str = "remote",
        upn: str | None = None,
        extra: dict[str, list[str | bytes]] | None = None,
        proxies: list[str] | None = None,
        cn: str | None = None,
        sam: str | None = None,
        display: str | None = None,
        alias: str | None = None,
    ) -> str:
        cn = cn or f"{given} {sn}"
        alias = alias or f"{ascii_name(given)}.{ascii_name(sn)}".lower()
        mail = f"{alias}@{smtp_domain}"
        dn = f"CN={cn},OU={ou},{domain_dn}"
        attrs: dict[str, list[str | bytes]] = {
            "objectClass": ["top", "person", "organizationalPerson", "user"],
            "cn": [cn],
            "sAMAccountName": [sam if sam is not None else self.sam(alias.replace(".", "")[:20])],
            "userPrincipalName": [upn if upn is not None else mail],
            "givenName": [given],
            "sn": [sn],
            "displayName": [display if display is not None else f"{given} {sn}"],
            "department": [self.rng.choice(DEPARTMENTS)],
            "mail": [mail],
            "mailNickname": [alias],
            "objectGUID": [self.guid(dn)],
        }
        attrs["proxyAddresses"] = (
            proxies
            if proxies is not None
            else [
                f"SMTP:{mail}",
                f"smtp:{alias}@{ROUTING}",
                X500_PREFIX + hashlib.md5(dn.encode()).hexdigest() + "-" + alias,
            ]
        )
        if mailbox == "remote":
            attrs["targetAddress"] = [f"SMTP:{alias}@{ROUTING}"]
            attrs["msExchRecipientTypeDetails"] = ["2147483648"]
        elif mailbox == "onprem":
            attrs["homeMDB"] = [DB]
            attrs["msExchRecipientTypeDetails"] = ["1"]
        for k, v in (extra or {}).items():
            attrs[k] = v
        self.add(dn, attrs)
        return dn


def build() -> list[Entry]:
    b = Builder()
    rng = b.rng

    # --- ordinary, clean people --------------------------------------------------------------
    used: set[tuple[str, str]] = set()
    while len(used) < 250:
        used.add((rng.choice(FIRST), rng.choice(LAST)))
    people = sorted(used)
    for i, (given, sn) in enumerate(people):
        emea = i % 3 == 0
        b.user(
            given,
            sn,
            domain_dn=EMEA_DN if emea else ROOT_DN,
            mailbox="onprem" if i % 4 == 0 else "remote",
            ou="Staff",
            proxies=None
            if i % 5
            else [
                f"SMTP:{ascii_name(given).lower()}.{ascii_name(sn).lower()}@contoso.com",
                f"smtp:{ascii_name(given).lower()}.{ascii_name(sn).lower()}@fabrikam.com",
                f"smtp:{ascii_name(given).lower()}.{ascii_name(sn).lower()}@{ROUTING}",
                f"SIP:{ascii_name(given).lower()}.{ascii_name(sn).lower()}@contoso.com",
            ],
        )
    for given, sn in INTERNATIONAL:
        b.user(given, sn, ou="Staff", domain_dn=EMEA_DN)

    # --- groups and contacts -------------------------------------------------------------------
    for dept in DEPARTMENTS:
        alias = dept.lower()
        b.add(
            f"CN={dept} Team,OU=Groups,{ROOT_DN}",
            {
                "objectClass": ["top", "group"],
                "cn": [f"{dept} Team"],
                "sAMAccountName": [b.sam(f"{dept}Team")],
                "groupType": ["-2147483640"],
                "displayName": [f"{dept} Team"],
                "mail": [f"{alias}@contoso.com"],
                "mailNickname": [alias],
                "proxyAddresses": [f"SMTP:{alias}@contoso.com", f"smtp:{alias}@{ROUTING}"],
                "objectGUID": [b.guid(dept)],
            },
        )
        b.add(
            f"CN={dept} Readers,OU=Groups,{ROOT_DN}",
            {
                "objectClass": ["top", "group"],
                "cn": [f"{dept} Readers"],
                "sAMAccountName": [b.sam(f"{dept}Readers")],
                "groupType": ["-2147483646"],
                "displayName": [f"{dept} Readers"],
                "objectGUID": [b.guid(dept + "r")],
            },
        )
    partners = ["northwind-traders.com", "adventure-works.com", "wingtiptoys.com", "tailspintoys.com"]
    for i in range(24):
        given, sn = rng.choice(FIRST), rng.choice(LAST)
        domain = partners[i % len(partners)]
        address = f"{given.lower()}.{sn.lower()}{i}@{domain}"
        b.add(
            f"CN={given} {sn} ({domain.split('.')[0]}),OU=Contacts,{ROOT_DN}",
            {
                "objectClass": ["top", "person", "organizationalPerson", "contact"],
                "cn": [f"{given} {sn} ({domain.split('.')[0]})"],
                "displayName": [f"{given} {sn} ({domain})"],
                "mail": [address],
                "mailNickname": [f"{given}{sn}{i}"],
                "targetAddress": [f"SMTP:{address}"],
                "proxyAddresses": [f"SMTP:{address}"],
                "objectGUID": [b.guid(address)],
            },
        )

    planted(b)
    skipped(b)
    return b.entries


def planted(b: Builder) -> None:
    """Objects that each show a problem; the cn says which."""
    ou = "Needs Review"
    # character
    b.user("Anna", "Berg", ou=ou, upn="anna berg@contoso.com", cn="Anna Berg (UPN with a space)")
    b.user("Rita", "Dahl", ou=ou, upn="r&d.rita@contoso.com", cn="Rita Dahl (UPN with &)")
    b.user(
        "Jörg",
        "Lang",
        ou=ou,
        cn="Jorg Lang (non-ASCII proxy address)",
        proxies=["SMTP:jorg.lang@contoso.com", "smtp:jörg.lang@contoso.com", f"smtp:jorg.lang@{ROUTING}"],
    )
    b.user("Omar", "Haddad", ou=ou, cn="Omar Haddad (zero-width space in UPN)", upn="omar.haddad\u200b@contoso.com")
    b.user(
        "Lea",
        "Roth",
        ou=ou,
        cn="Lea Roth (no-break space in proxy)",
        proxies=["SMTP:lea.roth@contoso.com", "smtp:lea.roth\u00a0@fabrikam.com"],
    )
    b.user("Kai", "Vogel", ou=ou, cn="Kai Vogel (soft hyphen in display name)", display="Kai Vo\u00adgel")
    b.user("Mia", "Frank", ou=ou, cn="Mia Frank (& in alias)", extra={"mailNickname": ["mia&frank"]})
    b.user("Ola", "Berg", ou=ou, cn="Ola Berg (plus sign in sAMAccountName)", sam=b.sam("ola+berg"))
    # format, localpart, domainpart
    b.user("Paul", "Allen", ou=ou, cn="Paul Allen (two @ in mail)", extra={"mail": ["paul.allen@@contoso.com"]})
    b.user(
        "Ines",
        "Moss",
        ou=ou,
        cn="Ines Moss (proxy without type)",
        proxies=["SMTP:ines.moss@contoso.com", "ines.moss@fabrikam.com"],
    )
    b.user("Tim", "Ross", ou=ou, cn="Tim Ross (alias with dots)", extra={"mailNickname": [".tim.ross."]})
    b.user("John", "Dot", ou=ou, cn="John Dot (UPN starts with a dot)", upn=".john.dot@contoso.com")
    b.user("Eva", "Kern", ou=ou, cn="Eva Kern (mail local part dots)", extra={"mail": ["eva..kern@contoso.com"]})
    b.user(
        "Max",
        "Hyde",
        ou=ou,
        cn="Max Hyde (bad domain in proxy)",
        proxies=["SMTP:max.hyde@contoso.com", "smtp:max.hyde@-contoso-.com"],
    )
    # length
    long_local = "christopher.alexander.montgomery-fitzgerald.the-third.of-contoso"
    b.user(
        "Christopher",
        "Montgomery",
        ou=ou,
        cn="Christopher Montgomery (UPN too long)",
        upn=f"{long_local}.x@contoso.com",
    )
    b.user("Lara", "Long", ou=ou, cn="Lara Long (display name too long)", display="Lara Long " + "(on loan) " * 28)
    b.user(
        "Xavier",
        "Wide",
        ou=ou,
        cn="Xavier Wide (X500 too long)",
        proxies=["SMTP:xavier.wide@contoso.com", X500_PREFIX + "x" * 200],
    )
    # blank and whitespace
    b.add(
        f"CN=Project Falcon,OU=Groups,{ROOT_DN}",
        {
            "objectClass": ["top", "group"],
            "cn": ["Project Falcon"],
            "sAMAccountName": [b.sam("ProjectFalcon")],
            "groupType": ["8"],
            "mail": ["falcon@contoso.com"],
            "mailNickname": ["falcon"],
            "proxyAddresses": ["SMTP:falcon@contoso.com"],
            "objectGUID": [b.guid("falcon")],
        },
    )
    b.user("Nils", "Blank", ou=ou, cn="Nils Blank (display name only spaces)", display="   ")
    b.user(
        "Tara", "Space", ou=ou, cn="Tara Space (trailing space in mail)", extra={"mail": ["tara.space@contoso.com "]}
    )
    b.user("Ugo", "Pad", ou=ou, cn="Ugo Pad (leading space in display name)", display=" Ugo Pad")
    # topleveldomain (.local UPNs, as many old EMEA domains have) and unverified domains
    for given, sn in [("Lukas", "Bauer"), ("Marta", "Nowak"), ("Pieter", "Visser")]:
        b.user(
            given,
            sn,
            ou=ou,
            domain_dn=EMEA_DN,
            cn=f"{given} {sn} (.local UPN)",
            upn=f"{given.lower()}.{sn.lower()}@emea.contoso.local",
        )
    b.user(
        "Gwen",
        "Ward",
        ou=ou,
        cn="Gwen Ward (proxy in contoso.local)",
        proxies=["SMTP:gwen.ward@contoso.com", "smtp:gwen.ward@contoso.local"],
    )
    b.user("Owen", "Litt", ou=ou, cn="Owen Litt (UPN in unverified litware.com)", upn="owen.litt@litware.com")
    # primary
    b.user(
        "Dana",
        "Two",
        ou=ou,
        cn="Dana Two (two primary addresses)",
        proxies=["SMTP:dana.two@contoso.com", "SMTP:dana.two@fabrikam.com"],
    )
    b.user(
        "Nora",
        "None",
        ou=ou,
        cn="Nora None (no primary address)",
        proxies=["smtp:nora.none@contoso.com", "smtp:nora.none@fabrikam.com"],
    )
    # largeobject
    certs: list[str | bytes] = [hashlib.sha256(f"cert{i}".encode()).digest() * 2 for i in range(17)]
    b.user("Carl", "Certs", ou=ou, cn="Carl Certs (17 certificates)", extra={"userCertificate": certs})
    many = ["SMTP:many.aliases@contoso.com"] + [f"smtp:alias{i:03d}@fabrikam.com" for i in range(305)]
    b.user("Many", "Aliases", ou=ou, cn="Many Aliases (306 proxy addresses)", proxies=many)
    # reserved
    b.user(
        "Rhea",
        "Old",
        ou=ou,
        cn="Rhea Old (address in another tenant)",
        proxies=["SMTP:rhea.old@contoso.com", "smtp:rhea.old@fabrikam.onmicrosoft.com", f"smtp:rhea.old@{ROUTING}"],
    )
    b.user(
        "Ivo",
        "Legacy",
        ou=ou,
        cn="Ivo Legacy (microsoftonline.com address)",
        proxies=["SMTP:ivo.legacy@contoso.com", "smtp:ivo.legacy@contoso.microsoftonline.com"],
    )
    # duplicates: a user's UPN is a group's proxy address (ObjectTypeMismatch)
    b.user(
        "Sales",
        "Desk",
        ou=ou,
        cn="Sales Desk (UPN used by a group)",
        upn="sales.desk@contoso.com",
        extra={"mail": ["sales.desk.user@contoso.com"]},
        proxies=["SMTP:sales.desk.user@contoso.com"],
    )
    b.add(
        f"CN=Sales Desk Group,OU=Groups,{ROOT_DN}",
        {
            "objectClass": ["top", "group"],
            "cn": ["Sales Desk Group"],
            "sAMAccountName": [b.sam("SalesDeskGroup")],
            "groupType": ["8"],
            "displayName": ["Sales Desk"],
            "mail": ["sales.desk@contoso.com"],
            "mailNickname": ["salesdesk"],
            "proxyAddresses": ["SMTP:sales.desk@contoso.com"],
            "objectGUID": [b.guid("salesdeskgroup")],
        },
    )
    # a contact and a user with the same mail; a proxy address on two users
    b.user("Hugo", "Mayer", ou=ou, cn="Hugo Mayer (mail also on a contact)")
    b.add(
        f"CN=Hugo Mayer (old contact),OU=Contacts,{ROOT_DN}",
        {
            "objectClass": ["top", "person", "organizationalPerson", "contact"],
            "cn": ["Hugo Mayer (old contact)"],
            "displayName": ["Hugo Mayer"],
            "mail": ["hugo.mayer@contoso.com"],
            "mailNickname": ["hugomayer_old"],
            "targetAddress": ["SMTP:hugo.mayer@contoso.com"],
            "proxyAddresses": ["SMTP:hugo.mayer@contoso.com"],
            "objectGUID": [b.guid("hugo-contact")],
        },
    )
    b.user(
        "Ella",
        "Stone",
        ou=ou,
        cn="Ella Stone (proxy also on Ella Stone 2)",
        proxies=["SMTP:ella.stone@contoso.com", "smtp:estone@fabrikam.com"],
    )
    b.user(
        "Ella",
        "Stone",
        ou=ou,
        cn="Ella Stone 2 (proxy also on Ella Stone)",
        alias="ella.stone2",
        proxies=["SMTP:ella.stone2@contoso.com", "smtp:estone@fabrikam.com"],
    )
    # one object holding the same address twice
    b.user(
        "Ivy",
        "Twice",
        ou=ou,
        cn="Ivy Twice (same address twice)",
        proxies=["SMTP:ivy.twice@contoso.com", "smtp:Ivy.Twice@contoso.com"],
    )
    # alias, targetAddress, X500, SIP duplicates
    b.user("Ron", "Alias", ou=ou, cn="Ron Alias (alias also on Ron Alias 2)", extra={"mailNickname": ["ron"]})
    b.user(
        "Ron",
        "Alias",
        ou=ou,
        cn="Ron Alias 2 (alias also on Ron Alias)",
        alias="ron.alias2",
        extra={"mailNickname": ["ron"]},
    )
    b.user(
        "Tess",
        "Target",
        ou=ou,
        cn="Tess Target (targetAddress also on Tess Target 2)",
        extra={"targetAddress": ["SMTP:tess.target@contoso.mail.onmicrosoft.com"]},
    )
    b.user(
        "Tess",
        "Target",
        ou=ou,
        cn="Tess Target 2 (targetAddress also on Tess Target)",
        alias="tess.target2",
        extra={"targetAddress": ["SMTP:tess.target@contoso.mail.onmicrosoft.com"]},
    )
    shared_x500 = X500_PREFIX + "0f3c2a9e-migrated-mailbox"
    b.user(
        "Xena",
        "Moved",
        ou=ou,
        cn="Xena Moved (X500 also on Xena Moved 2)",
        proxies=["SMTP:xena.moved@contoso.com", shared_x500],
    )
    b.user(
        "Xena",
        "Moved",
        ou=ou,
        cn="Xena Moved 2 (X500 also on Xena Moved)",
        alias="xena.moved2",
        proxies=["SMTP:xena.moved2@contoso.com", shared_x500],
    )
    b.user(
        "Sid",
        "Phone",
        ou=ou,
        cn="Sid Phone (SIP also on Sid Phone 2)",
        extra={"msRTCSIP-PrimaryUserAddress": ["sip:sid.phone@contoso.com"]},
    )
    b.user(
        "Sid",
        "Phone",
        ou=ou,
        cn="Sid Phone 2 (SIP also on Sid Phone)",
        alias="sid.phone2",
        proxies=["SMTP:sid.phone2@contoso.com", "SIP:sid.phone@contoso.com"],
    )
    # sAMAccountName duplicate across the two domains, on users without a UPN
    for domain_dn, tag in ((ROOT_DN, "contoso"), (EMEA_DN, "emea")):
        dn = f"CN=Scanner Service ({tag}),OU=Service Accounts,{domain_dn}"
        b.add(
            dn,
            {
                "objectClass": ["top", "person", "organizationalPerson", "user"],
                "cn": [f"Scanner Service ({tag})"],
                "sAMAccountName": ["svc-scanner"],
                "displayName": [f"Scanner Service ({tag})"],
                "objectGUID": [b.guid(dn)],
            },
        )
    # anchor: a migrated user whose mS-DS-ConsistencyGuid is another user's objectGUID
    first = b.user("Ada", "Origin", ou=ou, cn="Ada Origin (anchor also on Ada Migrated)")
    b.user(
        "Ada",
        "Migrated",
        ou=ou,
        cn="Ada Migrated (anchor of Ada Origin)",
        domain_dn=EMEA_DN,
        alias="ada.migrated",
        extra={"mS-DS-ConsistencyGuid": [b.guid(first)]},
    )


def skipped(b: Builder) -> None:
    """Objects that Entra Connect never synchronises (RULES.md §1.1), and a computer."""
    sys_ou = f"CN=Users,{ROOT_DN}"
    b.add(
        f"CN=Administrator,{sys_ou}",
        {
            "objectClass": ["top", "person", "organizationalPerson", "user"],
            "cn": ["Administrator"],
            "sAMAccountName": ["Administrator"],
            "isCriticalSystemObject": ["TRUE"],
            "objectGUID": [b.guid("admin")],
        },
    )
    b.add(
        f"CN=krbtgt,{sys_ou}",
        {
            "objectClass": ["top", "person", "organizationalPerson", "user"],
            "cn": ["krbtgt"],
            "sAMAccountName": ["krbtgt"],
            "isCriticalSystemObject": ["TRUE"],
            "objectGUID": [b.guid("krbtgt")],
        },
    )
    b.add(
        f"CN=Domain Admins,{sys_ou}",
        {
            "objectClass": ["top", "group"],
            "cn": ["Domain Admins"],
            "sAMAccountName": ["Domain Admins"],
            "groupType": ["-2147483646"],
            "isCriticalSystemObject": ["TRUE"],
            "objectGUID": [b.guid("da")],
        },
    )
    b.add(
        f"CN=Pat Lee\\0ACNF:5b9c1f2e-8d4a-4c3b-9e1f-2a3b4c5d6e7f,OU=Staff,{ROOT_DN}",
        {
            "objectClass": ["top", "person", "organizationalPerson", "user"],
            "cn": ["Pat Lee\nCNF:5b9c1f2e-8d4a-4c3b-9e1f-2a3b4c5d6e7f"],
            "sAMAccountName": ["$DUPLICATE-1f4"],
            "userPrincipalName": ["pat.lee@contoso.com"],
            "mail": ["pat.lee@contoso.com"],
            "objectGUID": [b.guid("cnf")],
        },
    )
    b.add(
        f"CN=Legacy Directory Person,OU=Imported,{ROOT_DN}",
        {
            "objectClass": ["top", "person", "organizationalPerson", "user", "inetOrgPerson"],
            "cn": ["Legacy Directory Person"],
            "mail": ["legacy.person@contoso.com"],
            "objectGUID": [b.guid("nosam")],
        },
    )
    for sam in ("MSOL_0a1b2c3d4e5f", "AAD_9f8e7d6c5b4a", "SUPPORT_388945a0"):
        b.add(
            f"CN={sam},{sys_ou}",
            {
                "objectClass": ["top", "person", "organizationalPerson", "user"],
                "cn": [sam],
                "sAMAccountName": [sam],
                "objectGUID": [b.guid(sam)],
            },
        )
    b.add(
        f"CN=SystemMailbox{{1f05a927-3be2-4fb9-aa03-b59fe3b56f4c}},{sys_ou}",
        {
            "objectClass": ["top", "person", "organizationalPerson", "user"],
            "cn": ["SystemMailbox{1f05a927-3be2-4fb9-aa03-b59fe3b56f4c}"],
            "sAMAccountName": ["SM_4c6b7a2e0b1d4e8f9"],
            "mailNickname": ["SystemMailbox{1f05a927-3be2-4fb9-aa03-b59fe3b56f4c}"],
            "msExchRecipientTypeDetails": ["8388608"],
            "objectGUID": [b.guid("sysmbx")],
        },
    )
    b.add(
        f"CN=DiscoverySearchMailbox {{D919BA05-46A6-415f-80AD-7E09334BB852}},{sys_ou}",
        {
            "objectClass": ["top", "person", "organizationalPerson", "user"],
            "cn": ["DiscoverySearchMailbox {D919BA05-46A6-415f-80AD-7E09334BB852}"],
            "sAMAccountName": ["SM_2b3c4d5e6f7a8b9c0"],
            "mailNickname": ["DiscoverySearchMailbox{D919BA05-46A6-415f-80AD-7E09334BB852}"],
            "mail": ["DiscoverySearchMailbox{D919BA05-46A6-415f-80AD-7E09334BB852}@contoso.com"],
            "msExchRecipientTypeDetails": ["536870912"],
            "objectGUID": [b.guid("discovery")],
        },
    )
    b.add(
        f"CN=CAS_{{7c1e}},OU=Contacts,{ROOT_DN}",
        {
            "objectClass": ["top", "person", "organizationalPerson", "contact"],
            "cn": ["CAS_{7c1e}"],
            "mailNickname": ["CAS_{7c1e0a}"],
            "mail": ["cas@contoso.com"],
            "objectGUID": [b.guid("cas")],
        },
    )
    b.add(
        f"CN=Reception Desk Phone,OU=Contacts,{ROOT_DN}",
        {
            "objectClass": ["top", "person", "organizationalPerson", "contact"],
            "cn": ["Reception Desk Phone"],
            "displayName": ["Reception Desk Phone"],
            "telephoneNumber": ["+1 425 555 0100"],
            "objectGUID": [b.guid("phone")],
        },
    )
    b.add(
        f"CN=Wingtip Sync Contact,OU=Contacts,{ROOT_DN}",
        {
            "objectClass": ["top", "person", "organizationalPerson", "contact"],
            "cn": ["Wingtip Sync Contact"],
            "displayName": ["Wingtip Buyer (MSOL)"],
            "msExchHideFromAddressLists": ["TRUE"],
            "mail": ["buyer@wingtiptoys.com"],
            "objectGUID": [b.guid("msol-contact")],
        },
    )
    b.add(
        f"CN=MSOL_AD_Sync_RichCoexistence,{sys_ou}",
        {
            "objectClass": ["top", "group"],
            "cn": ["MSOL_AD_Sync_RichCoexistence"],
            "sAMAccountName": ["MSOL_AD_Sync_RichCoexistence"],
            "groupType": ["-2147483644"],
            "objectGUID": [b.guid("rich")],
        },
    )
    b.add(
        f"CN=Compliance Management,OU=Microsoft Exchange Security Groups,{ROOT_DN}",
        {
            "objectClass": ["top", "group"],
            "cn": ["Compliance Management"],
            "sAMAccountName": ["Compliance Management"],
            "groupType": ["-2147483640"],
            "msExchRecipientTypeDetails": ["1073741824"],
            "objectGUID": [b.guid("role")],
        },
    )
    b.add(
        f"CN=Old Newsletter,OU=Groups,{ROOT_DN}",
        {
            "objectClass": ["top", "group"],
            "cn": ["Old Newsletter"],
            "sAMAccountName": [b.sam("OldNewsletter")],
            "groupType": ["8"],
            "displayName": ["Old Newsletter"],
            "objectGUID": [b.guid("newsletter")],
        },
    )
    b.add(
        f"CN=LAPTOP-0042,OU=Computers,{ROOT_DN}",
        {
            "objectClass": ["top", "person", "organizationalPerson", "user", "computer"],
            "cn": ["LAPTOP-0042"],
            "sAMAccountName": ["LAPTOP-0042$"],
            "objectGUID": [b.guid("laptop")],
        },
    )
    # Skipped only by IdFix's over-broad name list (--exclusions idfix): "Guest" prefix.
    b.user("Guesthouse", "Bookings", ou="Shared", cn="Guesthouse Bookings")


def main() -> None:
    target = ROOT / "src" / "syncprep" / "data" / "demo.ldif"
    entries = build()
    with open(target, "w", encoding="utf-8", newline="\n") as out:
        out.write("# The bundled sample directory of syncprep: Contoso Ltd. (fictional), two domains.\n")
        out.write("# Generated by scripts/make_demo.py; objects under OU=Needs Review each show a problem.\n")
        count = write_entries(entries, out, fold=0)
    print(f"wrote {count} entries to {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
