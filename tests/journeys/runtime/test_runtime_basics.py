"""The runtime end to end on SQLite and PostgreSQL: events in, engine, outbox, log channel."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from runtime_support import T0, Clock, Provider, add_profiles, count, logged_messages, series, track
from sqlalchemy import func, select, update

from wayline.channels.base import ChannelKind, OutboundMessage, WebhookContent
from wayline.journeys.policies import PERMISSIVE_POLICY
from wayline.journeys.runtime import JourneyRuntime
from wayline.journeys.runtime.channels import ChannelRegistry
from wayline.journeys.runtime.deliver import Profile
from wayline.storage.db import Database
from wayline.storage.journey_models import (
    InputRow,
    InstanceRow,
    OutboxRow,
    StepCountRow,
    StepRecordRow,
)
from wayline.storage.models import CustomerProfile


def make_runtime(db: Database, clock: Clock, **options: Any) -> JourneyRuntime:
    return JourneyRuntime(db, clock=clock, idle_seconds=0.0, **options)


class Renderer:
    """Renders a send as its template name (enough to tell it went the rendering way)."""

    def render(
        self, send: Any, *, workspace_id: str, profile: Profile, to: str, now: datetime
    ) -> OutboundMessage:
        return OutboundMessage(
            message_id=str(send["message_id"]), workspace_id=workspace_id,
            customer_id=profile.person_id, channel=ChannelKind.EMAIL, to=to,
            content=WebhookContent({"template": send["template"]}),
        )  # fmt: skip


def test_events_are_queued_only_for_workspaces_with_a_live_journey(db: Database) -> None:
    db.accept("default", [track("u1", "Signed Up", T0)], T0)
    assert count(db, InputRow) == 0
    runtime = make_runtime(db, Clock())
    runtime.catalog.publish("default", series())
    db.accept("default", [track("u1", "Signed Up", T0)], T0)
    assert count(db, InputRow) == 1
    message = track("u2", "Signed Up", T0)
    assert db.accept("default", [message, message], T0) == 1  # a client's retry: queued once
    assert count(db, InputRow) == 2


def test_a_customer_goes_through_send_delay_send(db: Database) -> None:
    clock = Clock()
    runtime = make_runtime(db, clock)
    runtime.catalog.publish("default", series(delay="1h"))
    add_profiles(db, ["u1"])
    db.accept("default", [track("u1", "Signed Up", T0)], T0)
    runtime.drain()
    assert count(db, InputRow) == 0
    assert [p for p, _ in logged_messages(db)] == ["u1"]
    clock.advance(minutes=59)
    runtime.drain()
    assert len(logged_messages(db)) == 1  # the delay has not passed
    clock.advance(minutes=2)
    runtime.drain()
    keys = sorted(k for _, k in logged_messages(db))
    assert keys == ["series:u1:1/send_0/1", "series:u1:1/send_1/1"]
    stats = runtime.catalog.stats("default", "series")
    assert stats.entered == 1
    assert stats.step("send_0").sent == 1 and stats.step("send_1").sent == 1
    assert stats.step("wait_0").reached == 1


def test_the_goal_ends_the_journey_and_holds_back_the_rest(db: Database) -> None:
    clock = Clock()
    runtime = make_runtime(db, clock)
    doc = series(delay="1h")
    doc["goal"]["within"] = "7d"
    runtime.catalog.publish("default", doc)
    add_profiles(db, ["u1", "u2"])
    db.accept("default", [track("u1", "Signed Up", T0), track("u2", "Signed Up", T0)], T0)
    runtime.drain()
    clock.advance(minutes=10)
    db.accept("default", [track("u1", "Order Completed", clock.now)], clock.now)
    runtime.drain()
    clock.advance(hours=2)
    runtime.drain()
    people = sorted(p for p, _ in logged_messages(db))
    assert people == ["u1", "u2", "u2"]
    stats = runtime.catalog.stats("default", "series")
    assert stats.converted == 1
    assert count(db, InstanceRow, InstanceRow.status == "converted") == 1
    assert_counts_match_records(db)


def test_send_time_policies_skip_and_defer_with_reasons(db: Database) -> None:
    clock = Clock()
    runtime = make_runtime(db, clock)
    runtime.catalog.publish("default", series(sends=1, goal=False))
    add_profiles(db, ["ok"])
    add_profiles(db, ["no_consent"], consent=False)
    add_profiles(db, ["night"], timezone="Pacific/Auckland")  # 23:00 there: quiet hours
    people = ["ok", "no_consent", "night", "no_profile"]
    db.accept("default", [track(p, "Signed Up", T0) for p in people], T0)
    runtime.drain()
    assert sorted(p for p, _ in logged_messages(db)) == ["ok"]
    stats = runtime.catalog.stats("default", "series").step("send_0")
    assert stats.skipped == {"no_consent": 2}
    assert stats.deferred == 1
    assert count(db, OutboxRow, OutboxRow.status == "pending") == 1
    clock.advance(hours=10)  # 09:00 in Auckland
    runtime.drain()
    assert sorted(p for p, _ in logged_messages(db)) == ["night", "ok"]
    assert_counts_match_records(db)


def assert_counts_match_records(db: Database) -> None:
    """``journey_step_counts`` holds exactly the grouped step records (the stats read it)."""
    r, c = StepRecordRow, StepCountRow
    with db.read() as conn:
        grouped = conn.execute(
            select(
                r.journey_id, r.version, r.kind, r.step_id, r.outcome, r.branch, func.count()
            ).group_by(r.journey_id, r.version, r.kind, r.step_id, r.outcome, r.branch)
        ).all()
        counted = conn.execute(
            select(c.journey_id, c.version, c.kind, c.step_id, c.outcome, c.branch, c.n)
        ).all()
    assert grouped, "the scenario wrote no records"
    expected = {(j, v, k, s or "", o or "", b or ""): n for j, v, k, s, o, b, n in grouped}
    assert {(j, v, k, s, o, b): n for j, v, k, s, o, b, n in counted} == expected


def test_frequency_cap_counts_sends_across_journeys(db: Database) -> None:
    clock = Clock()
    runtime = make_runtime(db, clock)
    for name in ("a", "b", "c", "d"):
        runtime.catalog.publish("default", series(sends=1, goal=False, jid=name))
    add_profiles(db, ["u1"])
    db.accept("default", [track("u1", "Signed Up", T0)], T0)
    runtime.drain()
    assert len(logged_messages(db)) == 3  # default cap: 3 per customer per 24 h
    with db.read() as conn:
        reasons = conn.execute(
            StepRecordRow.__table__.select().where(StepRecordRow.kind == "send_skipped")
        ).all()
    assert [r.outcome for r in reasons] == ["frequency_cap"]


def test_customers_stay_on_the_version_they_entered(db: Database) -> None:
    clock = Clock()
    runtime = make_runtime(db, clock)
    _, v1, _ = runtime.catalog.publish("default", series(delay="1h"))
    add_profiles(db, ["old", "new"])
    db.accept("default", [track("old", "Signed Up", T0)], T0)
    runtime.drain()
    edited = series(delay="1h", sends=3)
    _, v2, created = runtime.catalog.publish("default", edited)
    assert (v1, v2, created) == (1, 2, True)
    assert runtime.catalog.publish("default", edited)[1:] == (2, False)  # unchanged: no v3
    db.accept("default", [track("new", "Signed Up", clock.now)], clock.now)
    for _ in range(3):
        clock.advance(hours=1, minutes=1)
        runtime.drain()
    sent = sorted(logged_messages(db))
    assert sum(p == "old" for p, _ in sent) == 2
    assert sum(p == "new" for p, _ in sent) == 3
    with db.read() as conn:
        versions = dict(
            conn.execute(InstanceRow.__table__.select()).all()
            and [(r.person_id, r.version) for r in conn.execute(InstanceRow.__table__.select())]
        )
    assert versions == {"old": 1, "new": 2}


def test_paused_and_archived_journeys_take_no_one_in(db: Database) -> None:
    from wayline.journeys.entry import JourneyStatus

    clock = Clock()
    runtime = make_runtime(db, clock)
    runtime.catalog.publish("default", series(delay="1h"))
    add_profiles(db, ["inside", "late", "later"])
    db.accept("default", [track("inside", "Signed Up", T0)], T0)
    runtime.drain()
    runtime.catalog.set_status("default", "series", JourneyStatus.PAUSED)
    runtime.catalog.publish("default", series(delay="1h", jid="other", sends=1))  # keeps ws live
    db.accept("default", [track("late", "Signed Up", T0)], T0)
    clock.advance(hours=2)
    runtime.drain()
    inside = [p for p, k in logged_messages(db) if k.startswith("series:")]
    assert inside == ["inside", "inside"]  # paused: those inside carry on, nobody new
    runtime.catalog.publish("default", series(delay="1h"))  # resume (same document)
    runtime.catalog.set_status("default", "series", JourneyStatus.ARCHIVED)
    db.accept("default", [track("later", "Signed Up", clock.now)], clock.now)
    runtime.drain()
    assert count(db, InstanceRow, InstanceRow.journey_id == "series") == 1
    summaries = {s.journey_id: s for s in runtime.catalog.summaries("default")}
    assert summaries["series"].status is JourneyStatus.ARCHIVED
    assert summaries["other"].entered == 2  # late and later


def test_serve_and_worker_render_templates_into_the_log_channel(
    db: Database, tmp_path: Path
) -> None:
    import orjson

    from wayline.cli.worker import build_runtime
    from wayline.config import Settings
    from wayline.storage.journey_models import MessageLogRow

    clock = Clock()
    runtime = build_runtime(db, Settings(home=tmp_path / "home"))
    runtime.deliverer.clock = clock
    runtime.advancer.clock = clock
    doc = series(sends=1, goal=False)
    doc["steps"][0]["template"] = "no_such_template"
    runtime.catalog.publish("default", doc, source="series.yaml")
    runtime.catalog.publish("default", series(sends=1, goal=False, jid="good"))
    add_profiles(db, ["u1"])
    db.accept("default", [track("u1", "Signed Up", T0)], T0)
    runtime.drain()
    with db.read() as conn:
        (content,) = conn.execute(MessageLogRow.__table__.select()).all()
        failed = conn.execute(
            OutboxRow.__table__.select().where(OutboxRow.status == "failed")
        ).all()
    message = orjson.loads(content.content)
    assert message["to"] == "u1@example.com"
    assert message["content"]["subject"]  # rendered
    assert "/u/" in (message["unsubscribe_url"] or "")  # signed one-click unsubscribe
    assert [r.journey_id for r in failed] == ["series"]
    assert "no_such_template" in failed[0].outcome


def test_sends_use_the_workspaces_own_edit_of_a_template(db: Database, tmp_path: Path) -> None:
    import orjson

    from wayline.channels.templates.library import BUILTIN_DIR, workspace_templates_dir
    from wayline.cli.worker import build_runtime
    from wayline.config import Settings
    from wayline.storage.journey_models import MessageLogRow

    home = tmp_path / "home"
    # The dashboard saves a workspace's edit here; another workspace keeps the built-in one.
    edited = workspace_templates_dir(home, "default") / "welcome.yaml"
    edited.parent.mkdir(parents=True)
    builtin = (BUILTIN_DIR / "welcome.yaml").read_text()
    edited.write_text(builtin.replace('subject: "Welcome to', 'subject: "Hello from'))
    clock = Clock()
    runtime = build_runtime(db, Settings(home=home))
    runtime.deliverer.clock = clock
    runtime.advancer.clock = clock
    runtime.catalog.publish("default", series(sends=1, goal=False))
    add_profiles(db, ["u1"])
    db.accept("default", [track("u1", "Signed Up", T0)], T0)
    runtime.drain()
    with db.read() as conn:
        (content,) = conn.execute(MessageLogRow.__table__.select()).all()
    assert orjson.loads(content.content)["content"]["subject"].startswith("Hello from")


def test_a_workspaces_own_sending_rules_replace_the_default_ones(db: Database) -> None:
    from wayline.api.rest.settings import SendingSettings, save_sending
    from wayline.journeys.runtime.providers import WorkspacePolicies

    clock = Clock()
    runtime = JourneyRuntime(db, clock=clock, policy_for=WorkspacePolicies(db, ttl=0))
    # The dashboard's Settings: no quiet hours, at most one message a day.
    save_sending(
        db,
        "default",
        SendingSettings.model_validate(
            {"quiet_hours": None, "frequency_cap": {"max_messages": 1, "per_hours": 24}}
        ),
    )
    runtime.catalog.publish("default", series(delay="1h", sends=2, goal=False))
    add_profiles(db, ["night"], timezone="Pacific/Auckland")  # 23:00 there
    db.accept("default", [track("night", "Signed Up", T0)], T0)
    runtime.drain()
    assert [p for p, _ in logged_messages(db)] == ["night"]  # not held back for the night
    clock.advance(hours=1, minutes=1)
    runtime.drain()
    stats = runtime.catalog.stats("default", "series").step("send_1")
    assert stats.skipped == {"frequency_cap": 1}  # the workspace's cap, not the default 3
    assert len(logged_messages(db)) == 1


def test_entry_policies_read_each_customers_past_entries(db: Database) -> None:
    """The entry ledger (entries so far, last entry) per customer and journey: ``once``
    refuses a second entry, ``again_after`` lets a customer in again once the time passed."""
    clock = Clock()
    runtime = make_runtime(db, clock)
    once = series(sends=1, goal=False, jid="once")
    again = series(sends=1, goal=False, jid="again")
    again["entry"] = {"policy": "again_after", "again_after": "2h"}
    runtime.catalog.publish("default", once)
    runtime.catalog.publish("default", again)
    people = [f"u{i}" for i in range(30)]
    add_profiles(db, people)
    for hours in (0, 1, 4):
        clock.now = now = T0 + timedelta(hours=hours)
        db.accept("default", [track(p, "Signed Up", now) for p in people], now)
        runtime.drain()
    with db.read() as conn:
        entries = dict(
            conn.execute(
                select(InstanceRow.journey_id, func.count()).group_by(InstanceRow.journey_id)
            ).all()
        )
        refused = dict(
            conn.execute(
                select(StepRecordRow.outcome, func.count())
                .where(StepRecordRow.kind == "entry_refused")
                .group_by(StepRecordRow.outcome)
            ).all()
        )
    # once: 1 entry each; again_after 2h: entries at 0 h and 4 h (1 h after 0 h is too soon).
    assert entries == {"once": 30, "again": 60}
    assert refused == {"once": 60, "too_soon": 30}


def test_switches_read_the_customers_profile_at_entry_and_after_a_wait(db: Database) -> None:
    """The runtime reads profiles for journeys whose steps look at them (and only those)."""
    send = {"type": "send", "channel": "email", "template": "welcome"}
    gold = {"name": "gold", "when": {"trait": "tier", "value": "gold"}}
    doc = {
        "id": "tiers",
        "name": "Tiers",
        "trigger": {"event": "Signed Up"},
        "steps": [
            {"id": "sw", "type": "switch", "cases": [{**gold, "next": "gold_mail"}],
             "default": "plain_mail"},
            {"id": "gold_mail", **send, "next": "wait"},
            {"id": "plain_mail", **send, "next": "wait"},
            {"id": "wait", "type": "delay", "duration": "1h", "next": "sw2"},
            {"id": "sw2", "type": "switch", "cases": [{**gold, "next": "gold_later"}],
             "default": None},
            {"id": "gold_later", **send},
        ],
    }  # fmt: skip
    clock = Clock()
    runtime = make_runtime(db, clock)
    runtime.catalog.publish("default", doc)
    add_profiles(db, ["g", "p"])
    with db.write() as conn:
        conn.execute(
            update(CustomerProfile)
            .where(CustomerProfile.person_id == "g")
            .values(traits={"tier": "gold"})
        )
    db.accept("default", [track(p, "Signed Up", T0) for p in ("g", "p")], T0)
    runtime.drain()
    clock.advance(hours=1, minutes=1)
    runtime.drain()
    keys = sorted(k.split(":", 1)[1] for _, k in logged_messages(db))
    assert keys == ["g:1/gold_later/1", "g:1/gold_mail/1", "p:1/plain_mail/1"]


def test_log_channel_sends_are_delivered_in_the_transaction_that_decided_them(
    db: Database,
) -> None:
    clock = Clock()
    runtime = make_runtime(db, clock)
    runtime.catalog.publish("default", series(sends=1, goal=False))
    add_profiles(db, ["u1", "u2"])
    db.accept("default", [track(p, "Signed Up", T0) for p in ("u1", "u2")], T0)
    assert runtime.advancer.advance_inputs() == 2  # the advancer alone: no deliverer round
    assert sorted(p for p, _ in logged_messages(db)) == ["u1", "u2"]
    assert count(db, OutboxRow, OutboxRow.status == "sent", OutboxRow.done_at == T0) == 2
    assert runtime.catalog.stats("default", "series").step("send_0").sent == 2
    assert runtime.deliverer.deliver() == 0
    assert_counts_match_records(db)


def test_sends_to_render_or_to_a_provider_are_left_to_the_deliverer(db: Database) -> None:
    provider = Provider()
    rendering = make_runtime(db, Clock(), renderer=Renderer())
    to_provider = make_runtime(db, Clock(), channels=ChannelRegistry({"email": provider}))
    doc = series(sends=1, goal=False)
    rendering.catalog.publish("default", doc)
    add_profiles(db, ["u1"])
    db.accept("default", [track("u1", "Signed Up", T0)], T0)
    rendering.advancer.advance_inputs()
    assert count(db, OutboxRow, OutboxRow.status == "pending") == 1
    assert rendering.deliverer.deliver() == 1
    assert logged_messages(db) == [("u1", "series:u1:1/send_0/1")]
    to_provider.catalog.publish("default", {**doc, "id": "again", "trigger": {"event": "Ordered"}})
    db.accept("default", [track("u1", "Ordered", T0)], T0)
    to_provider.advancer.advance_inputs()
    assert count(db, OutboxRow, OutboxRow.status == "pending") == 1
    assert provider.sent == []
    assert to_provider.deliverer.deliver() == 1
    assert provider.sent == ["u1"]


def test_the_deliverer_claims_due_unleased_sends_oldest_first(db: Database) -> None:
    clock = Clock()
    # A provider's channel: sends to the log channel are delivered by the advancer.
    provider = Provider()
    runtime = make_runtime(db, clock, channels=ChannelRegistry({"email": provider}))
    runtime.catalog.publish("default", series())
    people = ["later", "leased", "oldest", "due"]
    add_profiles(db, people)
    db.accept("default", [track(p, "Signed Up", T0) for p in people], T0)
    runtime.advancer.advance_inputs()
    changes = {
        "later": {"due_at": T0 + timedelta(minutes=10)},
        "leased": {"locked_until": T0 + timedelta(minutes=1)},  # another worker is sending it
        "oldest": {"due_at": T0 - timedelta(minutes=1)},
    }
    with db.write() as conn:
        for person, values in changes.items():
            conn.execute(update(OutboxRow).where(OutboxRow.person_id == person).values(**values))
    runtime.deliverer.batch_size = 1
    assert [runtime.deliverer.deliver() for _ in range(3)] == [1, 1, 0]
    assert provider.sent == ["oldest", "due"]
    clock.advance(minutes=2)  # the lease ran out
    assert runtime.deliverer.deliver() == 1
    assert provider.sent[-1] == "leased"


def test_a_customer_without_a_profile_is_skipped_for_want_of_an_address(db: Database) -> None:
    # No send rules: the default ones would skip them first for want of consent.
    runtime = JourneyRuntime(db, clock=Clock(), policy=PERMISSIVE_POLICY, idle_seconds=0.0)
    runtime.catalog.publish("default", series())
    add_profiles(db, ["known"])
    db.accept("default", [track(p, "Signed Up", T0) for p in ("known", "stranger")], T0)
    runtime.drain()
    assert [p for p, _ in logged_messages(db)] == ["known"]
    send = runtime.catalog.stats("default", "series").step("send_0")
    assert send.sent == 1
    assert send.skipped == {"no_address": 1}
