"""Run the per-value rules over a frame of values, vectorised.

Values are grouped in families (UPNs, mail, aliases, proxy addresses, ...). For each family a
single "clean" pattern recognises the values that no rule of the family can flag; only the rest
(typically a few percent) get the columns the rules read and are checked rule by rule. The clean
patterns are an optimisation only: ``evaluate(..., prefilter=False)`` checks every value, and the
test suite holds both ways to the same answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import polars as pl

from ..domains import is_routable, tld_alternation
from ..schema import ATEXT, INVISIBLE_CHARS
from .catalog import Rule
from .context import CheckContext

c = pl.col

HIT_SCHEMA = {"eid": pl.UInt32, "attr": pl.String, "value": pl.String, "code": pl.String}

# The "clean" patterns describe common, certainly valid values with bounded shapes, because
# bounded shapes make every length limit hold without measuring: a local part of at most three
# atoms of at most 20 characters is at most 62 long. Anything else takes the full check.
_ATOM = rf"[{ATEXT}]{{1,20}}"
_LOCAL = rf"{_ATOM}(?:\.{_ATOM}){{0,2}}"
_UPN_ATOM = r"[A-Za-z0-9'_!#^~\-]{1,20}"
_UPN_LOCAL = rf"{_UPN_ATOM}(?:\.{_UPN_ATOM}){{0,2}}"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,20}[A-Za-z0-9])?"
_UPN_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,13}[A-Za-z0-9])?"
# Proxy types whose values are plain printable text (anything else gets the full check).
_OTHER_TYPES = r"(?:sip|eum|notes|gwise|ms|ccmail|fax|rfax|msmail|meeting)"
_X500_TEXT = r"[\x20\x21\x23-\x5A\x5C\x5E-\x7E]"
_X500_LAST = r"[\x21\x23-\x5A\x5C\x5E-\x7E]"  # not a space: C003 reports trailing whitespace
_OTHER_TEXT = r"[\x21\x23-\x27\x2A\x2B\x2D-\x3B\x3D\x3F-\x5A\x5C\x5E-\x7E]"


@dataclass(frozen=True)
class Family:
    """Attributes checked together, with the pattern of values that are certainly fine."""

    name: str
    attributes: tuple[str, ...]
    clean: Callable[[CheckContext], pl.Expr]
    derive: Callable[[pl.DataFrame], pl.DataFrame]


def _domain(ctx: CheckContext) -> str:
    """A routable domain of at most three labels of at most 22 characters (or a verified one)."""
    verified = _verified_alternation(ctx)
    if verified:
        return rf"(?:{_LABEL}\.){{0,2}}(?i:{verified})"
    return rf"(?:{_LABEL}\.){{1,3}}(?i:{tld_alternation()})"


def _upn_domain(ctx: CheckContext) -> str:
    """A routable UPN suffix of at most 48 characters: two labels of 15 and a TLD of 16 at most."""
    verified = _verified_alternation(ctx, longest=48)
    if verified is not None:
        return rf"(?i:{verified})" if verified else r"(?!)"
    return rf"(?:{_UPN_LABEL}\.){{1,2}}(?i:{tld_alternation(16)})"


def _verified_alternation(ctx: CheckContext, longest: int = 253) -> str | None:
    if not ctx.domains.verified:
        return None
    usable = sorted(d for d in ctx.domains.verified if is_routable(d) and len(d) <= longest)
    return "|".join(re.escape(d) for d in usable) if usable else "\\b\\B"


def _clean_upn(ctx: CheckContext) -> pl.Expr:
    return c("value").str.contains(rf"^{_UPN_LOCAL}@{_upn_domain(ctx)}$")


def _clean_mail(ctx: CheckContext) -> pl.Expr:
    return c("value").str.contains(rf"^{_LOCAL}@{_domain(ctx)}$")


def _clean_proxy(ctx: CheckContext) -> pl.Expr:
    pattern = (
        rf"^(?:(?i:smtp):{_LOCAL}@{_domain(ctx)}"
        rf"|(?i:x\.?[45]00):(?:{_X500_TEXT}{{0,199}}{_X500_LAST})?"
        rf"|(?i:{_OTHER_TYPES}):{_OTHER_TEXT}{{1,200}})$"
    )
    # Reserved domains look valid; they are told apart on the lower-case value.
    low = c("low")
    clean = c("value").str.contains(pattern) & ~low.str.contains("microsoftonline.com", literal=True)
    own = ctx.own_tenant_pattern
    if own is not None:
        # Ex) tenant contoso: "smtp:bob@contoso.mail.onmicrosoft.com" stays clean.
        clean = clean & (
            ~low.str.contains("onmicrosoft.com", literal=True) | low.str.contains("@" + own.removeprefix("^"))
        )
    return clean


def _clean_target(ctx: CheckContext) -> pl.Expr:
    return c("value").str.contains(rf"^(?:(?i:smtp):)?{_LOCAL}@{_domain(ctx)}$")


def _clean_nickname(ctx: CheckContext) -> pl.Expr:
    # The strict set in every profile: N005 warns about the rest of Exchange's set.
    atom = r"[A-Za-z0-9_\-]{1,20}"
    return c("value").str.contains(rf"^{atom}(?:\.{atom}){{0,2}}$")


def _clean_sam(ctx: CheckContext) -> pl.Expr:
    return c("value").str.contains(r"^[A-Za-z0-9._$\-]{1,20}$")


def _clean_name(ctx: CheckContext) -> pl.Expr:
    if ctx.strict_ascii:
        pattern = r"^[\x21-\x7E](?:[\x20-\x7E]*[\x21-\x7E])?$"
    else:
        pattern = rf"^[^\s{INVISIBLE_CHARS}](?:[^{INVISIBLE_CHARS}]*[^\s{INVISIBLE_CHARS}])?$"
    # Bytes are at least characters, so 64 bytes is within every name limit.
    return c("value").str.contains(pattern) & (c("value").str.len_bytes() <= 64)


def _clean_printable(ctx: CheckContext) -> pl.Expr:
    return c("value").str.contains(r"^[\x21-\x7E]{1,250}$")


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


def with_low(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``low``, the trimmed lower-case value (proxy rules and duplicate keys both read it)."""
    return frame.with_columns(low=c("value").str.strip_chars().str.to_lowercase())


