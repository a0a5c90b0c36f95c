"""The fast "clean" patterns must never hide a finding: prefiltered and full checks agree."""

from __future__ import annotations

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncprep.domains import DomainPolicy
from syncprep.rules import values
from syncprep.rules.catalog import select_rules
from syncprep.rules.context import CheckContext

ATTRIBUTES = [
    "userprincipalname",
    "mail",
    "mailnickname",
    "proxyaddresses",
    "targetaddress",
    "samaccountname",
    "displayname",
    "givenname",
    "sn",
    "msrtcsip-primaryuseraddress",
]
# Pieces that make values land near the edges of the patterns.
PIECES = st.sampled_from(
    [
        "bob",
        "a",
        "x" * 20,
        "y" * 21,
        "z" * 63,
        ".",
        "..",
        "@",
        "@@",
        "-",
        "_",
        "'",
        "+",
        "&",
        "#",
        "~",
        " ",
        "  ",
        "\t",
        "\u200b",
        "\u00a0",
        "\u00ad",
        "é",
        "ü",
        "李",
        ":",
        ";",
        ",",
        "<",
        ">",
        "(",
        ")",
        "[",
        "]",
        '"',
        "\\",
        "contoso",
        "contoso.com",
        "com",
        "local",
        ".local",
        ".com",
        ".co.uk",
        "xn--mller-kva.de",
        "mail.onmicrosoft.com",
        "fabrikam.onmicrosoft.com",
        "contoso.mail.onmicrosoft.com",
        "microsoftonline.com",
        "SMTP:",
        "smtp:",
        "Smtp:",
        "X500:",
        "x500:/o=Org/cn=",
        "X400:",
        "SIP:",
        "sip:",
        "EUM:",
        "oldbrand.com",
        "a" * 50,
        "b" * 12 + ".",
    ]
)
VALUE = st.lists(PIECES, min_size=1, max_size=8).map("".join)
ROW = st.tuples(st.sampled_from(ATTRIBUTES), VALUE, st.sampled_from(["user", "contact", "group"]))
CONTEXTS = [
    CheckContext(),
    CheckContext(profile="dedicated"),
    CheckContext(domains=DomainPolicy.build(["contoso.com", "contoso.mail.onmicrosoft.com"], "contoso")),
    CheckContext(strict_ascii=True),
]


def hits(rows: list[tuple[str, str, str]], ctx: CheckContext, prefilter: bool) -> set[tuple[int, str, str]]:
    frame = pl.DataFrame(
        {
            "eid": list(range(len(rows))),
            "attr": [r[0] for r in rows],
            "value": [r[1] for r in rows],
            "kind": [r[2] for r in rows],
            "external": [r[2] == "contact" for r in rows],
        },
        schema={"eid": pl.UInt32, "attr": pl.String, "value": pl.String, "kind": pl.String, "external": pl.Boolean},
    )
    found = values.evaluate(frame, select_rules(ctx), ctx, prefilter=prefilter)
    return set(found.select("eid", "attr", "code").iter_rows())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ROW, min_size=1, max_size=40), st.sampled_from(range(len(CONTEXTS))))
def test_prefilter_never_hides_a_finding(rows: list[tuple[str, str, str]], which: int) -> None:
    ctx = CONTEXTS[which]
    assert hits(rows, ctx, prefilter=True) == hits(rows, ctx, prefilter=False)


def test_prefilter_passes_common_values_untouched() -> None:
    """The point of the prefilter: ordinary values are recognised as clean."""
    ctx = CheckContext(domains=DomainPolicy.build(["contoso.com"], "contoso"))
    common = {
        "userprincipalname": "ann.lee@contoso.com",
        "mail": "ann.lee@contoso.com",
        "mailnickname": "ann.lee",
        "proxyaddresses": "smtp:ann.lee@contoso.mail.onmicrosoft.com",
        "targetaddress": "SMTP:ann.lee@contoso.mail.onmicrosoft.com",
        "samaccountname": "annlee",
        "displayname": "Ann Lee",
    }
    for family in values.FAMILIES:
        for attr in family.attributes:
            if attr not in common:
                continue
            frame = pl.DataFrame({"value": [common[attr]]}).with_columns(low=pl.col("value").str.to_lowercase())
            assert frame.select(family.clean(ctx)).item(), attr
