"""The detectors' pure decisions, on hand-made data (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from wayline.journeymap.detectors.base import Evidence, Finding, profile_from_rows
from wayline.journeymap.detectors.churn import comparison, lateness_key
from wayline.journeymap.detectors.incident import scan_days
from wayline.journeymap.detectors.product_content import (
    ContentKeys,
    Product,
    content_keys,
    decide,
    signals,
)
from wayline.journeymap.detectors.segments import scan
from wayline.journeymap.detectors.stats import Thresholds, critical_z
from wayline.journeymap.detectors.visits import Cell, DayCount
from wayline.journeymap.painpoints import merge_related, rank, severity_of
from wayline.journeymap.solutions import load_library
from wayline.journeymap.stages import default_mapping

T = Thresholds()
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def cell(device: str, os: str, country: str, n: int, k: int) -> Cell:
    return Cell(
        {"device_type": device, "os": os, "country": country},
        {"has_3": n, "step_3_4": k},
    )


def shop(mobile_rate: float, fr_rate: float) -> list[Cell]:
    """Visits at checkout per device/OS/country; 80 % reach payment, except where told."""
    cells = []
    for device, oses in (("mobile", ("iOS", "Android")), ("desktop", ("Windows", "macOS"))):
        for os in oses:
            for country in ("DE", "FR", "NL", "ES"):
                rate = 0.8
                if device == "mobile":
                    rate *= mobile_rate / 0.8
                if country == "FR":
                    rate *= fr_rate / 0.8
                cells.append(cell(device, os, country, 1000, round(1000 * rate)))
    return cells


DIMS = ("device_type", "os", "country")


def test_scan_finds_a_segment_once_and_an_independent_one_too() -> None:
    hits = scan(shop(mobile_rate=0.3, fr_rate=0.5), DIMS, "step_3_4", "has_3", "lower", T)
    found = [(h.dimension, h.value) for h in hits]
    # Mobile first (strongest); iOS and Android are explained by it and not reported; France
    # stands out among the remaining (desktop) visits.
    assert found == [("device_type", "mobile"), ("country", "FR")]


def test_scan_reports_nothing_on_a_flat_shop() -> None:
    assert scan(shop(mobile_rate=0.8, fr_rate=0.8), DIMS, "step_3_4", "has_3", "lower", T) == []


def test_scan_ignores_a_small_or_slight_difference() -> None:
    assert scan(shop(mobile_rate=0.75, fr_rate=0.8), DIMS, "step_3_4", "has_3", "lower", T) == []


def days(rates: dict[int, float], n: int = 60, length: int = 90) -> list[DayCount]:
    start = date(2026, 1, 1)
    return [
        DayCount((4, 5), start + timedelta(d), n, round(n * rates.get(d, 0.95)), n)
        for d in range(length)
    ]


def test_scan_days_finds_the_outage_window() -> None:
    outage = {d: 0.3 for d in range(50, 57)}
    z = critical_z(0.01, 2000)
    [w] = scan_days(days(outage), T, z, 90)
    assert (w.first, w.last) == (date(2026, 2, 20), date(2026, 2, 26))
    assert w.comparison.rate == pytest.approx(0.3, abs=0.01)


def test_scan_days_is_quiet_on_a_steady_step() -> None:
    assert scan_days(days({}), T, critical_z(0.01, 2000), 90) == []


def test_content_keys_are_found_by_meaning_not_by_name() -> None:
    samples = [
        '{"sku": "A1", "reviewsAvailable": true, "numReviews": 3, "descLength": 400}',
        '{"sku": "B2", "reviewsAvailable": false, "numReviews": 0, "descLength": 40}',
    ]
    keys = content_keys(samples)
    assert keys == ContentKeys("sku", ("reviewsAvailable",), ("numReviews",), ("descLength",))
    assert content_keys(['{"name": "x"}']) is None


def test_products_without_reviews_are_found_and_thin_descriptions_explained_away() -> None:
    keys = ContentKeys("product_id", ("has_reviews",), (), ("description_length",))
    products = []
    for i in range(40):
        reviewed = i % 4 != 0
        # Thin descriptions go mostly with missing reviews, and do nothing of their own.
        thin = i % 4 == 0 and i % 8 == 0
        products.append(
            Product(
                f"p{i}",
                {
                    "has_reviews": "true" if reviewed else "false",
                    "description_length": "50" if thin else str(500 + i),
                },
                viewed=400,
                added=40 if reviewed else 12,
                persons=300,
            )
        )
    hits = decide(signals(keys, products), products, T)
    assert [(h.signal.key, h.signal.value) for h in hits] == [("properties.has_reviews", "false")]


def test_lateness_key_prefers_a_flag_and_reads_numbers() -> None:
    flag = lateness_key(['{"delivered_late": true, "days_late": 2}', '{"delivered_late": false}'])
    assert flag is not None and (flag.key, flag.numeric) == ("delivered_late", False)
    num = lateness_key(['{"delay_days": 0}', '{"delay_days": 3}'])
    assert num is not None and (num.key, num.numeric) == ("delay_days", True)
    assert lateness_key(['{"carrier": "DHL"}']) is None


def test_churn_comparison_reads_flag_rows() -> None:
    c = comparison([(1, 100, 2), (0, 900, 180), (None, 5, 5)])
    assert (c.k_a, c.n_a, c.k_b, c.n_b) == (2, 100, 180, 900)


def test_profile_finds_roles_orders_and_trait_dimensions() -> None:
    counts = [
        ("view_item", 1000, None, 0),
        ("begin_checkout", 100, None, 0),
        ("purchase", 50, Decimal("2500.00"), 50),
        ("$identify", 30, None, 0),
        ("Mystery Event", 5, None, 0),
    ]
    traits = [
        (f'{{"email": "p{i}@x.org", "plan": "{"gold" if i % 2 else "free"}", "country": "FR"}}',)
        for i in range(30)
    ]
    prof = profile_from_rows(counts, traits, default_mapping())
    assert prof.names("product_view") == ("view_item",)
    assert prof.funnel() == ("product_view", "checkout", "purchase")
    assert prof.average_order_value == Decimal("50.00")
    assert prof.trait_keys == ("plan",)  # not the e-mail (too many values), not country


def finding(
    kind: str, stake: str, effect: float, segment: dict[str, str], step: tuple[str, ...]
) -> Finding:
    return Finding(
        kind=kind,
        title=f"{kind} {segment}",
        stage="decision",
        step=" → ".join(step),
        step_events=step,
        effect=effect,
        evidence=Evidence(
            metric="m",
            value=0.1,
            baseline=0.3,
            unit="visits",
            affected_customers=10,
            revenue_at_stake=Decimal(stake),
            since=T0,
            until=T0 + timedelta(days=30),
            segment=segment,
            detail="d",
            z_score=-8.0,
            sample_size=100,
        ),
    )


def test_severity_follows_revenue_share_and_effect() -> None:
    revenue = Decimal("100000")
    assert severity_of(finding("incident", "3000", 0.6, {}, ()), revenue) == "high"
    assert severity_of(finding("incident", "3000", 0.2, {}, ()), revenue) == "medium"
    assert severity_of(finding("incident", "100", 0.9, {}, ()), revenue) == "low"
    capped = Finding(
        **{**finding("slow_conversion", "9000", 0.9, {}, ()).__dict__, "max_severity": "medium"}
    )
    assert severity_of(capped, revenue) == "medium"


def test_related_findings_merge_into_the_most_specific() -> None:
    fr = {"country": "FR"}
    merged = merge_related(
        [
            finding("segment_step_dropoff", "900", 0.4, fr, ("Checkout Started", "Payment")),
            finding("errors_after_step", "400", 9.0, fr, ("Checkout Started", "Checkout Error")),
            finding("checkout_loop", "300", 9.0, fr, ("Checkout Started", "Cart Viewed")),
            finding("segment_step_dropoff", "800", 0.5, {"channel": "social"}, ("A", "B")),
            finding("channel_browses_no_buy", "700", 0.9, {"channel": "social"}, ("V", "B")),
        ]
    )
    kinds = sorted(f.kind for f in merged)
    assert kinds == ["channel_browses_no_buy", "errors_after_step"]
    err = next(f for f in merged if f.kind == "errors_after_step")
    assert err.evidence.revenue_at_stake == Decimal("900")
    assert "also" in err.evidence.detail


def test_rank_orders_by_revenue_at_stake_and_attaches_solutions() -> None:
    points = rank(
        [
            finding("incident", "100", 0.9, {}, ("a", "b")),
            finding("product_content", "5000", 0.6, {"properties.has_reviews": "false"}, ()),
            finding("checkout_loop", "800", 5.0, {"country": "FR"}, ("c", "d")),
        ],
        Decimal("100000"),
        load_library(),
    )
    assert [p.evidence.revenue_at_stake for p in points] == [
        Decimal("5000"),
        Decimal("800"),
        Decimal("100"),
    ]
    assert [s.id for s in points[0].solutions][:1] == ["add_reviews"]
    assert all(p.solutions for p in points)


def test_property_names_that_are_not_plain_identifiers_never_reach_sql() -> None:
    evil = "review_count') OR 1=1 --"
    keys = content_keys([f'{{"product_id": "a", "{evil}": 0, "has_reviews": true}}'] * 3)
    assert keys is not None and keys.content == ("has_reviews",)
    assert lateness_key(['{"late\\" OR 1=1": true}']) is None
    prof = profile_from_rows(
        [("$identify", 2, None, 0)],
        [('{"pl an": "a"}',), ('{"pl an": "b"}',)],
        default_mapping(),
    )
    assert prof.trait_keys == ()


def test_a_context_refuses_a_bad_period_or_segment_key() -> None:
    from wayline.errors import InputError
    from wayline.journeymap.painpoints import DetectionContext

    mapping = default_mapping()
    with pytest.raises(InputError, match="empty period"):
        DetectionContext("w", T0, T0, mapping)
    with pytest.raises(InputError, match="timezone"):
        DetectionContext("w", datetime(2026, 1, 1), T0, mapping)
    with pytest.raises(InputError, match="invalid trait"):
        DetectionContext("w", T0, T0 + timedelta(1), mapping, segment={"traits.a'b": "x"})
    ok = DetectionContext("w", T0, T0 + timedelta(1), mapping, segment={"traits.persona": "x"})
    assert ok.segment == {"traits.persona": "x"}
