"""The scan: sources -> entries -> rules -> findings.

Batches of whole entries flow through scope, per-value rules, object rules and key extraction
one at a time, so memory holds one batch plus what must outlive it: the duplicate index, the
hits, and one small row per object in scope. Once every source is read, duplicates are resolved
across all of them and hits become findings with their suggested fixes.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import polars as pl

from .domains import DomainPolicy
from .fixes import Suggestion, suggest
from .model import Action, ErrorType, Finding, Holder, ObjectKind, Safety, Severity, Skipped
from .rules import duplicates, objects, scope, values
from .rules.catalog import BY_CODE, RULES, Rule, select_rules
from .rules.context import CheckContext, parse_suffix_map
from .schema import ANCHOR_ATTRIBUTES, CONTEXT_ATTRIBUTES, canonical
from .sources.base import Progress, Source, no_progress

c = pl.col

# Attributes read only through the object rows (scope, kind, mailbox), never value by value.
_OBJECT_ONLY = frozenset({"dn", "objectclass", *CONTEXT_ATTRIBUTES}) - values.CHECKED
_ORDER = {r.code: i for i, r in enumerate(RULES)}
# LDIF reader batches joined into one rules batch (see _joined).
RULE_BATCHES = 2
_ERROR_ORDER = {e: i for i, e in enumerate(ErrorType)}


@dataclass(frozen=True)
class ScanOptions:
    """Everything a scan can be told; the CLI and the library build the same value."""

    profile: str = "m365"
    verified_domains: tuple[str, ...] = ()
    tenant: str | None = None
    upn_suffix_map: tuple[str, ...] = ()
    exclusions: str = "entra"
    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    base_dns: tuple[str, ...] = ()
    strict_ascii: bool = False
    max_proxy_addresses: int = 300

    def context(self) -> CheckContext:
        return CheckContext(
            profile=self.profile,
            domains=DomainPolicy.build(self.verified_domains, self.tenant),
            upn_suffix_map=parse_suffix_map(self.upn_suffix_map),
            exclusions=self.exclusions,
            strict_ascii=self.strict_ascii,
            max_proxy_addresses=self.max_proxy_addresses,
        )


@dataclass
class ScanResult:
    """What a scan found, and what it looked at."""

    findings: list[Finding]
    skipped: Counter[str]
    skipped_objects: list[Skipped]
    objects_read: int
    objects_in_scope: int
    sources: tuple[str, ...]
    rules: tuple[Rule, ...]
    options: ScanOptions
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """0 when clean, 1 when there are findings (2 is for errors, raised instead)."""
        return 1 if self.findings else 0


def needed_attributes(rules: Sequence[Rule]) -> frozenset[str]:
    """What sources must read for these rules: kind, scope, context and checked attributes."""
    attrs = {"objectclass", *CONTEXT_ATTRIBUTES, *values.CHECKED}
    for rule in rules:
        attrs.update(rule.lower_attributes)
    if any(r.code == "A001" for r in rules):
        attrs.update(ANCHOR_ATTRIBUTES)
    return frozenset(attrs)


@dataclass
class _State:
    """What outlives a batch."""

    hits: list[pl.DataFrame] = field(default_factory=list)
    index: duplicates.Index = field(default_factory=duplicates.Index)
    same_object: list[pl.DataFrame] = field(default_factory=list)
    objects: list[pl.DataFrame] = field(default_factory=list)
    context: list[pl.DataFrame] = field(default_factory=list)
    skipped: list[pl.DataFrame] = field(default_factory=list)
    read: int = 0


def scan(
    sources: Sequence[Source],
    options: ScanOptions | None = None,
    progress: Callable[[Source], Progress] | None = None,
) -> ScanResult:
    """Scan sources together (duplicates span all of them) and return the findings."""
    options = options or ScanOptions()
    started = time.perf_counter()
    ctx = options.context()
    rules = select_rules(ctx, options.select, options.ignore)
    attributes = needed_attributes(rules)
    state = _State()
    try:
        for source in sources:
            report = progress(source) if progress else no_progress
            part_batches = getattr(source, "part_batches", None)
            # LDIF batches are cut by lines (about 26,000 objects) and reach the rules in pairs;
            # the other sources' batches are large enough as they come.
            batches: Iterable[scope.Parts] = (
                _joined(part_batches(attributes, report), RULE_BATCHES)
                if part_batches is not None
                else (scope.partition(batch) for batch in source.batches(attributes, report))
            )
            for parts in batches:
                _process(parts, state, rules, ctx, options)
        findings = _findings(state, rules, ctx)
    finally:
        state.index.close()
    skipped_frame = (
        pl.concat(state.skipped) if state.skipped else pl.DataFrame(schema={"dn": pl.String, "reason": pl.String})
    )
    counts = Counter(dict(skipped_frame.group_by("reason").len().iter_rows()))
    in_scope = sum(f.height for f in state.objects)
    return ScanResult(
        findings=findings,
        skipped=counts,
        skipped_objects=[Skipped(dn, reason) for dn, reason in skipped_frame.iter_rows()],
        objects_read=state.read,
        objects_in_scope=in_scope,
        sources=tuple(s.name for s in sources),
        rules=rules,
        options=options,
        seconds=time.perf_counter() - started,
    )


def _process(
    parts: scope.Parts, state: _State, rules: tuple[Rule, ...], ctx: CheckContext, options: ScanOptions
) -> None:
    """Scope, value rules, object rules and duplicate keys for one batch of whole entries.

    Entries are numbered 0..n-1 within the batch, so per-entry columns are gathered by number
    instead of joined; numbers become scan-wide (+ offset) only in what is kept.
    """
    codes = {r.code for r in rules}
    offset = state.read
    n = parts["dn"].height
    # Lazy, so sub-expressions the exclusions share (a lower-cased name, a parsed number) run once.
    objs = (
        scope.objects(parts, n)
        .lazy()
        .with_columns(reason=scope.skip_reason(ctx.exclusions, options.base_dns))
        .collect()
    )
    state.read += n
    inscope_mask = objs["reason"].is_null()
    skipped = objs.filter(~inscope_mask)
    if skipped.height:
        state.skipped.append(_own(skipped.select("dn", "reason")))
    inscope = objs.filter(inscope_mask)
    mailbox = (
        c("homemdb").is_not_null()
        | c("msexchmailboxguid").is_not_null()
        | c("msexchrecipienttypedetails").is_in(["1", "2147483648"]).fill_null(False)
    )
    state.objects.append(
        _own(inscope.select((c("eid") + offset).alias("eid"), "dn", "cn", "kind", mailbox.alias("mailbox")))
    )

    kind = objs["kind"]
    # Contacts and mail users carry other organisations' addresses by design.
    # Ex) a mail user forwarding to "ann@partner.com" (targetAddress outside the tenant).
    external = (
        objs.select(
            (c("kind") == "contact")
            | (
                (c("kind") == "user")
                & c("homemdb").is_null()
                & c("targetaddress").is_not_null()
                & ~c("targetaddress").str.to_lowercase().str.contains("onmicrosoft.com", literal=True).fill_null(False)
            )
        )
        .to_series()
        .fill_null(False)
    )
    checked: dict[str, pl.DataFrame] = {}
    for attr, part in parts.items():
        if attr in _OBJECT_ONLY:
            continue
        part = part.filter(inscope_mask.gather(part["eid"]))
        if attr in values.CHECKED:
            part = part.with_columns(kind=kind.gather(part["eid"]), external=external.gather(part["eid"]))
        checked[attr] = values.with_low(part) if attr == "proxyaddresses" else part

    value_hits = values.evaluate_parts(checked, rules, ctx)
    object_hits = objects.evaluate(checked, inscope, rules, ctx)

    error_codes = [r.code for r in rules if r.severity_in(ctx.profile) == Severity.ERROR]
    bad_upn = value_hits.filter((c("attr") == "userprincipalname") & c("code").is_in(error_codes))["eid"]
    no_valid_upn = inscope.filter(
        c("kind").is_in(["user", "group"]) & (c("userprincipalname").is_null() | c("eid").is_in(bad_upn.implode()))
    )["eid"]
    keys, same = duplicates.keys(checked, no_valid_upn, codes)
    state.index.add(keys.with_columns(c("eid") + offset))
    if same.height:
        state.same_object.append(_own(same.with_columns(c("eid") + offset)))

    hits = pl.concat([value_hits, object_hits])
    if hits.height:
        state.hits.append(_own(hits.with_columns(c("eid") + offset)))
    flagged = pl.concat([hits["eid"], same["eid"]]).unique()
    if flagged.len():
        context = _context(checked.get("proxyaddresses"), inscope, flagged)
        state.context.append(_own(context.with_columns(c("eid") + offset)))


def _joined(batches: Iterable[scope.Parts], k: int) -> Iterator[scope.Parts]:
    """Every k batches of a source as one: the rules cost less per object on larger batches.

    Ex) k=2: a reader's batches of 26,000 objects reach the rules as batches of 52,000.
    """
    group: list[scope.Parts] = []
    for parts in batches:
        group.append(parts)
        if len(group) == k:
            yield _join(group)
            group = []
    if group:
        yield _join(group)


def _join(group: list[scope.Parts]) -> scope.Parts:
    if len(group) == 1:
        return group[0]
    pieces: dict[str, list[pl.DataFrame]] = defaultdict(list)
    offset = 0
    for parts in group:
        for attr, part in parts.items():
            pieces[attr].append(part.with_columns(c("eid") + offset) if offset else part)
        offset += parts["dn"].height
    return {attr: pl.concat(frames) for attr, frames in pieces.items()}


def _own(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with its text in buffers of its own.

    A filtered or gathered string column still points into the batch it came from, which keeps
    every byte of that batch alive; what outlives a batch is copied so the batch can go.
    """
    text = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not text:
        return frame
    return frame.with_columns(pl.concat_str([c(name), pl.lit("")]).alias(name) for name in text)