def evaluate(
    values: pl.DataFrame, rules: tuple[Rule, ...], ctx: CheckContext, *, prefilter: bool = True
) -> pl.DataFrame:
    """Hits of the per-value rules for a frame of (eid, attr, value, kind) rows."""
    parts = {
        key[0]: frame
        for key, frame in values.filter(c("attr").is_in(CHECKED))
        .partition_by("attr", as_dict=True, include_key=False)
        .items()
    }
    if "proxyaddresses" in parts:
        parts["proxyaddresses"] = with_low(parts["proxyaddresses"])
    return evaluate_parts(parts, rules, ctx, prefilter=prefilter)  # type: ignore[arg-type]


def evaluate_parts(
    parts: Mapping[str, pl.DataFrame], rules: tuple[Rule, ...], ctx: CheckContext, *, prefilter: bool = True
) -> pl.DataFrame:
    """Hits of the per-value rules: one row (eid, attr, value, code) per value and rule that fails.

    ``parts`` maps an attribute to its (eid, value, kind[, external]) rows; proxyAddresses rows
    also carry ``low`` (see :func:`with_low`).
    """
    value_rules = [r for r in rules if r.scope == "value" and r.check is not None]
    hits: list[pl.DataFrame] = []
    for family in FAMILIES:
        applicable = [r for r in value_rules if set(r.lower_attributes) & set(family.attributes)]
        if not applicable:
            continue
        frames = []
        for attr in family.attributes:
            part = parts.get(attr)
            if part is None or not part.height:
                continue
            if prefilter:
                part = part.filter(~family.clean(ctx))
            if part.height:
                external = c("external") if "external" in part.columns else pl.lit(False)
                frames.append(
                    part.select("eid", "value", "kind", external.alias("external"), pl.lit(attr).alias("attr"))
                )
        if not frames:
            continue
        rows = family.derive(pl.concat(frames))
        # Every rule of the family in one pass: a column of booleans per rule, then the true ones.
        flags = rows.select(
            "eid",
            "attr",
            "value",
            *(
                (c("attr").is_in(rule.lower_attributes) & rule.check(ctx).fill_null(False)).alias(rule.code)
                for rule in applicable
                if rule.check is not None
            ),
        )
        hit = (
            flags.unpivot(index=["eid", "attr", "value"], variable_name="code", value_name="hit")
            .filter(c("hit"))
            .drop("hit")
        )
        if hit.height:
            hits.append(hit)
    if not hits:
        return pl.DataFrame(schema=HIT_SCHEMA)
    return pl.concat(hits).cast(HIT_SCHEMA)  # type: ignore[arg-type]


__all__ = ["CHECKED", "FAMILIES", "HIT_SCHEMA", "evaluate", "evaluate_parts", "with_low"]
