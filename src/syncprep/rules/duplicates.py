"""Duplicates as the cloud sees them: one namespace across attributes, object kinds and sources.

Each batch contributes key rows: a 64-bit hash of the comparison key, the entry, the attribute
and the raw value. Once every source is read, hashes held by two or more entries are candidates;
their keys are recomputed and compared exactly, so a hash collision can never report a false
duplicate. Namespaces (RULES.md §3):

    X001  addresses: userPrincipalName, mail, SMTP proxy addresses (prefix removed), case-insensitive
    X003  SIP: SIP proxy addresses and msRTCSIP-PrimaryUserAddress
    X004  mailNickname          X005  targetAddress        X006  other proxy types, within type
    X007  sAMAccountName, for objects without a valid UPN
    A001  source anchor: mS-DS-ConsistencyGuid when set, else objectGUID (exact bytes)
"""

from __future__ import annotations

import polars as pl

c = pl.col

KEY_SCHEMA = {"h": pl.UInt64, "eid": pl.UInt32, "attr": pl.String, "value": pl.String, "code": pl.String}
DUP_SCHEMA = {"eid": pl.UInt32, "attr": pl.String, "value": pl.String, "code": pl.String, "group": pl.String}


def _key(frame: pl.DataFrame) -> pl.Expr:
    """The comparison key of a row, from its attribute, value and namespace code."""
    low = c("value").str.strip_chars().str.to_lowercase()
    proxy = c("attr") == "proxyaddresses"
    return (
        pl.when(c("code") == "A001")
        .then(c("value"))
        .when(proxy & (c("code") == "X001"))
        .then(low.str.slice(5))
        .when(proxy & (c("code") == "X003"))
        .then(low.str.slice(4))
        .when(c("attr") == "msrtcsip-primaryuseraddress")
        .then(low.str.replace(r"^sip:", ""))
        .when(c("attr") == "targetaddress")
        .then(low.str.replace(r"^smtp:", ""))
        .otherwise(low)
    )


def _rows(frame: pl.DataFrame, code: str, key: pl.Expr) -> pl.DataFrame:
    return (
        frame.with_columns(k=key)
        .filter(c("k").is_not_null() & (c("k") != ""))
        .select(c("k").hash().alias("h"), "eid", "attr", "value", pl.lit(code).alias("code"))
    )


def keys(values: pl.DataFrame, objs: pl.DataFrame, no_valid_upn: pl.Series, codes: set[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Key rows of one batch, and same-object duplicates (X002) as dup rows."""
    parts: list[pl.DataFrame] = []
    low = c("value").str.strip_chars().str.to_lowercase()
    same_object = pl.DataFrame(schema=DUP_SCHEMA)

    proxies = values.filter(c("attr") == "proxyaddresses").with_columns(low=low)
    smtp = proxies.filter(c("low").str.starts_with("smtp:")).with_columns(k=c("low").str.slice(5))
    if "X001" in codes:
        addresses = values.filter(c("attr").is_in(["userprincipalname", "mail"]))
        parts.append(_rows(addresses, "X001", low))
        parts.append(_rows(smtp, "X001", c("k")))
    if "X002" in codes and smtp.height:
        twice = smtp.filter(pl.len().over("eid", "k") > 1)
        if twice.height:
            same_object = twice.select(
                "eid", "attr", "value", pl.lit("X002").alias("code"),
                pl.format("X002:{}:{}", c("eid"), c("k")).alias("group"),
            )
    sip = proxies.filter(c("low").str.starts_with("sip:"))
    if "X003" in codes:
        parts.append(_rows(sip, "X003", c("low").str.slice(4)))
        primary_sip = values.filter(c("attr") == "msrtcsip-primaryuseraddress")
        parts.append(_rows(primary_sip, "X003", low.str.replace(r"^sip:", "")))
    if "X006" in codes:
        other = proxies.filter(~c("low").str.starts_with("smtp:") & ~c("low").str.starts_with("sip:"))
        parts.append(_rows(other, "X006", c("low")))
    if "X004" in codes:
        parts.append(_rows(values.filter(c("attr") == "mailnickname"), "X004", low))
    if "X005" in codes:
        parts.append(_rows(values.filter(c("attr") == "targetaddress"), "X005", low.str.replace(r"^smtp:", "")))
    if "X007" in codes and no_valid_upn.len():
        sams = values.filter((c("attr") == "samaccountname") & c("eid").is_in(no_valid_upn.implode()))
        parts.append(_rows(sams, "X007", low))
    if "A001" in codes:
        guid = values.filter(c("attr") == "ms-ds-consistencyguid").unique("eid", keep="first")
        object_guid = values.filter((c("attr") == "objectguid") & ~c("eid").is_in(guid["eid"].implode()))
        parts.append(_rows(pl.concat([guid, object_guid]), "A001", c("value")))
    parts = [p for p in parts if p.height]
    frame = pl.concat(parts) if parts else pl.DataFrame(schema=KEY_SCHEMA)
    return frame.cast(KEY_SCHEMA), same_object  # type: ignore[arg-type]


def find(all_keys: pl.DataFrame) -> pl.DataFrame:
    """Rows of every value held by two or more entries: eid, attr, value, code, group."""
    if not all_keys.height:
        return pl.DataFrame(schema=DUP_SCHEMA)
    holders = all_keys.select("h", "eid").unique()
    shared = holders.filter(c("h").is_duplicated()).get_column("h").unique()
    candidates = all_keys.filter(c("h").is_in(shared.implode()))
    if not candidates.height:
        return pl.DataFrame(schema=DUP_SCHEMA)
    exact = candidates.with_columns(k=_key(candidates))
    groups = (
        exact.filter(c("eid").n_unique().over("code", "k") > 1)
        .with_columns(group=pl.format("{}:{}", c("code"), c("k")))
        .select("eid", "attr", "value", "code", "group")
    )
    return groups.cast(DUP_SCHEMA)  # type: ignore[arg-type]