def _context(proxies: pl.DataFrame | None, inscope: pl.DataFrame, eids: pl.Series) -> pl.DataFrame:
    """What fixes read about an object: its names, mail and primary SMTP address(es)."""
    rows = inscope.filter(c("eid").is_in(eids.implode())).select(
        "eid", "cn", "givenname", "sn", "mail", "userprincipalname", "mailnickname", "kind"
    )
    if proxies is None or not proxies.height:
        return rows.with_columns(
            primary=pl.lit(None, pl.String), primaries=pl.lit(None, pl.String), addresses=pl.lit(None, pl.String)
        )
    primaries = (
        proxies.filter(c("eid").is_in(eids.implode()) & c("value").str.strip_chars().str.starts_with("SMTP:"))
        .group_by("eid")
        .agg(
            primary=c("value").str.strip_chars().str.slice(5).first(),
            primaries=c("low").str.slice(5).str.join("\n"),
        )
    )
    held = (
        proxies.filter(c("eid").is_in(eids.implode()))
        .group_by("eid")
        .agg(addresses=c("low").str.strip_chars().str.join("\n"))
    )
    return rows.join(primaries, on="eid", how="left").join(held, on="eid", how="left")


def _cn(dn: str, cn: str | None) -> str:
    if cn:
        return cn
    first = dn.split(",", 1)[0]
    return first.split("=", 1)[1] if "=" in first else first


