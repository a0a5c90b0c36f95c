"""Which objects a scan looks at: object kinds and the exclusions of RULES.md §1, as data.

``objects()`` turns a batch into one row per entry with the single-valued attributes that
decide kind and scope; ``skip_reason()`` is an expression over those rows that names the first
exclusion that applies (null when the object is in scope).
"""

from __future__ import annotations

import re
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


Parts = dict[str, pl.DataFrame]


def partition(batch: pl.DataFrame) -> Parts:
    """A batch split by attribute: {"mail": frame of (eid, value), ...}."""
    return {key[0]: frame for key, frame in batch.partition_by("attr", as_dict=True, include_key=False).items()}  # type: ignore[misc]


def dense(part: pl.DataFrame | None, n: int, column: str = "value") -> pl.Series:
    """One value per entry 0..n-1 (the first when there are several), null where absent.

    Batches number their entries densely, so this is a scatter and a gather instead of a pivot.
    """
    if part is None or not part.height:
        dtype = part.schema[column] if part is not None else pl.String
        return pl.repeat(None, n, dtype=dtype, eager=True)
    rows = part.height
    # Scatter in reverse so the first value of an entry is written last and wins.
    positions = pl.repeat(None, n, dtype=pl.UInt32, eager=True).scatter(
        part["eid"].reverse(), pl.int_range(rows, dtype=pl.UInt32, eager=True).reverse()
    )
    return part[column].gather(positions)


def counts(part: pl.DataFrame | None, n: int) -> pl.Series:
    """How many values each entry 0..n-1 has."""
    if part is None or not part.height:
        return pl.repeat(0, n, dtype=pl.UInt32, eager=True)
    per = part.group_by("eid").len()
    return pl.repeat(0, n, dtype=pl.UInt32, eager=True).scatter(per["eid"], per["len"].cast(pl.UInt32))


def objects(parts: Parts, n: int) -> pl.DataFrame:
    """One row per entry (row i is entry i): dn, kind, the context attributes, mail-enabled flags."""
    classes = parts.get("objectclass")
    kind = pl.repeat(None, n, dtype=pl.String, eager=True)
    if classes is not None and classes.height:
        ranked = (
            classes.with_columns(
                rank=c("value").str.to_lowercase().replace_strict(_KIND_RANK, default=0, return_dtype=pl.Int8)
            )
            .filter(c("rank") > 0)
            .sort("rank")
        )
        # Highest rank written last wins. Ex) top, person, user, computer -> computer
        kind = kind.scatter(ranked["eid"], ranked["rank"].replace_strict(_KIND_NAME, return_dtype=pl.String))
    columns = {a: dense(parts.get(a), n) for a in CONTEXT_ATTRIBUTES}
    objs = pl.DataFrame({"dn": dense(parts.get("dn"), n), "kind": kind, **columns})
    proxies = parts.get("proxyaddresses")
    n_proxy = counts(proxies, n)
    smtp_at = pl.repeat(False, n, dtype=pl.Boolean, eager=True)
    if proxies is not None and proxies.height:
        # Only contacts need it (RULES.md §1.1): test their proxies alone.
        contact = (kind == "contact").fill_null(False)
        mine = proxies.filter(contact.gather(proxies["eid"]))
        hits = mine.filter(c("value").str.contains(r"(?i)^\s*smtp:.*@"))["eid"].unique()
        smtp_at = smtp_at.scatter(hits, True)
    return objs.with_columns(n_proxy=n_proxy, smtp_at=smtp_at).with_row_index("eid")


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
        lambda: (
            _istarts("samaccountname", "AAD_", "MSOL_")
            | (c("samaccountname").str.to_lowercase() == "support_388945a0").fill_null(False)
        ),
    ),
    Exclusion("system mailbox (SystemMailbox{...})", ("user",), lambda: _istarts("mailnickname", "SystemMailbox{")),
    Exclusion(
        "Exchange CAS_{...} object",
        ("user", "contact"),
        lambda: (
            (_istarts("mailnickname", "CAS_") & c("mailnickname").str.contains("}", literal=True).fill_null(False))
            | (
                _istarts("samaccountname", "CAS_")
                & c("samaccountname").str.contains("}", literal=True).fill_null(False)
            )
        ),
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
        lambda: (
            c("displayname").str.contains("(MSOL)", literal=True).fill_null(False)
            & _true("msexchhidefromaddresslists").fill_null(False)
        ),
    ),
    Exclusion(
        "MSOL_AD_Sync_RichCoexistence group",
        ("group",),
        lambda: (c("samaccountname").str.to_lowercase() == "msol_ad_sync_richcoexistence").fill_null(False),
    ),
    Exclusion(
        "role group (msExchRecipientTypeDetails)",
        ("group",),
        lambda: (_int("msexchrecipienttypedetails") & ROLE_GROUP_BIT) != 0,
    ),
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
    return re.sub(r"\s*([,=])\s*", r"\1", dn.lower()).strip()


def skip_reason(exclusions: str, base_dns: tuple[str, ...] = ()) -> pl.Expr:
    """The first reason an object is out of scope, or null."""
    reasons: list[tuple[pl.Expr, str]] = [
        (c("kind").is_null(), OUT_OF_SCOPE_KIND),
        (c("kind") == "computer", COMPUTER),
    ]
    if base_dns:
        norm = normalize_dn(c("dn"))
        inside = pl.lit(False)
        for suffix in (normalize_dn_text(b) for b in base_dns):
            inside = inside | (norm == suffix) | norm.str.ends_with("," + suffix)
        reasons.append((~inside, OUTSIDE_BASE))
    for ex in EXCLUSIONS[exclusions]:
        cond = ex.when()
        if ex.kinds:
            cond = c("kind").is_in(list(ex.kinds)) & cond
        reasons.append((cond, ex.reason))
    return pl.coalesce([pl.when(cond.fill_null(False)).then(pl.lit(reason)) for cond, reason in reasons])
