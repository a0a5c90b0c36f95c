#!/usr/bin/env python3
"""Active Directory and Exchange schema facts for the integration-test directory servers.

One table, two outputs:

    adschema.py samba-attributes SCHEMA_DN   # LDIF: the Exchange/Lync attributes Samba's AD schema lacks
    adschema.py samba-classes SCHEMA_DN      # LDIF: let user, contact and group carry them (mailRecipient)
    adschema.py openldap                     # an OpenLDAP schema with AD's attribute and class names and OIDs

Samba applies the two LDIF files in two transactions (a class can only name an attribute once the
attribute is committed). The OpenLDAP schema stands alone: it replaces core.schema, cosine.schema
and inetorgperson.schema, so every attribute has AD's OID and AD's syntax (``mail`` and
``telephoneNumber`` are Unicode strings, ``userCertificate`` is an octet string, ``person`` needs
only ``cn``), and AD-shaped LDIF loads as it is.

The OIDs, syntaxes and range limits of the base AD attributes are those of Microsoft's published
AD schema (Windows Server 2016), which Samba ships in /usr/share/samba/setup/ad-schema/. The
Exchange and Lync attributes carry the OIDs Microsoft assigned to them (ms-Exch-*, msRTCSIP-*).
Standard library only: runs with any Python 3.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Attr:
    name: str  # lDAPDisplayName
    oid: str  # attributeID
    syntax: str  # AD attributeSyntax (2.5.5.x)
    single: bool = True
    lower: int | None = None  # rangeLower
    upper: int | None = None  # rangeUpper
    cn: str = ""  # schema object name; only needed for attributes added to Samba
    samba: bool = False  # missing from Samba's AD schema: added by the samba-* outputs


def _exch(name: str, cn: str, oid: str, syntax: str, **kw: object) -> Attr:
    return Attr(name, oid, syntax, cn=cn, samba=True, **kw)  # type: ignore[arg-type]


EXCHANGE = "1.2.840.113556.1.4.7000.102."

# Attributes Exchange (and Lync/Skype) add to AD, with Microsoft's OIDs. Samba lacks them.
EXTENSION: tuple[Attr, ...] = (
    _exch("mailNickname", "ms-Exch-Mail-Nickname", "1.2.840.113556.1.2.447", "2.5.5.12", lower=1, upper=64),
    _exch("targetAddress", "ms-Exch-Target-Address", "1.2.840.113556.1.2.352", "2.5.5.12", lower=1, upper=1123),
    _exch("homeMDB", "ms-Exch-Home-MDB", "1.2.840.113556.1.2.44", "2.5.5.1"),
    _exch("msExchRecipientDisplayType", "ms-Exch-Recipient-Display-Type", EXCHANGE + "50730", "2.5.5.9"),
    _exch("msExchRecipientTypeDetails", "ms-Exch-Recipient-Type-Details", EXCHANGE + "50855", "2.5.5.16"),
    _exch("msExchRemoteRecipientType", "ms-Exch-Remote-Recipient-Type", EXCHANGE + "51611", "2.5.5.16"),
    _exch("msExchHideFromAddressLists", "ms-Exch-Hide-From-Address-Lists", EXCHANGE + "73", "2.5.5.8"),
    _exch("msExchMailboxGuid", "ms-Exch-Mailbox-Guid", EXCHANGE + "11058", "2.5.5.10", lower=16, upper=16),
    _exch("msExchSafeSendersHash", "ms-Exch-Safe-Senders-Hash", EXCHANGE + "50765", "2.5.5.10"),
    _exch("msExchSafeRecipientsHash", "ms-Exch-Safe-Recipients-Hash", EXCHANGE + "50766", "2.5.5.10"),
    _exch("msExchBlockedSendersHash", "ms-Exch-Blocked-Senders-Hash", EXCHANGE + "50976", "2.5.5.10"),
    _exch("msExchUMSpokenName", "ms-Exch-UM-Spoken-Name", EXCHANGE + "50336", "2.5.5.10"),
    # extensionAttribute1-10: 1.2.840.113556.1.2.423-432; 11-15: 1.2.840.113556.1.2.599-603
    *(
        _exch(
            f"extensionAttribute{i}",
            f"ms-Exch-Extension-Attribute-{i}",
            f"1.2.840.113556.1.2.{422 + i if i <= 10 else 588 + i}",
            "2.5.5.12",
            lower=1,
            upper=1024 if i <= 10 else 2048,
        )
        for i in range(1, 16)
    ),
    _exch("msRTCSIP-PrimaryUserAddress", "msRTCSIP-PrimaryUserAddress", "1.2.840.113556.1.6.24.1.1", "2.5.5.12"),
)

# Base AD attributes (Samba has them); OpenLDAP gets them from this table.
BASE: tuple[Attr, ...] = (
    Attr("cn", "2.5.4.3", "2.5.5.12", lower=1, upper=64),
    Attr("name", "1.2.840.113556.1.4.1", "2.5.5.12", lower=1, upper=255),
    Attr("distinguishedName", "2.5.4.49", "2.5.5.1"),
    Attr("dc", "0.9.2342.19200300.100.1.25", "2.5.5.12", lower=1, upper=255),
    Attr("ou", "2.5.4.11", "2.5.5.12", single=False, lower=1, upper=64),
    Attr("o", "2.5.4.10", "2.5.5.12", single=False, lower=1, upper=64),
    Attr("description", "2.5.4.13", "2.5.5.12", single=False, lower=0, upper=1024),
    Attr("objectGUID", "1.2.840.113556.1.4.2", "2.5.5.10", lower=16, upper=16),
    Attr("objectSid", "1.2.840.113556.1.4.146", "2.5.5.17", lower=0, upper=28),
    Attr("objectCategory", "1.2.840.113556.1.4.782", "2.5.5.1"),
    Attr("instanceType", "1.2.840.113556.1.2.1", "2.5.5.9"),
    Attr("whenCreated", "1.2.840.113556.1.2.2", "2.5.5.11"),
    Attr("whenChanged", "1.2.840.113556.1.2.3", "2.5.5.11"),
    Attr("uSNCreated", "1.2.840.113556.1.2.19", "2.5.5.16"),
    Attr("uSNChanged", "1.2.840.113556.1.2.120", "2.5.5.16"),
    Attr("isCriticalSystemObject", "1.2.840.113556.1.4.868", "2.5.5.8"),
    Attr("sAMAccountName", "1.2.840.113556.1.4.221", "2.5.5.12", lower=0, upper=256),
    Attr("sAMAccountType", "1.2.840.113556.1.4.302", "2.5.5.9"),
    Attr("userPrincipalName", "1.2.840.113556.1.4.656", "2.5.5.12", upper=1024),
    Attr("userAccountControl", "1.2.840.113556.1.4.8", "2.5.5.9"),
    Attr("accountExpires", "1.2.840.113556.1.4.159", "2.5.5.16"),
    Attr("pwdLastSet", "1.2.840.113556.1.4.96", "2.5.5.16"),
    Attr("primaryGroupID", "1.2.840.113556.1.4.98", "2.5.5.9"),
    Attr("servicePrincipalName", "1.2.840.113556.1.4.771", "2.5.5.12", single=False),
    Attr("dNSHostName", "1.2.840.113556.1.4.619", "2.5.5.12", lower=0, upper=2048),
    Attr("operatingSystem", "1.2.840.113556.1.4.363", "2.5.5.12"),
    Attr("operatingSystemVersion", "1.2.840.113556.1.4.364", "2.5.5.12"),
    Attr("groupType", "1.2.840.113556.1.4.750", "2.5.5.9"),
    Attr("member", "2.5.4.31", "2.5.5.1", single=False),
    Attr("memberOf", "1.2.840.113556.1.2.102", "2.5.5.1", single=False),
    Attr("manager", "0.9.2342.19200300.100.1.10", "2.5.5.1"),
    Attr("mail", "0.9.2342.19200300.100.1.3", "2.5.5.12", lower=0, upper=256),
    Attr("proxyAddresses", "1.2.840.113556.1.2.210", "2.5.5.12", single=False, lower=1, upper=1123),
    Attr("showInAddressBook", "1.2.840.113556.1.4.644", "2.5.5.1", single=False),
    Attr("legacyExchangeDN", "1.2.840.113556.1.4.655", "2.5.5.4"),
    Attr("mS-DS-ConsistencyGuid", "1.2.840.113556.1.4.1360", "2.5.5.10"),
    Attr("displayName", "1.2.840.113556.1.2.13", "2.5.5.12", lower=0, upper=256),
    Attr("givenName", "2.5.4.42", "2.5.5.12", lower=1, upper=64),
    Attr("sn", "2.5.4.4", "2.5.5.12", lower=1, upper=64),
    Attr("initials", "2.5.4.43", "2.5.5.12", lower=1, upper=6),
    Attr("personalTitle", "1.2.840.113556.1.2.615", "2.5.5.12", lower=1, upper=64),
    Attr("title", "2.5.4.12", "2.5.5.12", lower=1, upper=128),
    Attr("department", "1.2.840.113556.1.2.141", "2.5.5.12", lower=1, upper=64),
    Attr("division", "1.2.840.113556.1.4.261", "2.5.5.12", lower=0, upper=256),
    Attr("company", "1.2.840.113556.1.2.146", "2.5.5.12", lower=1, upper=64),
    Attr("employeeID", "1.2.840.113556.1.4.35", "2.5.5.12", lower=0, upper=16),
    Attr("employeeNumber", "1.2.840.113556.1.2.610", "2.5.5.12", lower=1, upper=512),
    Attr("employeeType", "1.2.840.113556.1.2.613", "2.5.5.12", lower=1, upper=256),
    Attr("physicalDeliveryOfficeName", "2.5.4.19", "2.5.5.12", lower=1, upper=128),
    Attr("streetAddress", "1.2.840.113556.1.2.256", "2.5.5.12", lower=1, upper=1024),
    Attr("street", "2.5.4.9", "2.5.5.12", lower=1, upper=1024),
    Attr("l", "2.5.4.7", "2.5.5.12", lower=1, upper=128),
    Attr("st", "2.5.4.8", "2.5.5.12", lower=1, upper=128),
    Attr("postalCode", "2.5.4.17", "2.5.5.12", lower=1, upper=40),
    Attr("c", "2.5.4.6", "2.5.5.12", lower=1, upper=3),
    Attr("co", "1.2.840.113556.1.2.131", "2.5.5.12", lower=1, upper=128),
    Attr("countryCode", "1.2.840.113556.1.4.25", "2.5.5.9", lower=0, upper=65535),
    Attr("codePage", "1.2.840.113556.1.4.16", "2.5.5.9", lower=0, upper=65535),
    Attr("telephoneNumber", "2.5.4.20", "2.5.5.12", lower=1, upper=64),
    Attr("otherTelephone", "1.2.840.113556.1.2.18", "2.5.5.12", single=False, lower=1, upper=64),
    Attr("homePhone", "0.9.2342.19200300.100.1.20", "2.5.5.12", lower=1, upper=64),
    Attr("mobile", "0.9.2342.19200300.100.1.41", "2.5.5.12", lower=1, upper=64),
    Attr("ipPhone", "1.2.840.113556.1.4.721", "2.5.5.12", upper=64),
    Attr("facsimileTelephoneNumber", "2.5.4.23", "2.5.5.12", lower=1, upper=64),
    Attr("info", "1.2.840.113556.1.2.81", "2.5.5.12", lower=1, upper=1024),
    Attr("wWWHomePage", "1.2.840.113556.1.2.464", "2.5.5.12", lower=1, upper=2048),
    Attr("uid", "0.9.2342.19200300.100.1.1", "2.5.5.12", single=False),
    Attr("userCertificate", "2.5.4.36", "2.5.5.10", single=False, upper=32768),
    Attr("userSMIMECertificate", "2.16.840.1.113730.3.140", "2.5.5.10", single=False, upper=32768),
    Attr("thumbnailPhoto", "2.16.840.1.113730.3.1.35", "2.5.5.10", lower=0, upper=102400),
    Attr("jpegPhoto", "0.9.2342.19200300.100.1.60", "2.5.5.10", single=False),
)

ALL = BASE + EXTENSION

# AD object classes (governsID) for OpenLDAP. person and organizationalPerson are abstract in AD;
# OpenLDAP needs one structural chain per entry, so here they are structural like in X.500.
# (name, oid, superior, must)
CLASSES: tuple[tuple[str, str, str, str], ...] = (
    ("person", "2.5.6.6", "top", "cn"),
    ("organizationalPerson", "2.5.6.7", "person", ""),
    ("user", "1.2.840.113556.1.5.9", "organizationalPerson", ""),
    ("computer", "1.2.840.113556.1.3.30", "user", ""),
    ("inetOrgPerson", "2.16.840.1.113730.3.2.2", "user", ""),
    ("contact", "1.2.840.113556.1.5.15", "organizationalPerson", ""),
    ("group", "1.2.840.113556.1.5.8", "top", "cn"),
    ("organizationalUnit", "2.5.6.5", "top", "ou"),
    ("container", "1.2.840.113556.1.3.23", "top", "cn"),
    ("domainDNS", "1.2.840.113556.1.5.67", "top", "dc"),
)
# slapd defines these itself (for cn=config and referrals); the schema reuses its definitions.
# (AD's `name` has its own OID, 1.2.840.113556.1.4.1; slapd's is X.500's 2.5.4.41.)
OPENLDAP_BUILTIN = frozenset({"cn", "name", "distinguishedName", "description", "uid"})

# Classes that may carry every attribute of the table (AD spreads them over user, contact, group and
# the auxiliary classes mailRecipient, securityPrincipal ...; a test server needs no such detail).
RECIPIENT_CLASSES = {"person", "group"}

# AD attributeSyntax -> (oMSyntax, OpenLDAP SYNTAX, matching rules)
_STRING = ("1.3.6.1.4.1.1466.115.121.1.15", "EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch")
_INTEGER = ("1.3.6.1.4.1.1466.115.121.1.27", "EQUALITY integerMatch ORDERING integerOrderingMatch")
_OCTETS = ("1.3.6.1.4.1.1466.115.121.1.40", "EQUALITY octetStringMatch")
_TIME_RULES = "EQUALITY generalizedTimeMatch ORDERING generalizedTimeOrderingMatch"
SYNTAXES = {
    "2.5.5.1": (127, "1.3.6.1.4.1.1466.115.121.1.12", "EQUALITY distinguishedNameMatch"),
    "2.5.5.4": (20, *_STRING),
    "2.5.5.8": (1, "1.3.6.1.4.1.1466.115.121.1.7", "EQUALITY booleanMatch"),
    "2.5.5.9": (2, *_INTEGER),
    "2.5.5.10": (4, *_OCTETS),
    "2.5.5.11": (24, "1.3.6.1.4.1.1466.115.121.1.24", _TIME_RULES),
    "2.5.5.12": (64, *_STRING),
    "2.5.5.16": (65, *_INTEGER),
    "2.5.5.17": (4, *_OCTETS),
}
# oMObjectClass of DN-syntax attributes (1.3.12.2.1011.28.0.714, BER-encoded, base64)
DN_OM_OBJECT_CLASS = "KwwCh3McAIVK"


def samba_attributes(schema_dn: str) -> str:
    out = []
    for a in EXTENSION:
        om = SYNTAXES[a.syntax][0]
        lines = [
            f"dn: CN={a.cn},{schema_dn}",
            "changetype: add",
            "objectClass: top",
            "objectClass: attributeSchema",
            f"cn: {a.cn}",
            f"lDAPDisplayName: {a.name}",
            f"adminDisplayName: {a.cn}",
            f"attributeID: {a.oid}",
            f"attributeSyntax: {a.syntax}",
            f"oMSyntax: {om}",
            f"isSingleValued: {'TRUE' if a.single else 'FALSE'}",
            # indexed (1) and in the global catalog, as Exchange's recipient attributes are
            "searchFlags: 1",
            "isMemberOfPartialAttributeSet: TRUE",
            "showInAdvancedViewOnly: TRUE",
        ]
        if om == 127:
            lines.append(f"oMObjectClass:: {DN_OM_OBJECT_CLASS}")
        if a.lower is not None:
            lines.append(f"rangeLower: {a.lower}")
        if a.upper is not None:
            lines.append(f"rangeUpper: {a.upper}")
        out.append("\n".join(lines))
    out.append(_schema_update_now())
    return "\n\n".join(out) + "\n"


def samba_classes(schema_dn: str) -> str:
    # mailRecipient is a system auxiliary class of user, contact and group: all three may then carry them.
    may = "\n".join(f"mayContain: {a.name}" for a in EXTENSION)
    return f"dn: CN=Mail-Recipient,{schema_dn}\nchangetype: modify\nadd: mayContain\n{may}\n\n{_schema_update_now()}\n"


def _schema_update_now() -> str:
    return "dn:\nchangetype: modify\nadd: schemaUpdateNow\nschemaUpdateNow: 1"


def openldap() -> str:
    out = [
        "# AD and Exchange look-alike schema for the syncprep test slapd. Generated by",
        "# tests/servers/adschema.py openldap; load it instead of core/cosine/inetorgperson.",
        "",
    ]
    for a in ALL:
        if a.name in OPENLDAP_BUILTIN:
            continue
        _, syntax, rules = SYNTAXES[a.syntax]
        single = " SINGLE-VALUE" if a.single else ""
        out.append(f"attributetype ( {a.oid} NAME '{a.name}'\n\t{rules}\n\tSYNTAX {syntax}{single} )")
    everything = " $ ".join(a.name for a in ALL if a.name != "cn")
    for name, oid, sup, must in CLASSES:
        parts = [f"objectclass ( {oid} NAME '{name}' SUP {sup} STRUCTURAL"]
        if must:
            parts.append(f"MUST {must}")
        if name in RECIPIENT_CLASSES:
            parts.append(f"MAY ( {everything} $ userPassword )")
        elif name in ("organizationalUnit", "container", "domainDNS"):
            parts.append("MAY ( name $ description $ distinguishedName $ objectGUID $ objectCategory $ instanceType )")
        out.append("\n\t".join(parts) + " )")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "samba-attributes":
        sys.stdout.write(samba_attributes(argv[2]))
    elif len(argv) == 3 and argv[1] == "samba-classes":
        sys.stdout.write(samba_classes(argv[2]))
    elif len(argv) == 2 and argv[1] == "openldap":
        sys.stdout.write(openldap())
    else:
        sys.stderr.write(__doc__ or "")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
