"""Per-value rules from data (tests/cases/values.toml), plus invariants every rule must keep."""

from __future__ import annotations

import tomllib
from pathlib import Path

import polars as pl
import pytest

from syncprep.domains import DomainPolicy
from syncprep.rules import values
from syncprep.rules.catalog import BY_CODE, RULES, select_rules
from syncprep.rules.context import CheckContext

CASES = tomllib.loads((Path(__file__).parent / "cases" / "values.toml").read_text(encoding="utf-8"))["case"]


def context(case: dict) -> CheckContext:
    return CheckContext(
        profile=case.get("profile", "m365"),
        domains=DomainPolicy.build(case.get("verified", ()), case.get("tenant")),
        strict_ascii=case.get("strict_ascii", False),
    )


def check(attribute: str, value: str, kind: str, ctx: CheckContext, *, prefilter: bool) -> list[str]:
    frame = pl.DataFrame(
        {"eid": [0], "attr": [attribute.lower()], "value": [value], "kind": [kind], "external": [kind == "contact"]},
        schema={"eid": pl.UInt32, "attr": pl.String, "value": pl.String, "kind": pl.String, "external": pl.Boolean},
    )
    hits = values.evaluate(frame, select_rules(ctx), ctx, prefilter=prefilter)
    return sorted(hits["code"].to_list())


@pytest.mark.parametrize("case", CASES, ids=[f"{c['attribute']}:{c['value'][:40]!r}" for c in CASES])
@pytest.mark.parametrize("prefilter", [True, False], ids=["prefilter", "full"])
def test_value_case(case: dict, prefilter: bool) -> None:
    ctx = context(case)
    got = check(case["attribute"], case["value"], case.get("kind", "user"), ctx, prefilter=prefilter)
    assert got == sorted(case["expect"])


def test_every_value_rule_has_a_failing_case() -> None:
    """A rule no case can trigger is a rule nobody has seen work."""
    covered = {code for case in CASES for code in case["expect"]}
    value_rules = {r.code for r in RULES if r.scope == "value"}
    assert value_rules - covered == set()


def test_codes_are_unique_and_documented() -> None:
    assert len(BY_CODE) == len(RULES)
    names = [r.name for r in RULES]
    assert len(set(names)) == len(names)
    for rule in RULES:
        assert rule.code[0].isalpha() and rule.code[1:].isdigit(), rule.code
        assert rule.name == rule.name.lower() and " " not in rule.name
        for text in (rule.summary, rule.why, rule.example, rule.fix):
            assert text.strip(), f"{rule.code} lacks documentation"
        assert rule.profiles <= {"m365", "dedicated"}
        assert (rule.check is not None) == (rule.scope == "value"), rule.code


def test_select_and_ignore() -> None:
    ctx = CheckContext()
    only_upn = select_rules(ctx, select=("U",))
    assert {r.code[0] for r in only_upn} == {"U"}
    no_dups = select_rules(ctx, ignore=("duplicate",))
    assert all(r.error.value != "duplicate" for r in no_dups)
    assert select_rules(ctx, select=("C004",))[0].code == "C004"  # opt-in rules by code
    assert all(r.code != "C004" for r in select_rules(ctx))
