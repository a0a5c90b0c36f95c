"""Rules that look at a whole object: primary SMTP address, sizes, missing attributes.

Each function takes the batch's values and object rows and returns hits (eid, attr, value, code).
A hit on something that is absent or counted carries a description instead of a value.
Ex) 18 certificates -> attr "usercertificate", value "(18 values)".
"""

from __future__ import annotations

import polars as pl

from ..schema import MAX_CERTIFICATES, MAX_GROUP_MEMBERS, MAX_THUMBNAIL_BYTES
from .catalog import Rule
from .context import CheckContext
from .scope import Parts
from .values import HIT_SCHEMA

c = pl.col


def _hits(frame: pl.DataFrame, code: str) -> pl.DataFrame:
    return frame.select("eid", "attr", "value", pl.lit(code).alias("code")).cast(HIT_SCHEMA)  # type: ignore[arg-type]


def _counted(parts: Parts, attr: str, over: int, code: str, unit: str = "values") -> pl.DataFrame:
    part = parts.get(attr)
    if part is None or part.height <= over:
        return pl.DataFrame(schema=HIT_SCHEMA)
    counts = part.group_by("eid").len().filter(c("len") > over)
    return _hits(
        counts.with_columns(
            attr=pl.lit(attr),
            value=pl.format("({} {})", c("len"), pl.lit(unit)),
        ),
        code,
    )


def primary_smtp(parts: Parts, objs: pl.DataFrame) -> pl.DataFrame:
    """P005: several primary SMTP: addresses, or SMTP addresses and none of them primary."""
    proxies = parts.get("proxyaddresses")
    if proxies is None or not proxies.height:
        return pl.DataFrame(schema=HIT_SCHEMA)
    smtp = proxies.filter(c("low").str.starts_with("smtp:"))
    if not smtp.height:
        return pl.DataFrame(schema=HIT_SCHEMA)
    smtp = smtp.with_columns(attr=pl.lit("proxyaddresses"), v=c("value").str.strip_chars())
    smtp = smtp.with_columns(primary=c("v").str.starts_with("SMTP:"))
    per = smtp.group_by("eid").agg(n=c("primary").sum())
    several = smtp.join(per.filter(c("n") > 1), on="eid").filter(c("primary"))
    # With no primary, flag the address that should become primary: the one equal to mail, else
    # the first. Ex) smtp:bob@x.com, smtp:b@x.com with mail bob@x.com -> flag smtp:bob@x.com
    none = (
        smtp.join(per.filter(c("n") == 0), on="eid")
        .join(objs.select("eid", "mail"), on="eid", how="left")
        .with_columns(
            rank=(c("v").str.slice(5).str.to_lowercase() != c("mail").str.strip_chars().str.to_lowercase())
            .fill_null(True)
            .cast(pl.Int8)
        )
        .sort("eid", "rank", maintain_order=True)
        .unique("eid", keep="first", maintain_order=True)
    )
    return pl.concat([_hits(several, "P005"), _hits(none, "P005")])


def evaluate(parts: Parts, objs: pl.DataFrame, rules: tuple[Rule, ...], ctx: CheckContext) -> pl.DataFrame:
    """Hits of the selected object rules for one batch of in-scope objects.

    ``parts`` maps attributes to their (eid, value) rows, ``objs`` has one row per object.
    """
    # D001 is also a value rule (a blank displayName); its object half finds groups without one.
    codes = {r.code for r in rules if r.scope == "object" or r.code == "D001"}
    found: list[pl.DataFrame] = []
    if "P005" in codes:
        found.append(primary_smtp(parts, objs))
    if "L001" in codes:
        found.append(_counted(parts, "usercertificate", MAX_CERTIFICATES, "L001"))
    if "L002" in codes:
        found.append(_counted(parts, "usersmimecertificate", MAX_CERTIFICATES, "L002"))
    if "L003" in codes:
        found.append(_counted(parts, "proxyaddresses", ctx.max_proxy_addresses, "L003"))
    if "L005" in codes:
        found.append(_counted(parts, "member", MAX_GROUP_MEMBERS, "L005", "members"))
    if "L004" in codes:
        photos = parts.get("thumbnailphoto", pl.DataFrame(schema={"eid": pl.UInt32, "value": pl.String})).with_columns(
            attr=pl.lit("thumbnailphoto"),
            size=(c("value").str.len_bytes() // 4 * 3 - c("value").str.count_matches("=", literal=True)),
        )
        big = photos.filter(c("size") > MAX_THUMBNAIL_BYTES)
        found.append(_hits(big.with_columns(value=pl.format("({} bytes)", c("size"))), "L004"))
    if "D001" in codes:
        groups = objs.filter((c("kind") == "group") & c("displayname").is_null())
        found.append(_hits(groups.with_columns(attr=pl.lit("displayname"), value=pl.lit("")), "D001"))

    person = c("kind").is_in(["user", "contact"])
    no_mailbox = (c("kind") == "contact") | ((c("kind") == "user") & c("homemdb").is_null())
    missing = {
        "M002": ("mail", person),
        "N004": ("mailnickname", person),
        "T003": ("targetaddress", no_mailbox),
    }
    for code, (attr, who) in missing.items():
        if code in codes:
            rows = objs.filter(who & c(attr).is_null())
            found.append(_hits(rows.with_columns(attr=pl.lit(attr), value=pl.lit("")), code))
    if "T004" in codes:
        target = c("targetaddress").str.strip_chars().str.replace(r"(?i)^smtp:", "").str.to_lowercase()
        mail = c("mail").str.strip_chars().str.to_lowercase()
        rows = objs.filter(no_mailbox & c("targetaddress").is_not_null() & c("mail").is_not_null() & (target != mail))
        found.append(_hits(rows.with_columns(attr=pl.lit("targetaddress"), value=c("targetaddress")), "T004"))
    found = [f for f in found if f.height]
    if not found:
        return pl.DataFrame(schema=HIT_SCHEMA)
    return pl.concat(found)
