"""Every check syncprep runs: code, name, error type, attributes, profiles, and its documentation.

A rule is data. Per-value rules carry a vectorised check, an expression over the columns of a
value frame (see ``values.py``) that is true where the value is wrong:

    value   the raw value              addr    the address checked (trimmed, TYPE: prefix removed)
    local   addr before the last '@'   domain  addr after the last '@'
    ptype   proxy type, lower case     kind    user / contact / group
    attr    lower-case attribute name  external  a contact or mail user (addresses of others)

Object rules (counts, missing attributes, primary SMTP) and duplicate rules are run by the
engine; they are listed here so that ``syncprep rules`` documents them all and ``--select``
and ``--ignore`` reach them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import polars as pl

from ..domains import DNS_LABEL, tld_alternation
from ..errors import ConfigError
from ..model import ErrorType, Severity
from ..schema import (
    ATEXT,
    DOMAIN_CHARS,
    INVISIBLE_CHARS,
    MAX_LENGTH,
    NICKNAME_CHARS,
    OTHER_PROXY_INVALID_CHARS,
    SAM_INVALID_CHARS,
    SAM_MAX_LENGTH,
    SMTP_MAX_ADDRESS,
    SMTP_MAX_DOMAIN,
    SMTP_MAX_LOCAL,
    TARGET_INVALID_CHARS,
    UPN_LOCAL_CHARS,
    UPN_MAX_DOMAIN,
    UPN_MAX_LOCAL,
    X400_X500_TYPES,
    X500_INVALID_CHARS,
)
from .context import CheckContext

Check = Callable[[CheckContext], pl.Expr]
ALL_PROFILES = frozenset({"m365", "dedicated"})
DEDICATED = frozenset({"dedicated"})


@dataclass(frozen=True)
class Rule:
    """One check. ``scope`` says who runs it: "value" (the check below), "object" or "duplicate"."""

    code: str
    name: str
    error: ErrorType
    attributes: tuple[str, ...]
    summary: str
    why: str
    example: str
    fix: str
    check: Check | None = None
    scope: str = "value"
    profiles: frozenset[str] = ALL_PROFILES
    severity: Mapping[str, Severity] = field(
        default_factory=lambda: MappingProxyType({"m365": Severity.ERROR, "dedicated": Severity.ERROR})
    )
    opt_in: bool = False

    @property
    def lower_attributes(self) -> tuple[str, ...]:
        return tuple(a.lower() for a in self.attributes)

    def severity_in(self, profile: str) -> Severity:
        return self.severity.get(profile, Severity.ERROR)


def _warn(*, dedicated_error: bool = False) -> Mapping[str, Severity]:
    return MappingProxyType(
        {"m365": Severity.WARNING, "dedicated": Severity.ERROR if dedicated_error else Severity.WARNING}
    )


c = pl.col

ADDRESS_ATTRS = ("userPrincipalName", "mail", "mailNickname", "proxyAddresses", "targetAddress")
TEXT_ATTRS = (*ADDRESS_ATTRS, "sAMAccountName", "displayName", "givenName", "sn", "msRTCSIP-PrimaryUserAddress")
NAME_ATTRS = ("displayName", "givenName", "sn")


def _has(pattern: str, column: str = "value") -> pl.Expr:
    return c(column).str.contains(pattern).fill_null(False)


def _length_over(column: str, limit: int | pl.Expr) -> pl.Expr:
    return (c(column).str.len_chars() > limit).fill_null(False)


def _dots(column: str) -> pl.Expr:
    # Ex) ".bob@x.com", "bob.@x.com", "bob..smith@x.com"
    return _has(r"^\.|\.$|\.\.", column)


def _bad_domain_syntax(ctx: CheckContext) -> pl.Expr:
    valid = rf"(?i)^{DNS_LABEL}(?:\.{DNS_LABEL})*$"
    return (
        c("domain").is_not_null()
        & (c("domain") != "")
        & (~c("domain").str.contains(valid) | (c("domain").str.len_bytes() > SMTP_MAX_DOMAIN))
    )


def _non_routable(ctx: CheckContext) -> pl.Expr:
    # Ex) "contoso.local", "intranet", "contoso.com." (empty top label)
    return c("domain").is_not_null() & (c("domain") != "") & ~c("domain").str.contains(rf"(?i)\.{tld_alternation()}$")


def _unverified(ctx: CheckContext) -> pl.Expr:
    """A routable domain the tenant has not verified, on an object whose own address it is.

    Contacts and mail users (``external``) legitimately carry addresses of other organisations,
    and a targetAddress is where mail goes, not an address the tenant owns.
    Ex) a contact's mail "ann@partner.com" is fine; a mailbox's "smtp:ann@oldbrand.com" is not.
    """
    pattern = ctx.verified_suffix_pattern
    if pattern is None:
        return pl.lit(False)
    return (
        ~c("external")
        & (c("attr") != "targetaddress")
        & _non_routable(ctx).not_()
        & c("domain").is_not_null()
        & ~c("domain").str.contains(pattern)
    )


def _format_at(_: CheckContext) -> pl.Expr:
    # Exactly one '@', with something on both sides. Ex) "bob", "@x.com", "bob@", "a@b@x.com"
    return (c("addr").str.count_matches("@", literal=True) != 1) | (c("local") == "") | (c("domain") == "")


def _smtp_rules(prefix: str, attribute: str, applies: pl.Expr, label: str, *, owned: bool = True) -> list[Rule]:
    """The SMTP address checks of RULES.md §5, for one attribute (mail, SMTP proxies, targets)."""

    def on(check: Check) -> Check:
        return lambda ctx: applies & check(ctx)

    rules = [
        Rule(
            f"{prefix}101",
            f"{label}-invalid-character",
            ErrorType.CHARACTER,
            (attribute,),
            f"{label.capitalize()} holds a character an SMTP address cannot have.",
            "Exchange Online accepts only dot-atom local parts (letters, digits and "
            "! # $ % & ' * + - / = ? ^ _ ` { | } ~) and host names of letters, digits and '-'; "
            "quoted local parts, spaces, commas and brackets are refused.",
            "bob smith@contoso.com -> bobsmith@contoso.com",
            "unsafe: the suggestion removes the characters, which changes the address.",
            on(lambda ctx: _has(rf"[^{ATEXT}.]", "local") | _has(rf"[^{DOMAIN_CHARS}]", "domain")),
        ),
        Rule(
            f"{prefix}102",
            f"{label}-format",
            ErrorType.FORMAT,
            (attribute,),
            f"{label.capitalize()} is not of the form local@domain.",
            "An address needs exactly one '@' with a local part before it and a domain after it.",
            "bob@@contoso.com -> bob@contoso.com",
            "unsafe when the repair is unambiguous, else manual.",
            on(_format_at),
        ),
        Rule(
            f"{prefix}103",
            f"{label}-local-part-dots",
            ErrorType.LOCALPART,
            (attribute,),
            "The local part starts or ends with '.', or has '..'.",
            "Dot-atom local parts may not start or end with a dot or hold two dots in a row.",
            ".bob..smith.@contoso.com -> bob.smith@contoso.com",
            "unsafe: the repaired address is a different address.",
            on(lambda ctx: _dots("local")),
        ),
        Rule(
            f"{prefix}104",
            f"{label}-invalid-domain",
            ErrorType.DOMAINPART,
            (attribute,),
            "The domain is not a valid DNS name.",
            "Labels must be 1-63 letters, digits or '-', not starting or ending with '-'; "
            "IP literals such as [10.0.0.1] are refused.",
            "bob@-contoso-.com -> bob@contoso.com",
            "unsafe when the repair is unambiguous, else manual.",
            on(_bad_domain_syntax),
        ),
        Rule(
            f"{prefix}105",
            f"{label}-non-routable-domain",
            ErrorType.TOPLEVELDOMAIN,
            (attribute,),
            "The domain does not end in a public top-level domain.",
            "Only internet-routable domains can be verified in a tenant; mail to .local, .lan, "
            ".corp or single-label domains can never arrive.",
            "bob@contoso.local -> bob@contoso.com",
            "unsafe: needs the right public domain (see --upn-suffix-map).",
            on(_non_routable),
        ),
        Rule(
            f"{prefix}106",
            f"{label}-unverified-domain",
            ErrorType.UNVERIFIEDDOMAIN,
            (attribute,),
            "The domain is not one of the tenant's verified domains (with --verified-domains).",
            "Exchange Online drops a mailbox's or group's addresses in domains the tenant has not "
            "verified (contacts and mail users may point anywhere).",
            "bob@oldbrand.com -> bob@contoso.com",
            "unsafe: choose the verified domain the address should move to.",
            on(_unverified),
        ),
        Rule(
            f"{prefix}107",
            f"{label}-local-part-too-long",
            ErrorType.LENGTH,
            (attribute,),
            f"The local part is longer than {SMTP_MAX_LOCAL} characters.",
            "RFC 5321 limits the part before '@' to 64 characters.",
            "a-very-long-local-part...@contoso.com",
            "manual: shortening an address needs a person to choose.",
            on(lambda ctx: _length_over("local", SMTP_MAX_LOCAL)),
        ),
        Rule(
            f"{prefix}108",
            f"{label}-too-long",
            ErrorType.LENGTH,
            (attribute,),
            f"The address is longer than {SMTP_MAX_ADDRESS} characters.",
            "RFC 5321 limits a mail path to 256 octets with its angle brackets: 254 for the address.",
            "(a 255-character address)",
            "manual: shortening an address needs a person to choose.",
            on(lambda ctx: _length_over("addr", SMTP_MAX_ADDRESS)),
        ),
    ]
    # A targetAddress is where mail goes, not an address the tenant owns: no verified-domain check.
    return rules if owned else [r for r in rules if r.error is not ErrorType.UNVERIFIEDDOMAIN]


def _is_smtp() -> pl.Expr:
    return c("ptype") == "smtp"


def _target_is_smtp() -> pl.Expr:
    # A targetAddress is "SMTP:addr" or a bare "addr"; other types are "X400:...", "SIP:...".
    return (c("ptype") == "smtp") | (c("ptype").is_null() & c("value").str.contains("@", literal=True))


RULES: tuple[Rule, ...] = (
    # -- characters, in every attribute -------------------------------------------------------
    Rule(
        "C001",
        "invisible-character",
        ErrorType.CHARACTER,
        TEXT_ATTRS,
        "The value holds a control or invisible character.",
        "Tabs, line breaks, zero-width spaces, no-break spaces, soft hyphens, byte-order marks and "
        "bidi controls make the cloud silently discard sign-in names and addresses: sign-in or "
        "mail breaks without any sync error.",
        "bob\u200b@contoso.com -> bob@contoso.com",
        "safe in names, unsafe in sign-in names and addresses.",
        lambda ctx: _has(f"[{INVISIBLE_CHARS}]"),
    ),
    Rule(
        "C002",
        "non-ascii-character",
        ErrorType.CHARACTER,
        ADDRESS_ATTRS,
        "A sign-in name or address holds a character outside printable ASCII.",
        "The cloud rewrites such characters in UPNs and mailNicknames to '_' and refuses them in proxy addresses.",
        "jürgen@contoso.com -> jurgen@contoso.com",
        "unsafe: accented letters are transliterated (ü -> u), which changes the address.",
        lambda ctx: _has(r"[^\x00-\x7F]"),
    ),
    Rule(
        "C003",
        "surrounding-whitespace",
        ErrorType.WHITESPACE,
        (*ADDRESS_ATTRS, "sAMAccountName"),
        "The value starts or ends with whitespace.",
        "Addresses and sign-in names may hold no whitespace; the spaces are usually a typing slip.",
        "' bob@contoso.com ' -> 'bob@contoso.com'",
        "safe: the trimmed value is what was meant.",
        lambda ctx: _has(r"^\s|\s$"),
    ),
    Rule(
        "C004",
        "non-ascii-name",
        ErrorType.CHARACTER,
        NAME_ATTRS,
        "A name holds letters outside ASCII (only with --strict-ascii).",
        "Names such as 'Jürgen Müller' sync fine; some downstream systems still want ASCII.",
        "Jürgen Müller -> Jurgen Muller",
        "safe: letters are transliterated.",
        lambda ctx: _has(r"[^\x00-\x7F]"),
        severity=_warn(),
        opt_in=True,
    ),
    # -- userPrincipalName ----------------------------------------------------------------------
    Rule(
        "U001",
        "upn-invalid-character",
        ErrorType.CHARACTER,
        ("userPrincipalName",),
        "The UPN holds a character Microsoft 365 does not allow.",
        "The part before '@' may hold only letters, digits and ' . - _ ! # ^ ~; the domain only "
        "letters, digits, '.' and '-'.",
        "bob&alice@contoso.com -> bobalice@contoso.com",
        "unsafe: changes the user's sign-in name.",
        lambda ctx: _has(rf"[^{UPN_LOCAL_CHARS}]", "local") | _has(rf"[^{DOMAIN_CHARS}]", "domain"),
    ),
    Rule(
        "U002",
        "upn-format",
        ErrorType.FORMAT,
        ("userPrincipalName",),
        "The UPN is not of the form name@domain.",
        "A UPN needs exactly one '@', not first and not last.",
        "bob@@contoso.com -> bob@contoso.com",
        "unsafe when the repair is unambiguous, else manual.",
        _format_at,
    ),
    Rule(
        "U003",
        "upn-local-part-dots",
        ErrorType.LOCALPART,
        ("userPrincipalName",),
        "The part before '@' starts or ends with '.', or has '..'.",
        "Microsoft 365 refuses such UPNs.",
        "bob.@contoso.com -> bob@contoso.com",
        "unsafe: changes the user's sign-in name.",
        lambda ctx: _dots("local"),
    ),
    Rule(
        "U004",
        "upn-too-long",
        ErrorType.LENGTH,
        ("userPrincipalName",),
        f"The UPN is longer than {MAX_LENGTH['userprincipalname']} characters.",
        "Microsoft 365 limits userPrincipalName to 113 characters.",
        "(a 120-character UPN)",
        "manual: a person has to choose a shorter sign-in name.",
        lambda ctx: _length_over("addr", MAX_LENGTH["userprincipalname"]),
    ),
    Rule(
        "U005",
        "upn-local-part-too-long",
        ErrorType.LENGTH,
        ("userPrincipalName",),
        f"The part before '@' is longer than {UPN_MAX_LOCAL} characters.",
        "Microsoft 365 allows at most 64 characters before the '@'.",
        "(a 70-character user name)@contoso.com",
        "manual: a person has to choose a shorter sign-in name.",
        lambda ctx: _length_over("local", UPN_MAX_LOCAL),
    ),
    Rule(
        "U006",
        "upn-domain-too-long",
        ErrorType.LENGTH,
        ("userPrincipalName",),
        f"The part after '@' is longer than {UPN_MAX_DOMAIN} characters.",
        "Microsoft 365 allows at most 48 characters after the '@'.",
        "bob@(a 50-character domain)",
        "manual: the UPN suffix has to change to a shorter verified domain.",
        lambda ctx: _length_over("domain", UPN_MAX_DOMAIN),
    ),
    Rule(
        "U007",
        "upn-invalid-domain",
        ErrorType.DOMAINPART,
        ("userPrincipalName",),
        "The UPN suffix is not a valid DNS name.",
        "The suffix must be a verified domain, which is always a valid DNS name.",
        "bob@contoso_corp.com -> bob@contoso.com",
        "unsafe: changes the user's sign-in name.",
        _bad_domain_syntax,
    ),
    Rule(
        "U008",
        "upn-non-routable-domain",
        ErrorType.TOPLEVELDOMAIN,
        ("userPrincipalName",),
        "The UPN suffix does not end in a public top-level domain.",
        "A .local (or .lan, .corp, single-label) suffix can never be verified: sync replaces the "
        "UPN with name@tenant.onmicrosoft.com and users sign in with a name they do not know.",
        "bob@contoso.local -> bob@contoso.com",
        "unsafe: the suffix comes from --upn-suffix-map, else from the primary SMTP address.",
        _non_routable,
    ),
    Rule(
        "U009",
        "upn-unverified-domain",
        ErrorType.UNVERIFIEDDOMAIN,
        ("userPrincipalName",),
        "The UPN suffix is not a verified domain of the tenant (with --verified-domains).",
        "Sync replaces UPNs in unverified domains with name@tenant.onmicrosoft.com.",
        "bob@oldbrand.com -> bob@contoso.com",
        "unsafe: the suffix comes from --upn-suffix-map, else from the primary SMTP address.",
        _unverified,
    ),
    # -- mail -------------------------------------------------------------------------------------
    *_smtp_rules("M", "mail", pl.lit(True), "mail"),
    Rule(
        "M002",
        "mail-missing",
        ErrorType.BLANK,
        ("mail",),
        "A user or contact has no mail (dedicated profile).",
        "The legacy dedicated rules require every user and contact to be mail-enabled.",
        "(no mail) -> bob@contoso.com",
        "manual: the address has to be chosen.",
        scope="object",
        profiles=DEDICATED,
    ),
    # -- mailNickname -----------------------------------------------------------------------------
    Rule(
        "N001",
        "mail-nickname-invalid-character",
        ErrorType.CHARACTER,
        ("mailNickname",),
        "The alias holds a character Exchange does not allow.",
        "Aliases may hold letters, digits and ! # $ % ' * + - / = ? ^ _ ` { | } ~ (dedicated: only "
        "letters, digits, '-' and '_'); '&', spaces and '@' are refused and rewritten to '_'.",
        "bob&alice -> bobalice",
        "unsafe: changes the alias that address policies build on.",
        lambda ctx: _has(rf"[^{NICKNAME_CHARS[ctx.profile]}.]", "addr"),
    ),
    Rule(
        "N002",
        "mail-nickname-dots",
        ErrorType.FORMAT,
        ("mailNickname",),
        "The alias starts or ends with '.', or has '..'.",
        "A '.' is allowed only between other allowed characters.",
        ".bob. -> bob",
        "unsafe: changes the alias.",
        lambda ctx: _dots("addr"),
    ),
    Rule(
        "N003",
        "mail-nickname-too-long",
        ErrorType.LENGTH,
        ("mailNickname",),
        f"The alias is longer than {MAX_LENGTH['mailnickname']} characters.",
        "Exchange limits mailNickname to 64 characters.",
        "(a 70-character alias)",
        "manual: a person has to choose a shorter alias.",
        lambda ctx: _length_over("addr", MAX_LENGTH["mailnickname"]),
    ),
    Rule(
        "N004",
        "mail-nickname-missing",
        ErrorType.BLANK,
        ("mailNickname",),
        "A user or contact has no mailNickname (dedicated profile).",
        "The legacy dedicated rules require an alias on every user and contact.",
        "(no alias) -> bob.smith",
        "unsafe: an alias is made from the mail address or the cn.",
        scope="object",
        profiles=DEDICATED,
    ),
    Rule(
        "N005",
        "mail-nickname-unusual-character",
        ErrorType.CHARACTER,
        ("mailNickname",),
        "The alias holds ! # $ % ' * + / = ? ^ ` { | } or ~: valid in Exchange Online, refused by IdFix.",
        "Exchange Online accepts these characters, but IdFix's rule sets and many on-premises tools "
        "that build addresses, file or folder names from the alias refuse them; worth a look.",
        "bob###  -> bob",
        "unsafe: changes the alias.",
        lambda ctx: _has(r"[!#$%'*+/=?^`{|}~]", "addr"),
        profiles=frozenset({"m365"}),
        severity=_warn(),
    ),
    # -- proxyAddresses ---------------------------------------------------------------------------
    Rule(
        "P001",
        "proxy-address-without-type",
        ErrorType.FORMAT,
        ("proxyAddresses",),
        "The proxy address is not of the form TYPE:address.",
        "Every proxy address starts with its type, such as SMTP:, smtp:, X500: or SIP:.",
        "bob@contoso.com -> smtp:bob@contoso.com",
        "manual: the type has to be chosen.",
        lambda ctx: c("ptype").is_null() | (c("ptype") == "") | _has(r"^[^:]*[^A-Za-z0-9.\-:][^:]*:"),
    ),
    *_smtp_rules("P", "proxyAddresses", _is_smtp(), "smtp-proxy-address"),
    Rule(
        "P002",
        "x500-invalid-character",
        ErrorType.CHARACTER,
        ("proxyAddresses",),
        "An X400/X500 address holds a control character, '[', ']' or '\"'.",
        "X400 and X500 addresses may hold spaces and parentheses, but not these.",
        'X500:/o=Contoso/cn="Bob" -> X500:/o=Contoso/cn=Bob',
        "unsafe: an X500 address is how old mail finds the mailbox.",
        lambda ctx: c("ptype").is_in(list(X400_X500_TYPES)) & _has(rf"[{X500_INVALID_CHARS}]", "addr"),
    ),
    Rule(
        "P003",
        "other-proxy-address-invalid-character",
        ErrorType.CHARACTER,
        ("proxyAddresses",),
        'A SIP, EUM or other proxy address holds whitespace or one of < > ( ) , [ ] ".',
        "Proxy addresses of other types may not hold these characters.",
        "SIP:bob smith@contoso.com -> SIP:bobsmith@contoso.com",
        "unsafe: changes an address.",
        lambda ctx: (
            c("ptype").is_not_null()
            & ~c("ptype").is_in(["smtp", *X400_X500_TYPES])
            & _has(rf"[{OTHER_PROXY_INVALID_CHARS}]", "addr")
        ),
    ),
    Rule(
        "P004",
        "proxy-address-too-long",
        ErrorType.LENGTH,
        ("proxyAddresses",),
        f"The proxy address is longer than {MAX_LENGTH['proxyaddresses']} characters.",
        "Each proxyAddresses value is limited to 256 characters.",
        "(a 300-character X500 address)",
        "manual: a person has to decide what to do with the address.",
        lambda ctx: _length_over("value", MAX_LENGTH["proxyaddresses"]),
    ),
    Rule(
        "P005",
        "primary-smtp-address",
        ErrorType.PRIMARY,
        ("proxyAddresses",),
        "The object has several primary SMTP: addresses, or SMTP addresses but no primary.",
        "An object has exactly one primary (upper-case SMTP:) address; with two, Exchange Online "
        "picks one and mail may go out from the wrong address.",
        "SMTP:bob@contoso.com, SMTP:bob@fabrikam.com -> SMTP:bob@contoso.com, smtp:bob@fabrikam.com",
        "unsafe: the primary matching mail is kept and the others lower-cased.",
        scope="object",
    ),
    Rule(
        "P006",
        "reserved-address-domain",
        ErrorType.RESERVED,
        ("proxyAddresses",),
        "An SMTP address is in a Microsoft domain that the cloud silently discards.",
        "Addresses in *.microsoftonline.com, and in onmicrosoft.com domains of other tenants, "
        "are dropped without a sync error. The tenant's own onmicrosoft.com addresses are normal.",
        "smtp:bob@fabrikam.onmicrosoft.com -> (remove)",
        "unsafe: removing an address is easy to undo but may surprise.",
        lambda ctx: _is_smtp() & _reserved(ctx),
        severity=_warn(),
    ),
    # -- targetAddress ----------------------------------------------------------------------------
    *_smtp_rules("T", "targetAddress", _target_is_smtp(), "smtp-target-address", owned=False),
    Rule(
        "T001",
        "target-address-invalid-character",
        ErrorType.CHARACTER,
        ("targetAddress",),
        'The targetAddress holds whitespace or one of \\ < > ( ) ; , [ ] ".',
        "Exchange refuses these characters in a targetAddress.",
        "SMTP:bob smith@contoso.com -> SMTP:bobsmith@contoso.com",
        "unsafe: changes where mail is forwarded.",
        lambda ctx: ~_target_is_smtp() & _has(rf"[{TARGET_INVALID_CHARS}]", "addr"),
    ),
    Rule(
        "T002",
        "target-address-too-long",
        ErrorType.LENGTH,
        ("targetAddress",),
        f"targetAddress is longer than {MAX_LENGTH['targetaddress']} characters.",
        "Exchange limits targetAddress to 256 characters.",
        "(a 300-character address)",
        "manual: a person has to decide.",
        lambda ctx: _length_over("value", MAX_LENGTH["targetaddress"]),
    ),
    Rule(
        "T003",
        "target-address-missing",
        ErrorType.BLANK,
        ("targetAddress",),
        "A contact, or a user without a mailbox (homeMDB), has no targetAddress (dedicated profile).",
        "In the legacy dedicated service every mail user and contact forwards to its targetAddress.",
        "(none) -> SMTP:bob@fabrikam.com",
        "unsafe: made from mail.",
        scope="object",
        profiles=DEDICATED,
    ),
    Rule(
        "T004",
        "target-address-mismatch",
        ErrorType.FORMAT,
        ("targetAddress",),
        "targetAddress does not match mail (dedicated profile).",
        "In the legacy dedicated service a contact's or mail user's targetAddress is its mail.",
        "mail bob@fabrikam.com, targetAddress SMTP:robert@fabrikam.com -> SMTP:bob@fabrikam.com",
        "unsafe: changes where mail is forwarded.",
        scope="object",
        profiles=DEDICATED,
    ),
    # -- sAMAccountName ---------------------------------------------------------------------------
    Rule(
        "S001",
        "sam-account-name-invalid-character",
        ErrorType.CHARACTER,
        ("sAMAccountName",),
        'sAMAccountName holds one of " / \\ [ ] : ; | = , + * ? < > or a control character.',
        "These characters are invalid in pre-Windows 2000 logon names; when the UPN is missing, "
        "sync builds the cloud sign-in name from sAMAccountName.",
        "bob+admin -> bobadmin",
        "unsafe: changes the user's logon name.",
        lambda ctx: _has(rf"[{SAM_INVALID_CHARS}\x00-\x1F\x7F]"),
    ),
    Rule(
        "S002",
        "sam-account-name-too-long",
        ErrorType.LENGTH,
        ("sAMAccountName",),
        "sAMAccountName is longer than 20 characters (users) or 256 (groups).",
        "Windows limits pre-Windows 2000 logon names of users to 20 characters.",
        "(a 25-character logon name)",
        "manual: a person has to choose a shorter logon name.",
        lambda ctx: _length_over(
            "value", pl.when(c("kind") == "user").then(SAM_MAX_LENGTH["user"]).otherwise(SAM_MAX_LENGTH["group"])
        ),
    ),
    # -- names ------------------------------------------------------------------------------------
    Rule(
        "D001",
        "display-name-blank",
        ErrorType.BLANK,
        ("displayName",),
        "displayName is empty or only whitespace, or a group has none.",
        "Groups need a displayName; a blank one is refused.",
        "'   ' -> 'Sales Team' (the cn)",
        "safe: the cn (or 'givenName sn') is proposed.",
        lambda ctx: (c("attr") == "displayname") & ~_has(r"\S"),
    ),
    Rule(
        "D002",
        "name-surrounding-whitespace",
        ErrorType.WHITESPACE,
        NAME_ATTRS,
        "A name starts or ends with whitespace (an error in the dedicated profile).",
        "Harmless to sync in Microsoft 365 but shows in address lists; the legacy dedicated rules refuse it.",
        "' Bob Smith ' -> 'Bob Smith'",
        "safe: the trimmed value.",
        lambda ctx: _has(r"^\s|\s$") & _has(r"\S"),
        severity=_warn(dedicated_error=True),
    ),
    Rule(
        "D003",
        "name-too-long",
        ErrorType.LENGTH,
        NAME_ATTRS,
        "displayName is longer than 256 characters, or givenName/sn longer than 64.",
        "The cloud refuses longer values.",
        "(a 300-character display name) -> (its first 256 characters)",
        "safe: the value is shortened.",
        lambda ctx: _length_over(
            "value", c("attr").replace_strict(dict(MAX_LENGTH), default=10**9, return_dtype=pl.Int64)
        ),
    ),
    # -- large objects ----------------------------------------------------------------------------
    Rule(
        "L001",
        "too-many-certificates",
        ErrorType.LARGEOBJECT,
        ("userCertificate",),
        "More than 15 userCertificate values.",
        "Sync fails with LargeObject / ExceededAllowedLength above 15 certificates.",
        "(18 certificates) -> remove expired ones",
        "manual: choose which certificates to remove.",
        scope="object",
    ),
    Rule(
        "L002",
        "too-many-smime-certificates",
        ErrorType.LARGEOBJECT,
        ("userSMIMECertificate",),
        "More than 15 userSMIMECertificate values.",
        "Sync fails with LargeObject / ExceededAllowedLength above 15 certificates.",
        "(18 certificates) -> remove expired ones",
        "manual: choose which certificates to remove.",
        scope="object",
    ),
    Rule(
        "L003",
        "too-many-proxy-addresses",
        ErrorType.LARGEOBJECT,
        ("proxyAddresses",),
        "More proxy addresses than the warning threshold (300; --max-proxy-addresses).",
        "Objects with very many proxy addresses risk LargeObject errors.",
        "(350 addresses) -> remove unused ones",
        "manual: choose which addresses to remove.",
        scope="object",
        severity=_warn(),
    ),
    Rule(
        "L004",
        "thumbnail-photo-too-large",
        ErrorType.LARGEOBJECT,
        ("thumbnailPhoto",),
        "thumbnailPhoto is larger than 100 KB.",
        "Sync fails with LargeObject when the photo is larger than 100 KB.",
        "(250 KB photo) -> (a smaller photo)",
        "manual: a smaller photo has to be uploaded.",
        scope="object",
    ),
    Rule(
        "L005",
        "group-too-large",
        ErrorType.LARGEOBJECT,
        ("member",),
        "A group has 250,000 members or more.",
        "Sync cannot export groups of that size.",
        "(300,000 members) -> split the group",
        "manual.",
        scope="object",
    ),
    # -- duplicates -------------------------------------------------------------------------------
    Rule(
        "X001",
        "duplicate-address",
        ErrorType.DUPLICATE,
        ("userPrincipalName", "mail", "proxyAddresses"),
        "Two objects hold the same address, in any of userPrincipalName, mail or an SMTP proxy address.",
        "The cloud keeps one namespace for all of them across users, groups and contacts "
        "(AttributeValueMustBeUnique, ObjectTypeMismatch); the error names the value, never the objects.",
        "user UPN bob@contoso.com and group proxy smtp:bob@contoso.com",
        "manual: the holder whose mail, primary address or UPN it is keeps it; REMOVE is proposed for the others.",
        scope="duplicate",
    ),
    Rule(
        "X002",
        "duplicate-proxy-address-in-object",
        ErrorType.DUPLICATE,
        ("proxyAddresses",),
        "The same SMTP address appears twice in one object's proxyAddresses.",
        "Addresses differing only in case are the same address.",
        "SMTP:Bob@contoso.com, smtp:bob@contoso.com -> keep the primary",
        "manual: REMOVE is proposed for the extra copy.",
        scope="duplicate",
    ),
    Rule(
        "X003",
        "duplicate-sip-address",
        ErrorType.DUPLICATE,
        ("proxyAddresses", "msRTCSIP-PrimaryUserAddress"),
        "Two objects hold the same SIP address.",
        "SIP addresses are unique in the cloud.",
        "SIP:bob@contoso.com on two users",
        "manual.",
        scope="duplicate",
    ),
    Rule(
        "X004",
        "duplicate-mail-nickname",
        ErrorType.DUPLICATE,
        ("mailNickname",),
        "Two objects have the same mailNickname.",
        "Aliases are unique in Exchange Online.",
        "alias 'bob' on two users",
        "manual.",
        scope="duplicate",
    ),
    Rule(
        "X005",
        "duplicate-target-address",
        ErrorType.DUPLICATE,
        ("targetAddress",),
        "Two objects have the same targetAddress.",
        "Two recipients forwarding to one address make mail routing ambiguous.",
        "SMTP:bob@fabrikam.com on two contacts",
        "manual.",
        scope="duplicate",
    ),
    Rule(
        "X006",
        "duplicate-proxy-address-other-type",
        ErrorType.DUPLICATE,
        ("proxyAddresses",),
        "Two objects hold the same X500, X400 or other non-SMTP proxy address.",
        "Proxy addresses are unique within their type.",
        "X500:/o=Contoso/ou=.../cn=bob on two mailboxes",
        "manual.",
        scope="duplicate",
    ),
    Rule(
        "X007",
        "duplicate-sam-account-name",
        ErrorType.DUPLICATE,
        ("sAMAccountName",),
        "Two objects without a valid UPN have the same sAMAccountName.",
        "Without a UPN sync builds the sign-in name from sAMAccountName, which must then be unique.",
        "bob in two domains, neither with a UPN",
        "manual.",
        scope="duplicate",
    ),
    Rule(
        "A001",
        "duplicate-source-anchor",
        ErrorType.ANCHOR,
        ("mS-DS-ConsistencyGuid", "objectGUID"),
        "Two objects have the same source anchor (mS-DS-ConsistencyGuid, else objectGUID).",
        "After forest migrations two objects can share an anchor; matching then fails with "
        "InvalidSoftMatch / InvalidHardMatch.",
        "a migrated user whose mS-DS-ConsistencyGuid equals another user's objectGUID",
        "manual: clear mS-DS-ConsistencyGuid on the object that should not match.",
        scope="duplicate",
    ),
)


def _reserved(ctx: CheckContext) -> pl.Expr:
    domain = c("domain").str.to_lowercase()
    reserved = domain.str.contains(r"(?:^|\.)microsoftonline\.com$")
    own = ctx.own_tenant_pattern
    if own is not None:
        reserved = reserved | (domain.str.contains(r"(?:^|\.)onmicrosoft\.com$") & ~domain.str.contains(own))
    return reserved.fill_null(False)


BY_CODE: Mapping[str, Rule] = MappingProxyType({r.code: r for r in RULES})


def select_rules(ctx: CheckContext, select: tuple[str, ...] = (), ignore: tuple[str, ...] = ()) -> tuple[Rule, ...]:
    """The rules a scan runs: the profile's, narrowed by --select and --ignore.

    Each item is a code ("U008"), a code prefix ("U", "P10"), a rule name or an error type
    ("duplicate").
    """

    def matches(rule: Rule, item: str) -> bool:
        low = item.lower()
        return rule.code.lower().startswith(low) or rule.name == low or rule.error.value == low

    for item in (*select, *ignore):
        if not any(matches(r, item) for r in RULES):
            raise ConfigError(f"{item!r} matches no rule code, name or error type (see 'syncprep rules')")
    chosen = []
    for rule in RULES:
        if ctx.profile not in rule.profiles:
            continue
        # Opt-in rules run with their option, or when named by code or name.
        if rule.opt_in and not (ctx.strict_ascii or any(s.lower() in (rule.code.lower(), rule.name) for s in select)):
            continue
        if select and not any(matches(rule, s) for s in select):
            continue
        if any(matches(rule, i) for i in ignore):
            continue
        chosen.append(rule)
    return tuple(chosen)
