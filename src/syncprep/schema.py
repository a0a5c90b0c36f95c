"""Attribute facts in one place: AD spellings, limits and character sets (RULES.md §2).

Rules read these tables; nothing else in the code base hard-codes a limit or a character set.
"""

from __future__ import annotations

from types import MappingProxyType

# AD's spelling of every attribute syncprep reads, keyed by the lower-case name that sources use.
CANONICAL = MappingProxyType(
    {
        name.lower(): name
        for name in (
            "dn",
            "objectClass",
            "cn",
            "userPrincipalName",
            "mail",
            "mailNickname",
            "proxyAddresses",
            "targetAddress",
            "sAMAccountName",
            "displayName",
            "givenName",
            "sn",
            "isCriticalSystemObject",
            "msExchRecipientTypeDetails",
            "msExchHideFromAddressLists",
            "groupType",
            "homeMDB",
            "msExchMailboxGuid",
            "msRTCSIP-PrimaryUserAddress",
            "mS-DS-ConsistencyGuid",
            "objectGUID",
            "objectSid",
            "userCertificate",
            "userSMIMECertificate",
            "thumbnailPhoto",
            "member",
            "distinguishedName",
        )
    }
)


def canonical(attr: str) -> str:
    """AD's spelling of a lower-case attribute name (unknown names are returned as given)."""
    return CANONICAL.get(attr, attr)


# Attributes whose values are bytes. Sources keep them as bytes in entries and as base64 text in
# frames, so equal bytes compare equal as text.
BINARY_ATTRIBUTES = frozenset(
    {
        "objectguid",
        "objectsid",
        "ms-ds-consistencyguid",
        "usercertificate",
        "usersmimecertificate",
        "thumbnailphoto",
        "jpegphoto",
        "msexchmailboxguid",
        "msexcharchiveguid",
        "sidhistory",
        "ntsecuritydescriptor",
        "msexchmailboxsecuritydescriptor",
        "logonhours",
        "cacertificate",
        "msexchsafesendershash",
        "msexchblockedsendershash",
        "msexchsaferecipientshash",
        "msexchumspokenname",
        "msds-keycredentiallink",
        "terminalserver",
        "mssfu30posixmember",
        "usercert",
        "x500uniqueidentifier",
        "audio",
        "photo",
        "usercertificate;binary",
    }
)

# Attributes read to decide an object's kind and scope, and to suggest fixes.
CONTEXT_ATTRIBUTES = (
    "cn",
    "samaccountname",
    "mailnickname",
    "iscriticalsystemobject",
    "msexchrecipienttypedetails",
    "msexchhidefromaddresslists",
    "grouptype",
    "displayname",
    "mail",
    "userprincipalname",
    "homemdb",
    "msexchmailboxguid",
    "givenname",
    "sn",
    "targetaddress",
)

ANCHOR_ATTRIBUTES = ("ms-ds-consistencyguid", "objectguid")

# Maximum lengths in characters (RULES.md §2). sAMAccountName's limit depends on the object kind.
MAX_LENGTH = MappingProxyType(
    {
        "userprincipalname": 113,
        "mail": 256,
        "mailnickname": 64,
        "proxyaddresses": 256,
        "targetaddress": 256,
        "displayname": 256,
        "givenname": 64,
        "sn": 64,
    }
)
SAM_MAX_LENGTH = MappingProxyType({"user": 20, "group": 256})
UPN_MAX_LOCAL = 64
UPN_MAX_DOMAIN = 48
SMTP_MAX_LOCAL = 64
SMTP_MAX_DOMAIN = 253
# RFC 5321: a path is at most 256 octets including its angle brackets.
SMTP_MAX_ADDRESS = 254

# Size limits behind the LargeObject / ExceededAllowedLength sync errors.
MAX_CERTIFICATES = 15
MAX_PROXY_ADDRESSES = 300
MAX_THUMBNAIL_BYTES = 100 * 1024
MAX_GROUP_MEMBERS = 250_000 - 1

# Character sets, written as regex character-class bodies so the vectorised rules use them as is.
UPN_LOCAL_CHARS = r"A-Za-z0-9'._!#^~\-"
# RFC 5322 atext: what a dot-atom local part of an SMTP address may hold.
ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~\-"
DOMAIN_CHARS = r"A-Za-z0-9.\-"
NICKNAME_CHARS = MappingProxyType(
    {
        # Microsoft 365: letters, digits and ! # $ % ' * + - / = ? ^ _ ` { | } ~ ('&' is refused).
        "m365": r"A-Za-z0-9!#$%'*+/=?^_`{|}~\-",
        # Legacy dedicated rules: letters, digits, '-' and '_'.
        "dedicated": r"A-Za-z0-9_\-",
    }
)
SAM_INVALID_CHARS = r"\"/\\\[\]:;|=,+*?<>"
# Proxy types and the characters each refuses (besides control characters).
X400_X500_TYPES = ("x400", "x.400", "x500", "x.500")
X500_INVALID_CHARS = r"\[\]\""
OTHER_PROXY_INVALID_CHARS = r"\s<>(),\[\]\""
TARGET_INVALID_CHARS = r"\s\\<>();,\[\]\""

# Control and invisible characters: errors in every attribute, because the cloud silently drops
# values that hold them. Ex) "bob\u200b@contoso.com" looks right and never receives mail.
INVISIBLE_CHARS = (
    r"\x00-\x1F\x7F-\x9F\u00A0\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180E\u2000-\u200F"
    r"\u2028-\u202F\u205F-\u206F\u3000\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF9-\uFFFB"
    r"\U000E0000-\U000E007F"
)

# msExchRecipientTypeDetails bits of system mailboxes that Entra Connect never syncs:
# public folder, system attendant, system, arbitration, mailbox plan, discovery mailboxes.
SYSTEM_MAILBOX_BITS = 0x21C07000
ROLE_GROUP_BIT = 0x40000000
SECURITY_GROUP_BIT = 0x80000000
# The values IdFix meant to skip (compared as numbers here, which IdFix never managed).
IDFIX_RECIPIENT_TYPES = (0x1000, 0x2000, 0x4000, 0x400000, 0x800000, 0x1000000, 0x20000000)
IDFIX_CN_PREFIXES = (
    "admini",
    "cas_{",
    "discoverysearchmailbox",
    "federatedemail",
    "guest",
    "httpconnector",
    "krbtgt",
    "iusr_",
    "iwam",
    "msol",
    "support_",
    "systemmailbox",
    "wwioadmini",
    "healthmailbox",
    "exchange online-applicationaccount",
)
