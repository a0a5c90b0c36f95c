"""Suggested fixes (the UPDATE column) and how far to trust them (RULES.md §7).

Pure functions: a value and what is wrong with it in, a suggestion out. The engine checks every
suggestion against the rules again and drops the ones that would still fail, so a suggested value
is never itself a finding.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from .domains import is_routable
from .model import Action, ErrorType, Safety
from .rules.context import CheckContext
from .schema import (
    ATEXT,
    INVISIBLE_CHARS,
    MAX_LENGTH,
    NICKNAME_CHARS,
    SAM_INVALID_CHARS,
    UPN_LOCAL_CHARS,
    X400_X500_TYPES,
)

NAME_ATTRIBUTES = frozenset({"displayname", "givenname", "sn"})
COUNTED_CODES = frozenset({"L001", "L002", "L003", "L004", "L005"})

_INVISIBLE = re.compile(f"[{INVISIBLE_CHARS}]")
# Space-like invisible characters become a plain space in names. Ex) "Bob\u00a0Smith" -> "Bob Smith"
_SPACELIKE = re.compile(r"[\t\u00A0\u2000-\u200A\u202F\u205F\u3000]")
_SPECIAL_LETTERS = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "SS",
        "æ": "ae",
        "Æ": "AE",
        "ø": "o",
        "Ø": "O",
        "œ": "oe",
        "Œ": "OE",
        "đ": "d",
        "Đ": "D",
        "ł": "l",
        "Ł": "L",
        "þ": "th",
        "Þ": "Th",
        "ð": "d",
        "Ð": "D",
        "ı": "i",
        "ħ": "h",
        "Ħ": "H",
        "ŧ": "t",
        "Ŧ": "T",
        "ŋ": "ng",
        "Ŋ": "NG",
        "ĸ": "k",
    }
)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """What syncprep proposes for one finding."""

    update: str | None
    safety: Safety
    action: Action
    note: str = ""


MANUAL = Suggestion(None, Safety.MANUAL, Action.EDIT)


def transliterate(text: str) -> str:
    """Accented letters to ASCII, other non-ASCII removed. Ex) "Jürgen Groß" -> "Jurgen Gross"."""
    if text.isascii():
        return text
    text = text.translate(_SPECIAL_LETTERS)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ord(ch) < 128 and unicodedata.category(ch) != "Mn")


def _keep(text: str, allowed: str) -> str:
    return re.sub(f"[^{allowed}]", "", text)


def _fix_dots(text: str) -> str:
    # Ex) ".bob..smith." -> "bob.smith"
    return re.sub(r"\.{2,}", ".", text).strip(".")


def _fix_domain(domain: str) -> str:
    labels = [label.strip("-") for label in _keep(domain, r"A-Za-z0-9.\-").split(".")]
    return ".".join(label for label in labels if label)


def _split(addr: str) -> tuple[str, str] | None:
    """local, domain of an address whose '@' is unambiguous. Ex) "a@@x.com" -> ("a", "x.com")."""
    collapsed = re.sub(r"@{2,}", "@", addr)
    if collapsed.count("@") != 1:
        return None
    local, domain = collapsed.split("@")
    return local, domain


def _repair_address(addr: str, local_chars: str, new_domain: str | None) -> str | None:
    parts = _split(transliterate(_INVISIBLE.sub("", addr.strip())))
    if parts is None:
        return None
    local, domain = parts
    local = _fix_dots(_keep(local, local_chars))
    domain = new_domain or _fix_domain(domain)
    if not local or not domain:
        return None
    return f"{local}@{domain}"


def _upn_domain(ctx_row: Mapping[str, str | None], check: CheckContext, domain: str) -> str | None:
    """The UPN suffix to move to: --upn-suffix-map, else the primary SMTP domain when usable."""
    mapped = check.map_upn_suffix(domain)
    if mapped:
        return mapped
    primary = ctx_row.get("primary") or ctx_row.get("mail") or ""
    if "@" in primary:
        candidate = primary.rsplit("@", 1)[1].strip().lower()
        if is_routable(candidate) and check.domains.is_verified(candidate) and candidate != domain.lower():
            return candidate
    return None


def _split_type(value: str) -> tuple[str, str]:
    stripped = value.strip()
    if ":" in stripped and "@" not in stripped.split(":", 1)[0]:
        prefix, rest = stripped.split(":", 1)
        return prefix + ":", rest
    return "", stripped


def suggest(
    attr: str,
    value: str,
    errors: frozenset[ErrorType],
    codes: frozenset[str],
    ctx_row: Mapping[str, str | None],
    check: CheckContext,
) -> Suggestion:
    """The proposed fix for a finding that is not a duplicate."""
    fix = _suggest(attr, value, errors, codes, ctx_row, check)
    return not_a_twin(value, fix, ctx_row) if attr == "proxyaddresses" else fix


def _suggest(
    attr: str,
    value: str,
    errors: frozenset[ErrorType],
    codes: frozenset[str],
    ctx_row: Mapping[str, str | None],
    check: CheckContext,
) -> Suggestion:
    if codes & COUNTED_CODES:
        return Suggestion(None, Safety.MANUAL, Action.EDIT, "too large to sync: reduce it by hand")
    if "P006" in codes:
        return Suggestion(None, Safety.UNSAFE, Action.REMOVE, "the cloud discards this address")
    if "P005" in codes:
        return _primary(value, ctx_row)
    if "T004" in codes or ("T003" in codes and ctx_row.get("mail")):
        mail = (ctx_row.get("mail") or "").strip()
        return (
            Suggestion(f"SMTP:{mail}", Safety.UNSAFE, Action.EDIT, "targetAddress made from mail") if mail else MANUAL
        )
    if ErrorType.BLANK in errors and not value.strip():
        return _missing(attr, codes, ctx_row)
    if attr in NAME_ATTRIBUTES:
        return _name(attr, value, errors)
    return _address(attr, value, errors, codes, ctx_row, check)


def not_a_twin(value: str, fix: Suggestion, ctx_row: Mapping[str, str | None]) -> Suggestion:
    """An edit must not write an address the object already holds in another case.

    Ex) smtp:jörg.lang@x next to SMTP:jorg.lang@x: the repaired smtp:jorg.lang@x is already there.
    AD refuses such an add; some servers take it and later delete the wrong one of the two. The
    repaired address is already served, so the faulty one goes (a primary needs a person's choice).
    """
    if fix.action != Action.EDIT or fix.update is None:
        return fix
    new = fix.update.strip().lower()
    if new == value.strip().lower() or new not in set((ctx_row.get("addresses") or "").split("\n")):
        return fix
    if value.strip().startswith("SMTP:"):
        return Suggestion(
            None, Safety.MANUAL, Action.EDIT, "its repaired form is already another address here: choose the primary"
        )
    return Suggestion(None, Safety.UNSAFE, Action.REMOVE, "its repaired form is already an address of this object")


def _primary(value: str, ctx_row: Mapping[str, str | None]) -> Suggestion:
    prefix, rest = _split_type(value)
    mail = (ctx_row.get("mail") or "").strip().lower()
    primaries = set(filter(None, (ctx_row.get("primaries") or "").split("\n")))
    if prefix == "SMTP:":
        if rest.lower() == mail:
            return Suggestion(None, Safety.SAFE, Action.COMPLETE, "keep: this primary matches mail")
        if mail in primaries:
            return Suggestion("smtp:" + rest, Safety.UNSAFE, Action.EDIT, "another primary matches mail")
        return Suggestion(None, Safety.MANUAL, Action.EDIT, "several primaries and none matches mail: choose one")
    return Suggestion("SMTP:" + rest, Safety.UNSAFE, Action.EDIT, "no primary SMTP address: promote this one")


def _missing(attr: str, codes: frozenset[str], ctx_row: Mapping[str, str | None]) -> Suggestion:
    if "D001" in codes:
        name = ctx_row.get("cn") or " ".join(filter(None, (ctx_row.get("givenname"), ctx_row.get("sn"))))
        return Suggestion(name, Safety.SAFE, Action.EDIT, "displayName from cn") if name else MANUAL
    if "N004" in codes:
        mail = ctx_row.get("mail") or ""
        base = mail.split("@", 1)[0] if "@" in mail else (ctx_row.get("cn") or "")
        alias = _fix_dots(_keep(transliterate(base), NICKNAME_CHARS["dedicated"] + "."))[: MAX_LENGTH["mailnickname"]]
        return Suggestion(alias, Safety.UNSAFE, Action.EDIT, "alias made from mail or cn") if alias else MANUAL
    return MANUAL


def _name(attr: str, value: str, errors: frozenset[ErrorType]) -> Suggestion:
    fixed = _SPACELIKE.sub(" ", value)
    fixed = _INVISIBLE.sub("", fixed).strip()
    if ErrorType.CHARACTER in errors:
        fixed = transliterate(fixed) if not fixed.isascii() else fixed
    fixed = re.sub(r" {2,}", " ", fixed) if fixed != value.strip() else fixed
    limit = MAX_LENGTH.get(attr)
    if limit and len(fixed) > limit:
        fixed = fixed[:limit].rstrip()
    if ErrorType.BLANK in errors or not fixed:
        return MANUAL
    if fixed == value:
        return MANUAL
    return Suggestion(fixed, Safety.SAFE, Action.EDIT)


def _address(
    attr: str,
    value: str,
    errors: frozenset[ErrorType],
    codes: frozenset[str],
    ctx_row: Mapping[str, str | None],
    check: CheckContext,
) -> Suggestion:
    if errors <= {ErrorType.WHITESPACE}:
        trimmed = value.strip()
        return Suggestion(trimmed, Safety.SAFE, Action.EDIT) if trimmed else MANUAL
    if ErrorType.LENGTH in errors:
        return Suggestion(None, Safety.MANUAL, Action.EDIT, "too long: a person has to shorten it")

    prefix, rest = _split_type(value) if attr in ("proxyaddresses", "targetaddress") else ("", value.strip())
    ptype = prefix[:-1].lower()
    routing = ErrorType.TOPLEVELDOMAIN in errors or ErrorType.UNVERIFIEDDOMAIN in errors

    if attr == "userprincipalname":
        domain = rest.rsplit("@", 1)[1] if "@" in rest else ""
        new_domain = _upn_domain(ctx_row, check, domain) if routing else None
        if routing and new_domain is None:
            return Suggestion(None, Safety.MANUAL, Action.EDIT, "choose a verified UPN suffix (--upn-suffix-map)")
        fixed = _repair_address(rest, UPN_LOCAL_CHARS, new_domain)
    elif attr == "mailnickname":
        fixed = _fix_dots(_keep(transliterate(_INVISIBLE.sub("", rest)), NICKNAME_CHARS[check.profile] + "."))
        fixed = fixed[: MAX_LENGTH["mailnickname"]] or None
    elif attr == "samaccountname":
        fixed = re.sub(rf"[{SAM_INVALID_CHARS}]", "", transliterate(_INVISIBLE.sub("", rest))).strip() or None
    elif ptype in X400_X500_TYPES:
        fixed = re.sub(r'[\[\]"]', "", _INVISIBLE.sub("", rest)) or None
    elif attr == "proxyaddresses" and ptype != "smtp":
        fixed = re.sub(r'[\s<>(),\[\]"]', "", transliterate(_INVISIBLE.sub("", rest))) or None
    else:
        new_domain = None
        if routing:
            domain = rest.rsplit("@", 1)[1] if "@" in rest else ""
            new_domain = check.map_upn_suffix(domain)
            if new_domain is None:
                if attr == "proxyaddresses" and prefix == "smtp:":
                    return Suggestion(
                        None, Safety.UNSAFE, Action.REMOVE, "secondary address in a domain mail cannot reach"
                    )
                why = "not routable" if ErrorType.TOPLEVELDOMAIN in errors else "not a verified domain"
                return Suggestion(None, Safety.MANUAL, Action.EDIT, f"the domain is {why}: choose a verified one")
        fixed = _repair_address(rest, ATEXT + ".", new_domain)
    if not fixed:
        return MANUAL
    update = prefix + fixed
    if update == value:
        return MANUAL
    return Suggestion(update, Safety.UNSAFE, Action.EDIT)