def _findings(state: _State, rules: tuple[Rule, ...], ctx: CheckContext) -> list[Finding]:
    objects_table = (
        pl.concat(state.objects)
        if state.objects
        else pl.DataFrame(
            schema={"eid": pl.UInt32, "dn": pl.String, "cn": pl.String, "kind": pl.String, "mailbox": pl.Boolean}
        )
    )
    dup_rows = pl.concat([state.index.find(), *state.same_object])
    hit_rows = pl.concat(state.hits) if state.hits else pl.DataFrame(schema=values.HIT_SCHEMA)
    rows = pl.concat([hit_rows.with_columns(group=pl.lit(None, pl.String)), dup_rows])
    if not rows.height:
        return []

    objects_by_eid = objects_table.filter(c("eid").is_in(rows["eid"].unique().implode()))
    info = {eid: (dn, cn, kind, mailbox) for eid, dn, cn, kind, mailbox in objects_by_eid.iter_rows()}
    context: dict[int, dict[str, str | None]] = {}
    if state.context:
        for row in pl.concat(state.context).unique("eid").iter_rows(named=True):
            context[row["eid"]] = row

    groups: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for eid, attr, value, _code, group in dup_rows.iter_rows():
        groups[group].append((eid, attr, value))
    keepers = {g: _keeper(members, info) for g, members in groups.items()}

    merged = rows.group_by("eid", "attr", "value", maintain_order=True).agg(
        c("code").unique(maintain_order=True), c("group").drop_nulls().unique(maintain_order=True)
    )
    drafts: list[tuple[int, str, str, list[str], list[str]]] = list(merged.sort("eid", maintain_order=True).iter_rows())
    out: list[Finding] = []
    verdicts: dict[tuple[str, ...], tuple[list[str], tuple[ErrorType, ...], Severity]] = {}
    for eid, attr, value, codes, group_ids in drafts:
        dn, cn, kind, _mailbox = info[eid]
        # Findings share a few combinations of rules: each is ordered and judged once.
        verdict = verdicts.get(key := tuple(codes))
        if verdict is None:
            verdict = verdicts[key] = _verdict(codes, ctx)
        ordered, errors, severity = verdict
        holders: tuple[Holder, ...] = ()
        if group_ids:
            members = sorted(
                {m for g in group_ids for m in groups[g]}, key=lambda m: (info[m[0]][0].lower(), m[1], m[2])
            )
            holders = tuple(Holder(info[m][0], canonical(a), ObjectKind(info[m][2])) for m, a, _v in members)
            fix = _duplicate_fix(eid, value, group_ids, keepers, members, info)
        else:
            fix = suggest(attr, value, frozenset(errors), frozenset(ordered), context.get(eid, {}), ctx)
        out.append(
            Finding(
                dn=dn,
                cn=_cn(dn, cn),
                object_class=ObjectKind(kind),
                attribute=canonical(attr),
                value=value,
                errors=errors,
                rule=ordered[0],
                rules=tuple(ordered),
                severity=severity,
                update=fix.update,
                safety=fix.safety,
                action=fix.action,
                holders=holders,
                note=fix.note,
            )
        )
    return _validate_updates(out, rules, ctx)


