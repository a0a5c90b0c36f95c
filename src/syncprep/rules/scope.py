"""Which objects a scan looks at: object kinds and the exclusions of RULES.md §1, as data.

``objects()`` turns a batch into one row per entry with the single-valued attributes that
decide kind and scope; ``skip_reason()`` is an expression over those rows that names the first
exclusion that applies (null when the object is in scope).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from ..schema import (
    CONTEXT_ATTRIBUTES,
    IDFIX_CN_PREFIXES,
    IDFIX_RECIPIENT_TYPES,
    ROLE_GROUP_BIT,
    SECURITY_GROUP_BIT,
    SYSTEM_MAILBOX_BITS,
)

c = pl.col

# objectClass values, most specific last; the highest rank present decides the kind.
# Ex) a computer is also a user (top, person, organizationalPerson, user, computer).
_KIND_RANK = {"user": 1, "inetorgperson": 1, "group": 2, "contact": 3, "computer": 4}
_KIND_NAME = {1: "user", 2: "group", 3: "contact", 4: "computer"}

OUT_OF_SCOPE_KIND = "not a user, contact or group"
COMPUTER = "computer"
OUTSIDE_BASE = "outside the selected --base-dn"


def objects(batch: pl.DataFrame) -> pl.DataFrame:
    """One row per entry: eid, dn, kind, the context attributes (first value) and mail-enabled flags."""
    dn = batch.filter(c("attr") == "dn").select("eid", c("value").alias("dn"))
    kinds = (
        batch.filter(c("attr") == "objectclass")
        .with_columns(rank=c("value").str.to_lowercase().replace_strict(_KIND_RANK, default=0, return_dtype=pl.Int8))
        .group_by("eid")
        .agg(c("rank").max())
        .with_columns(kind=c("rank").replace_strict(_KIND_NAME, default=None, return_dtype=pl.String))
        .drop("rank")
    )
    first = (
        batch.filter(c("attr").is_in(CONTEXT_ATTRIBUTES))
        .group_by("eid", "attr")
        .agg(c("value").first())
        .pivot(on="attr", index="eid", values="value")
    )
    missing = [a for a in CONTEXT_ATTRIBUTES if a not in first.columns]
    first = first.with_columns(pl.lit(None, pl.String).alias(a) for a in missing)
    proxies = batch.filter(c("attr") == "proxyaddresses")
    flags = proxies.group_by("eid").agg(
        n_proxy=pl.len(),
        smtp_at=c("value").str.contains(r"(?i)^\s*smtp:.*@").any(),
    )
    objs = (
        dn.join(kinds, on="eid", how="left")
        .join(first, on="eid", how="left")
        .join(flags, on="eid", how="left")
        .with_columns(c("n_proxy").fill_null(0), c("smtp_at").fill_null(False))
    )
    return objs


def _int(column: str) -> pl.Expr:
    return c(column).str.strip_chars().cast(pl.Int64, strict=False).fill_null(0)


def _true(column: str) -> pl.Expr:
    return c(column).str.strip_chars().str.to_uppercase() == "TRUE"


def _istarts(column: str, *prefixes: str) -> pl.Expr:
    low = c(column).str.to_lowercase()
    expr = pl.lit(False)
    for p in prefixes:
        expr = expr | low.str.starts_with(p.lower())
    return expr.fill_null(False)


@dataclass(frozen=True)
class Exclusion:
    """One reason Entra Connect (or IdFix) leaves an object out of sync."""

    reason: str
    kinds: tuple[str, ...]
    when: Callable[[], pl.Expr]


_CNF = r"(?i)\\0ACNF:|\nCNF:"
_MAIL_AT = c("mail").str.contains("@", literal=True).fill_null(False)

ENTRA: tuple[Exclusion, ...] = (
    Exclusion("isCriticalSystemObject is TRUE", (), lambda: _true("iscriticalsystemobject")),
    Exclusion("conflict object (CNF in the DN)", (), lambda: c("dn").str.contains(_CNF)),
    Exclusion("user without sAMAccountName", ("user",), lambda: c("samaccountname").is_null()),
    Exclusion(
        "sync service account (AAD_/MSOL_) or SUPPORT_388945a0",
        ("user",),
        lambda: _istarts("samaccountname", "AAD_", "MSOL_")
        | (c("samaccountname").str.to_lowercase() == "support_388945a0").fill_null(False),
    ),
    Exclusion("system mailbox (SystemMailbox{...})", ("user",), lambda: _istarts("mailnickname", "SystemMailbox{")),
    Exclusion(
        "Exchange CAS_{...} object",
        ("user", "contact"),
        lambda: (_istarts("mailnickname", "CAS_") & c("mailnickname").str.contains("}", literal=True).fill_null(False))
        | (_istarts("samaccountname", "CAS_") & c("samaccountname").str.contains("}", literal=True).fill_null(False)),
    ),
    Exclusion(
        "system, arbitration, discovery or public-folder mailbox (msExchRecipientTypeDetails)",
        ("user",),
        lambda: (_int("msexchrecipienttypedetails") & SYSTEM_MAILBOX_BITS) != 0,
    ),
    Exclusion("contact that is not mail-enabled", ("contact",), lambda: ~c("smtp_at") & ~_MAIL_AT),
    Exclusion(
        "directory-sync contact ((MSOL) hidden from address lists)",
        ("contact",),
        lambda: c("displayname").str.contains("(MSOL)", literal=True).fill_null(False)
        & _true("msexchhidefromaddresslists").fill_null(False),
    ),
    Exclusion(
        "MSOL_AD_Sync_RichCoexistence group",
        ("group",),
        lambda: (c("samaccountname").str.to_lowercase() == "msol_ad_sync_richcoexistence").fill_null(False),
    ),
    Exclusion("role group (msExchRecipientTypeDetails)", ("group",), lambda: (_int("msexchrecipienttypedetails") & ROLE_GROUP_BIT) != 0),
    Exclusion(
        "distribution group that is not mail-enabled",
        ("group",),
        lambda: ((_int("grouptype") & SECURITY_GROUP_BIT) == 0) & (c("n_proxy") == 0) & c("mail").is_null(),
    ),
)

IDFIX: tuple[Exclusion, ...] = (
    Exclusion("cn ends with $ (IdFix)", (), lambda: c("cn").str.ends_with("$").fill_null(False)),
    Exclusion("well-known name prefix (IdFix)", (), lambda: _istarts("cn", *IDFIX_CN_PREFIXES)),
    ENTRA[1],
    ENTRA[0],
    Exclusion(
        "Exchange system recipient type (IdFix)",
        (),
        lambda: _int("msexchrecipienttypedetails").is_in(list(IDFIX_RECIPIENT_TYPES)),
    ),
    Exclusion(
        "security group without mail (IdFix)",
        ("group",),
        lambda: ((_int("grouptype") & SECURITY_GROUP_BIT) != 0) & c("mail").is_null(),
    ),
    Exclusion(
        "group without proxyAddresses (IdFix)",
        ("group",),
        lambda: ((_int("grouptype") & SECURITY_GROUP_BIT) == 0) & (c("n_proxy") == 0),
    ),
)

EXCLUSIONS = {"entra": ENTRA, "idfix": IDFIX, "none": ()}


def normalize_dn(dn: pl.Expr) -> pl.Expr:
    """Lower case, without the optional spaces around ',' and '='. Ex) "CN=Bob, OU=X" -> "cn=bob,ou=x"."""
    return dn.str.to_lowercase().str.replace_all(r"\s*([,=])\s*", "$1")


def normalize_dn_text(dn: str) -> str:
    import re

    return re.sub(r"\s*([,=])\s*", r"\1", dn.lower()).strip()


def skip_reason(exclusions: str, base_dns: tuple[str, ...] = ()) -> pl.Expr:
    """The first reason an object is out of scope, or null."""
    expr = pl.when(c("kind").is_null()).then(pl.lit(OUT_OF_SCOPE_KIND))
    expr = expr.when(c("kind") == "computer").then(pl.lit(COMPUTER))
    if base_dns:
        suffixes = [normalize_dn_text(b) for b in base_dns]
        norm = normalize_dn(c("dn"))
        inside = pl.lit(False)
        for s in suffixes:
            inside = inside | (norm == s) | norm.str.ends_with("," + s)
        expr = expr.when(~inside).then(pl.lit(OUTSIDE_BASE))
    for ex in EXCLUSIONS[exclusions]:
        cond = ex.when()
        if ex.kinds:
            cond = c("kind").is_in(list(ex.kinds)) & cond
        expr = expr.when(cond.fill_null(False)).then(pl.lit(ex.reason))
    return expr.otherwise(pl.lit(None, pl.String))
