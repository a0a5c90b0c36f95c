"""Run the per-value rules over a frame of values, vectorised.

Values are grouped in families (UPNs, mail, aliases, proxy addresses, ...). For each family a
single "clean" pattern recognises the values that no rule of the family can flag; only the rest
(typically a few percent) get the columns the rules read and are checked rule by rule. The clean
patterns are an optimisation only: ``evaluate(..., prefilter=False)`` checks every value, and the
test suite holds both ways to the same answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from ..domains import DNS_LABEL
from ..schema import ATEXT, INVISIBLE_CHARS, MAX_LENGTH, NICKNAME_CHARS, SAM_MAX_LENGTH
from .catalog import Rule
from .context import CheckContext

c = pl.col

HIT_SCHEMA = {"eid": pl.UInt32, "attr": pl.String, "value": pl.String, "code": pl.String}

# atext without '.', for dot-atoms. Ex) "bob.smith" = atom "." atom
_ATOM = rf"[{ATEXT}]+"
_UPN_ATOM = r"[A-Za-z0-9'_!#^~\-]+"
# Proxy types whose values are plain printable text (anything else gets the full check).
_OTHER_TYPES = r"(?:sip|eum|notes|gwise|ms|ccmail|fax|rfax|msmail|meeting)"
_X500_TEXT = r"[\x20\x21\x23-\x5A\x5C\x5E-\x7E]"
_OTHER_TEXT = r"[\x21\x23-\x27\x2A\x2B\x2D-\x3B\x3D\x3F-\x5A\x5C\x5E-\x7E]"


@dataclass(frozen=True)
class Family:
    """Attributes checked together, with the pattern of values that are certainly fine."""

    name: str
    attributes: tuple[str, ...]
    clean: Callable[[CheckContext], pl.Expr]
    derive: Callable[[pl.DataFrame], pl.DataFrame]


def _at_most(limit: int) -> pl.Expr:
    return c("value").str.len_bytes() <= limit


def _verified_ok(ctx: CheckContext) -> pl.Expr:
    pattern = ctx.verified_suffix_pattern
    if pattern is None:
        return pl.lit(True)
    return c("value").str.contains(pattern)


def _smtp(ctx: CheckContext, prefix: str = "") -> str:
    return rf"(?i:^{prefix}){_ATOM}(?:\.{_ATOM})*@(?i:{ctx.routable_domain_pattern})$"


def _local_len_ok(prefix_len: int) -> pl.Expr:
    at = c("value").str.find("@", literal=True)
    return at.is_null() | (at - prefix_len <= 64)


def _clean_upn(ctx: CheckContext) -> pl.Expr:
    at = c("value").str.find("@", literal=True)
    length = c("value").str.len_bytes()
    return (
        c("value").str.contains(rf"^{_UPN_ATOM}(?:\.{_UPN_ATOM})*@(?i:{ctx.routable_domain_pattern})$")
        & (length <= MAX_LENGTH["userprincipalname"])
        & (at <= 64)
        & (length - at - 1 <= 48)
        & _verified_ok(ctx)
    )


def _clean_mail(ctx: CheckContext) -> pl.Expr:
    at = c("value").str.find("@", literal=True)
    return (
        c("value").str.contains(_smtp(ctx))
        & _at_most(MAX_LENGTH["mail"])
        & (at <= 64)
        & _verified_ok(ctx)
    )


def _clean_proxy(ctx: CheckContext) -> pl.Expr:
    pattern = (
        rf"^(?:(?i:smtp):{_ATOM}(?:\.{_ATOM})*@(?i:{ctx.routable_domain_pattern})"
        rf"|(?i:x\.?[45]00):{_X500_TEXT}*"
        rf"|(?i:{_OTHER_TYPES}):{_OTHER_TEXT}*)$"
    )
    low = c("value").str.to_lowercase()
    clean = (
        c("value").str.contains(pattern)
        & _at_most(MAX_LENGTH["proxyaddresses"])
        & _local_len_ok(5)
        & ~low.str.ends_with("microsoftonline.com")
        & _verified_ok(ctx).or_(~low.str.starts_with("smtp:"))
    )
    if ctx.own_tenant_pattern is not None:
        clean = clean & ~low.str.ends_with("onmicrosoft.com")
    return clean


def _clean_target(ctx: CheckContext) -> pl.Expr:
    return (
        c("value").str.contains(_smtp(ctx, r"(?:smtp:)?"))
        & _at_most(MAX_LENGTH["targetaddress"])
        & _local_len_ok(5)
        & _verified_ok(ctx)
    )


def _clean_nickname(ctx: CheckContext) -> pl.Expr:
    # The strict set in every profile: N005 warns about the rest of Exchange's set.
    chars = NICKNAME_CHARS["dedicated"]
    return c("value").str.contains(rf"^[{chars}]+(?:\.[{chars}]+)*$") & _at_most(MAX_LENGTH["mailnickname"])


def _clean_sam(ctx: CheckContext) -> pl.Expr:
    return c("value").str.contains(r"^[A-Za-z0-9._\-$]+$") & _at_most(SAM_MAX_LENGTH["user"])


def _clean_name(ctx: CheckContext) -> pl.Expr:
    if ctx.strict_ascii:
        pattern = r"^[\x21-\x7E](?:[\x20-\x7E]*[\x21-\x7E])?$"
    else:
        pattern = rf"^[^\s{INVISIBLE_CHARS}](?:[^{INVISIBLE_CHARS}]*[^\s{INVISIBLE_CHARS}])?$"
    return c("value").str.contains(pattern) & (c("value").str.len_chars() <= 64)


def _clean_printable(ctx: CheckContext) -> pl.Expr:
    return c("value").str.contains(r"^[\x21-\x7E]+$")


def _split_address(frame: pl.DataFrame) -> pl.DataFrame:
    """local and domain: the two sides of the last '@' of addr."""
    has_at = c("addr").str.contains("@", literal=True)
    return frame.with_columns(
        local=pl.when(has_at).then(c("addr").str.extract(r"^(?s:(.*))@", 1)).otherwise(c("addr")),
        domain=c("addr").str.extract(r"@([^@]*)$", 1),
    )


def _derive_plain(frame: pl.DataFrame) -> pl.DataFrame:
    return _split_address(frame.with_columns(addr=c("value").str.strip_chars(), ptype=pl.lit(None, pl.String)))


def _derive_typed(frame: pl.DataFrame) -> pl.DataFrame:
    """For TYPE:address values. Ex) "smtp:bob@x.com" -> ptype "smtp", addr "bob@x.com"."""
    stripped = c("value").str.strip_chars()
    has_type = stripped.str.contains(r"^[^@]*:")
    return _split_address(
        frame.with_columns(
            ptype=pl.when(has_type).then(stripped.str.extract(r"^([^:]*):", 1).str.to_lowercase()),
            addr=pl.when(has_type).then(stripped.str.extract(r"^[^:]*:(?s:(.*))$", 1)).otherwise(stripped),
        )
    )


FAMILIES: tuple[Family, ...] = (
    Family("upn", ("userprincipalname",), _clean_upn, _derive_plain),
    Family("mail", ("mail",), _clean_mail, _derive_plain),
    Family("nickname", ("mailnickname",), _clean_nickname, _derive_plain),
    Family("proxy", ("proxyaddresses",), _clean_proxy, _derive_typed),
    Family("target", ("targetaddress",), _clean_target, _derive_typed),
    Family("sam", ("samaccountname",), _clean_sam, _derive_plain),
    Family("name", ("displayname", "givenname", "sn"), _clean_name, _derive_plain),
    Family("sip", ("msrtcsip-primaryuseraddress",), _clean_printable, _derive_plain),
)

CHECKED = frozenset(a for f in FAMILIES for a in f.attributes)


def evaluate(
    values: pl.DataFrame, rules: tuple[Rule, ...], ctx: CheckContext, *, prefilter: bool = True
) -> pl.DataFrame:
    """Hits of the per-value rules: one row (eid, attr, value, code) per value and rule that fails.

    ``values`` has columns eid, attr, value, kind (the object kind decides some limits).
    """
    value_rules = [r for r in rules if r.scope == "value" and r.check is not None]
    parts: list[pl.DataFrame] = []
    for family in FAMILIES:
        applicable = [r for r in value_rules if set(r.lower_attributes) & set(family.attributes)]
        if not applicable:
            continue
        rows = values.filter(c("attr").is_in(family.attributes))
        if prefilter and rows.height:
            rows = rows.filter(~family.clean(ctx))
        if not rows.height:
            continue
        rows = family.derive(rows)
        for rule in applicable:
            assert rule.check is not None
            hit = rows.filter(c("attr").is_in(rule.lower_attributes) & rule.check(ctx).fill_null(False))
            if hit.height:
                parts.append(hit.select("eid", "attr", "value", pl.lit(rule.code).alias("code")))
    if not parts:
        return pl.DataFrame(schema=HIT_SCHEMA)
    return pl.concat(parts).cast(HIT_SCHEMA)  # type: ignore[arg-type]


__all__ = ["CHECKED", "DNS_LABEL", "FAMILIES", "HIT_SCHEMA", "evaluate"]