def _verdict(codes: Iterable[str], ctx: CheckContext) -> tuple[list[str], tuple[ErrorType, ...], Severity]:
    """The rules of a finding in catalogue order, its error types, and its severity."""
    ordered = sorted(set(codes), key=lambda code: _ORDER[code])
    errors = tuple(sorted({BY_CODE[code].error for code in ordered}, key=lambda e: _ERROR_ORDER[e]))
    strict = any(BY_CODE[code].severity_in(ctx.profile) == Severity.ERROR for code in ordered)
    return ordered, errors, Severity.ERROR if strict else Severity.WARNING


def _keeper(members: list[tuple[int, str, str]], info: Mapping[int, tuple[str, str | None, str, bool]]) -> int | None:
    """Who should keep a shared value, or None when no holder stands out.

    First the objects whose mail, UPN, primary SMTP address or own objectGUID it is; among those
    the one holding it in more attributes (mail = primary = UPN is a consistent owner); then the
    mailbox-enabled one. Ex) A has mail and SMTP: bob@x, B has only SMTP: bob@x -> A keeps it.
    """
    own: dict[int, int] = defaultdict(int)
    count: dict[int, int] = defaultdict(int)
    for eid, attr, value in members:
        count[eid] += 1
        if attr in ("mail", "userprincipalname", "objectguid") or value.strip().startswith("SMTP:"):
            own[eid] = 1
    best = {eid: (own[eid], count[eid], int(info[eid][3])) for eid in count}
    if len(best) == 1:
        return None
    top = max(best.values())
    leaders = [eid for eid, rank in best.items() if rank == top]
    return leaders[0] if len(leaders) == 1 else None


