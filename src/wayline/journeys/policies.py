"""Send-time policies: may this message go out now, later, or not at all? Pure.

The engine decides *that* a customer gets a message; whether it may leave now is checked when
it is about to be sent, by a :class:`SendPolicy` — an ordered list of small rules, each
governing some channels and able to object (Prefect's rules-and-policy pattern). The first rule
that objects decides:

- :class:`RespectUnsubscribe` → skip, ``unsubscribed``;
- :class:`RequireConsent`     → skip, ``no_consent`` (consent is per channel; none recorded = none);
- :class:`FrequencyCap`       → skip, ``frequency_cap`` (messages per customer across journeys);
- :class:`QuietHours`         → defer to the end of the quiet hours in the customer's time zone.

A deferred send is evaluated again when it comes due, so a cap reached overnight still holds in
the morning. Skips and deferrals are recorded (:func:`delivery_record`) with their reason.

Where the facts come from: a :class:`Recipient` built from profile traits —
``consents: {email: true, whatsapp: false}`` (or ``<channel>_consent: true``),
``unsubscribed: true`` or a list of channels (or ``<channel>_unsubscribed: true``),
``timezone: Europe/Paris`` — and the times of the customer's recent sends.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from wayline.journeys.engine import RecordKind, SendMessage, StepRecord
from wayline.journeys.localtime import quiet_until
from wayline.journeys.matching import person_zone


class Verdict(enum.StrEnum):
    SEND = "send"
    SKIP = "skip"
    DEFER = "defer"


@dataclass(frozen=True)
class SendDecision:
    verdict: Verdict
    reason: str | None = None
    send_at: datetime | None = None
    """For a deferral: when to try again."""


SEND_NOW = SendDecision(Verdict.SEND)


@dataclass(frozen=True)
class Recipient:
    """What the send-time rules know about the customer."""

    person_id: str
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    consents: Mapping[str, bool] = field(default_factory=dict)
    unsubscribed: frozenset[str] = frozenset()
    """Channels the customer unsubscribed from; ``"*"`` for all."""
    recent_sends: Sequence[datetime] = ()
    """When this customer was last sent messages, by any journey (the runtime's send log)."""

    @classmethod
    def from_traits(
        cls,
        person_id: str,
        traits: Mapping[str, Any],
        *,
        recent_sends: Sequence[datetime] = (),
        default_timezone: str = "UTC",
    ) -> Recipient:
        consents: dict[str, bool] = {}
        raw = traits.get("consents")
        if isinstance(raw, Mapping):
            consents.update({str(k): bool(v) for k, v in raw.items()})
        unsubscribed: set[str] = set()
        unsub = traits.get("unsubscribed")
        if unsub is True:
            unsubscribed.add("*")
        elif isinstance(unsub, list | tuple):
            unsubscribed.update(str(c) for c in unsub)
        for key, value in traits.items():
            if key.endswith("_consent") and isinstance(value, bool):
                consents.setdefault(key.removesuffix("_consent"), value)
            if key.endswith("_unsubscribed") and value is True:
                unsubscribed.add(key.removesuffix("_unsubscribed"))
        return cls(
            person_id=person_id,
            zone=person_zone(traits, default_timezone),
            consents=consents,
            unsubscribed=frozenset(unsubscribed),
            recent_sends=tuple(recent_sends),
        )


@dataclass(frozen=True)
class SendContext:
    channel: str
    recipient: Recipient
    now: datetime


class SendRule(Protocol):
    """One send-time rule: the channels it governs and its objection, if any."""

    @property
    def name(self) -> str: ...

    @property
    def channels(self) -> frozenset[str] | None:
        """None: every channel."""
        ...

    def check(self, ctx: SendContext) -> SendDecision | None:
        """None when the rule has no objection."""
        ...


@dataclass(frozen=True)
class RespectUnsubscribe:
    name: str = "unsubscribe"
    channels: frozenset[str] | None = None

    def check(self, ctx: SendContext) -> SendDecision | None:
        gone = ctx.recipient.unsubscribed
        if "*" in gone or ctx.channel in gone:
            return SendDecision(Verdict.SKIP, "unsubscribed")
        return None


@dataclass(frozen=True)
class RequireConsent:
    name: str = "consent"
    channels: frozenset[str] | None = None

    def check(self, ctx: SendContext) -> SendDecision | None:
        if ctx.recipient.consents.get(ctx.channel) is True:
            return None
        return SendDecision(Verdict.SKIP, "no_consent")


@dataclass(frozen=True)
class FrequencyCap:
    """At most ``max_messages`` per customer in any ``per`` window, across journeys."""

    max_messages: int = 3
    per: timedelta = timedelta(days=1)
    name: str = "frequency_cap"
    channels: frozenset[str] | None = None

    def check(self, ctx: SendContext) -> SendDecision | None:
        since = ctx.now - self.per
        recent = sum(1 for t in ctx.recipient.recent_sends if since < t <= ctx.now)
        if recent >= self.max_messages:
            return SendDecision(Verdict.SKIP, "frequency_cap")
        return None


@dataclass(frozen=True)
class QuietHours:
    """No messages between ``start`` and ``end`` (local, may wrap midnight): they wait."""

    start: time = time(21, 0)
    end: time = time(8, 0)
    name: str = "quiet_hours"
    channels: frozenset[str] | None = None

    def check(self, ctx: SendContext) -> SendDecision | None:
        until = quiet_until(ctx.now, ctx.recipient.zone, self.start, self.end)
        if until is None:
            return None
        return SendDecision(Verdict.DEFER, "quiet_hours", send_at=until)


@dataclass(frozen=True)
class SendPolicy:
    """Ordered send-time rules; the first objection decides."""

    rules: tuple[SendRule, ...]

    def evaluate(self, ctx: SendContext) -> SendDecision:
        for rule in self.rules:
            if rule.channels is not None and ctx.channel not in rule.channels:
                continue
            decision = rule.check(ctx)
            if decision is not None:
                return decision
        return SEND_NOW


DEFAULT_POLICY = SendPolicy((RespectUnsubscribe(), RequireConsent(), FrequencyCap(), QuietHours()))
"""Unsubscribe, consent, 3 messages per customer per 24 h, quiet hours 21:00–08:00 local."""

PERMISSIVE_POLICY = SendPolicy(())
"""No rules at all: for tests and for "what would the journey do, ignoring policies"."""


def policy_from_settings(sending: Mapping[str, Any]) -> SendPolicy:
    """The policy a workspace's stored sending settings describe (the dashboard's Settings).

    ``{"quiet_hours": {"start": "21:00", "end": "08:00"} | None,
    "frequency_cap": {"max_messages": 3, "per_hours": 24} | None}``; a key left out keeps
    :data:`DEFAULT_POLICY`'s rule, ``None`` turns the rule off. Unsubscribes and consent are
    always respected.
    """
    rules: list[SendRule] = [RespectUnsubscribe(), RequireConsent()]
    cap = sending.get("frequency_cap", {})
    if cap is not None:
        rules.append(
            FrequencyCap(
                max_messages=int(cap.get("max_messages", 3)),
                per=timedelta(hours=float(cap.get("per_hours", 24))),
            )
        )
    quiet = sending.get("quiet_hours", {})
    if quiet is not None:
        rules.append(
            QuietHours(
                start=time.fromisoformat(quiet.get("start", "21:00")),
                end=time.fromisoformat(quiet.get("end", "08:00")),
            )
        )
    return SendPolicy(tuple(rules))


def cap_window(policy: SendPolicy) -> timedelta:
    """How far back a customer's sends matter to the policy's frequency caps."""
    return max((r.per for r in policy.rules if isinstance(r, FrequencyCap)), default=timedelta(0))


def delivery_record(send: SendMessage, decision: SendDecision, at: datetime) -> StepRecord:
    """The record of what the policy made of a send (sent / skipped / deferred, and why)."""
    kind = {
        Verdict.SEND: RecordKind.SENT,
        Verdict.SKIP: RecordKind.SEND_SKIPPED,
        Verdict.DEFER: RecordKind.SEND_DEFERRED,
    }[decision.verdict]
    return StepRecord(
        kind=kind,
        instance_id=send.instance_id,
        journey_id=send.journey_id,
        version=send.version,
        person_id=send.person_id,
        at=at,
        step_id=send.step_id,
        step_type="send",
        outcome=decision.reason or send.channel,
        branch=send.channel,
    )
