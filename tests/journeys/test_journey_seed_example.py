"""The seed journey, end to end on the virtual clock: the recorded sends match the rules exactly.

"When someone views the skin-care cream, email them a 10 % offer; if they open it, WhatsApp a
reminder two days later; if they read that, email a better deal; stop as soon as they buy."
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from journey_helpers import T0, ScriptedResponses, in_order, row

from wayline.journeys.definition import load_journey
from wayline.journeys.engine import RecordKind
from wayline.journeys.policies import DEFAULT_POLICY, PERMISSIVE_POLICY
from wayline.journeys.simulation import NoResponses, SeededResponses, simulate

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"
H, D, M = timedelta(hours=1), timedelta(days=1), timedelta(minutes=1)
CREAM = {"product_id": "skincare-cream"}


@pytest.fixture(scope="module")
def journey():  # type: ignore[no-untyped-def]
    return load_journey(EXAMPLES / "skincare-offer.yaml")


def _history():  # type: ignore[no-untyped-def]
    return in_order(
        [
            # alice opens the offer and reads the WhatsApp: all three messages.
            row("alice", "Product Viewed", T0, **CREAM),
            # bob never opens: the offer only.
            row("bob", "Product Viewed", T0 + 5 * M, **CREAM),
            # carol opens, then buys during the two days' delay: offer only, converted.
            row("carol", "Product Viewed", T0, **CREAM),
            row("carol", "Order Completed", T0 + D, total=42),
            # dan views twice (one instance), opens, never reads: offer + WhatsApp.
            row("dan", "Product Viewed", T0, **CREAM),
            row("dan", "Product Viewed", T0 + H, **CREAM),
            # erin looks at another product: never enters.
            row("erin", "Product Viewed", T0, product_id="lipstick"),
            # frank buys ten minutes after the offer, and opens it afterwards: offer only.
            row("frank", "Product Viewed", T0, **CREAM),
            row("frank", "Order Completed", T0 + 10 * M, total=30),
        ]
    )


SCRIPT = ScriptedResponses(
    {
        ("alice", "offer_email"): [("delivered", M), ("opened", H)],
        ("alice", "whatsapp_reminder"): [("delivered", M), ("read", 10 * M)],
        ("carol", "offer_email"): [("opened", 2 * H)],
        ("dan", "offer_email"): [("opened", 30 * M)],
        ("frank", "offer_email"): [("opened", H)],
    }
)


def test_seed_journey_sends_exactly_what_the_rules_say(journey) -> None:  # type: ignore[no-untyped-def]
    result = simulate(
        journey,
        _history(),
        since=T0 - H,
        until=T0 + 30 * D,
        responses=SCRIPT,
        policy=PERMISSIVE_POLICY,
    )
    sends = sorted((s.person_id, s.step_id, s.at) for s in result.sends)
    assert sends == sorted(
        [
            ("alice", "offer_email", T0),
            ("alice", "whatsapp_reminder", T0 + H + 2 * D),
            ("alice", "better_deal", T0 + H + 2 * D + 10 * M),
            ("bob", "offer_email", T0 + 5 * M),
            ("carol", "offer_email", T0),
            ("dan", "offer_email", T0),
            ("dan", "whatsapp_reminder", T0 + 30 * M + 2 * D),
            ("frank", "offer_email", T0),
        ]
    )
    channels = {(s.person_id, s.step_id): s.channel for s in result.sends}
    assert channels[("alice", "whatsapp_reminder")] == "whatsapp"
    assert channels[("alice", "better_deal")] == "email"

    stats = result.stats
    assert stats.entered == 5  # alice bob carol dan frank; erin never
    assert stats.refused == {"active": 1}  # dan's second view
    assert stats.converted == 2  # carol, frank
    assert stats.completed == 3  # after the 14-day conversion window
    assert stats.active == 0
    assert stats.step("wait_open").branches == {"opened": 3, "timeout": 1}
    assert stats.step("wait_read").branches == {"read": 1, "timeout": 1}
    assert stats.step("two_days").reached == 3
    assert stats.step("two_days").ended_here == {"converted": 1}  # carol bought while waiting
    assert stats.sent_by_channel == {"email": 6, "whatsapp": 2}

    ends = {
        r.person_id: (r.kind, r.at)
        for r in result.records
        if r.kind in (RecordKind.CONVERTED, RecordKind.COMPLETED, RecordKind.EXITED)
    }
    assert ends["carol"] == (RecordKind.CONVERTED, T0 + D)
    assert ends["frank"] == (RecordKind.CONVERTED, T0 + 10 * M)
    assert ends["alice"] == (RecordKind.COMPLETED, T0 + 14 * D)

    alice_path = [
        r.step_id for r in result.records if r.person_id == "alice" and r.kind is RecordKind.REACHED
    ]
    assert alice_path == [
        "offer_email",
        "wait_open",
        "two_days",
        "whatsapp_reminder",
        "wait_read",
        "better_deal",
    ]
    # Every record names the version and the instance.
    assert {r.version for r in result.records} == {0}
    assert all(
        r.instance_id.startswith("skincare-offer:")
        for r in result.records
        if r.kind is not RecordKind.ENTRY_REFUSED
    )


def test_engagement_events_carry_message_journey_and_step(journey) -> None:  # type: ignore[no-untyped-def]
    """Opens are matched to *that* message: an open of another message does not count."""
    rows = in_order(
        [
            row("gina", "Product Viewed", T0, **CREAM),
            row("gina", "email_opened", T0 + H, message_id="m_someone_else"),
        ]
    )
    result = simulate(
        journey,
        rows,
        since=T0,
        until=T0 + 10 * D,
        responses=NoResponses(),
        policy=PERMISSIVE_POLICY,
    )
    assert [s.step_id for s in result.sends] == ["offer_email"]
    assert result.stats.step("wait_open").branches == {"timeout": 1}


def test_policies_apply_in_the_replay(journey) -> None:  # type: ignore[no-untyped-def]
    """No WhatsApp consent → skipped and recorded; a view at 23:00 Paris waits for 08:00."""
    late = T0.replace(hour=22)  # 23:00 in Paris
    rows = in_order(
        [
            row("hana", "$identify", T0 - D, traits={"consents": {"whatsapp": False}}),
            row("hana", "Product Viewed", T0, **CREAM),
            row("ivan", "Product Viewed", late, **CREAM),
        ]
    )
    script = ScriptedResponses({("hana", "offer_email"): [("opened", H)]})
    result = simulate(
        journey, rows, since=T0 - H, until=T0 + 10 * D, responses=script, policy=DEFAULT_POLICY
    )
    sends = {(s.person_id, s.step_id): s.at for s in result.sends}
    assert ("hana", "whatsapp_reminder") not in sends
    assert result.stats.step("whatsapp_reminder").skipped == {"no_consent": 1}
    # 08:00 Paris on 3 March (winter time, UTC+1) is 07:00 UTC.
    assert sends[("ivan", "offer_email")] == late.replace(hour=7) + D
    assert result.stats.step("offer_email").deferred == 1


def test_seeded_responses_are_reproducible(journey) -> None:  # type: ignore[no-untyped-def]
    rows = in_order([row(f"p{i}", "Product Viewed", T0 + i * M, **CREAM) for i in range(300)])

    def run(seed: int):  # type: ignore[no-untyped-def]
        return simulate(
            journey,
            rows,
            since=T0,
            until=T0 + 20 * D,
            responses=SeededResponses(seed=seed),
            policy=PERMISSIVE_POLICY,
        )

    a, b, c = run(1), run(1), run(2)
    assert [s.message_id for s in a.sends] == [s.message_id for s in b.sends]
    assert a.stats == b.stats
    opened = a.stats.step("wait_open").branches["opened"]
    assert 0.98 * 0.40 * 300 * 0.7 < opened < 0.98 * 0.40 * 300 * 1.3  # default rates
    assert a.stats != c.stats
    silent = simulate(
        journey,
        rows,
        since=T0,
        until=T0 + 20 * D,
        responses=SeededResponses(rates={"email.opened": 0.0}),
        policy=PERMISSIVE_POLICY,
    )
    assert silent.stats.sent_by_channel == {"email": 300}