def _duplicate_fix(
    eid: int,
    value: str,
    group_ids: Iterable[str],
    keepers: Mapping[str, int | None],
    members: list[tuple[int, str, str]],
    info: Mapping[int, tuple[str, str | None, str, bool]],
) -> Suggestion:
    ids = list(group_ids)
    kinds = {info[m[0]][2] for m in members}
    mismatch = " ObjectTypeMismatch: held by a " + " and a ".join(sorted(kinds)) + "." if len(kinds) > 1 else ""
    others = sorted({info[m[0]][0] for m in members if m[0] != eid})
    if ids[0].startswith("X002:"):
        # Keep the primary copy (or the first), remove the others. Ex) SMTP:a@x kept, smtp:A@x removed.
        copies = [m for m in members if m[0] == eid]
        keep = next((m for m in copies if m[2].strip().startswith("SMTP:")), copies[0])
        if value == keep[2]:
            return Suggestion(
                None, Safety.MANUAL, Action.COMPLETE, "keep this copy; the object holds the address twice"
            )
        return Suggestion(None, Safety.MANUAL, Action.REMOVE, f"extra copy of {keep[2]}")
    keeper = keepers.get(ids[0])
    if keeper is None:
        where = f" also held by {len(others)} other object(s)" if others else ""
        return Suggestion(
            None, Safety.MANUAL, Action.EDIT, f"decide which holder keeps it:{where}.{mismatch}".replace(":.", ".")
        )
    if keeper == eid:
        return Suggestion(
            None,
            Safety.MANUAL,
            Action.COMPLETE,
            f"keep: this object should hold it; REMOVE it from the others.{mismatch}",
        )
    attrs = {m[1] for m in members if m[0] == eid}
    if attrs == {"objectguid"}:
        return Suggestion(
            None,
            Safety.MANUAL,
            Action.EDIT,
            f"objectGUID cannot change: clear mS-DS-ConsistencyGuid on {info[keeper][0]}.{mismatch}",
        )
    return Suggestion(None, Safety.MANUAL, Action.REMOVE, f"{info[keeper][0]} keeps it.{mismatch}")


def _validate_updates(findings: list[Finding], rules: tuple[Rule, ...], ctx: CheckContext) -> list[Finding]:
    """Drop suggestions that would themselves break a rule; they become manual."""
    proposed = [(i, f) for i, f in enumerate(findings) if f.update is not None]
    if not proposed:
        return findings
    frame = pl.DataFrame(
        {
            "eid": [i for i, _ in proposed],
            "attr": [f.attribute.lower() for _, f in proposed],
            "value": [f.update for _, f in proposed],
            "kind": [f.object_class.value for _, f in proposed],
        },
        schema={"eid": pl.UInt32, "attr": pl.String, "value": pl.String, "kind": pl.String},
    )
    strict = tuple(r for r in rules if r.severity_in(ctx.profile) == Severity.ERROR)
    failing = set(values.evaluate(frame, strict, ctx)["eid"].to_list())
    if not failing:
        return findings
    note = "no automatic fix passes every check: edit by hand"
    out = list(findings)
    for i in failing:
        out[i] = replace(out[i], update=None, safety=Safety.MANUAL, action=Action.EDIT, note=note)
    return out
