"""What the detectors share: the context they run in, the evidence they return, and a profile of
the store (which of its event names play which role, its average order value, its segments).

A detector never knows a store's event names in advance: it asks the stage mapping
(:class:`~wayline.journeymap.stages.StageMapping`) which names play the roles it needs —
``product_view``, ``add_to_cart``, ``checkout``, ``payment``, ``purchase``, ``refund``,
``support``, the error roles, ``delivery`` — and works with whatever the store has. A role the
store does not track simply switches the detector (or one of its steps) off.

**Revenue at stake** is always *lost conversions × average order value*: the units that failed a
step beyond what the baseline rate predicts, carried down the rest of the funnel at the store's
own step rates to orders, times the mean ``revenue`` of the store's purchase events in the
period (see ``docs/pain-points.md``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import orjson

from wayline.analytics.backend import Backend
from wayline.analytics.filters import PropertyFilter, filter_sql, latest_trait_sql, resolve_key
from wayline.analytics.query import CompiledQuery, Params
from wayline.errors import InputError
from wayline.journeymap.detectors.stats import Thresholds
from wayline.journeymap.stages import StageMapping

Severity = Literal["high", "medium", "low"]
CENT = Decimal("0.01")

#: The purchase funnel the step detectors walk, by role (a store's missing roles are skipped).
FUNNEL: tuple[str, ...] = ("product_view", "add_to_cart", "checkout", "payment", "purchase")
#: Roles of a visit's browsing events: a session with one of them is a visit (server-side events
#: such as deliveries or e-mail opens are not).
BROWSE_ROLES: tuple[str, ...] = (
    "page_view",
    "product_list",
    "product_click",
    "product_view",
    "search",
    "add_to_cart",
    "cart_view",
    "checkout",
    "checkout_step",
    "payment",
    "purchase",
)
#: Roles that mean something went wrong for the customer in a visit.
ERROR_ROLES: tuple[str, ...] = ("error", "checkout_error", "payment_failed")
#: Segment dimensions read from event columns; profile traits are added per store.
COLUMN_DIMENSIONS: tuple[str, ...] = ("device_type", "os", "channel", "country")
#: At most this many profile traits become segment dimensions.
MAX_TRAIT_DIMENSIONS = 3


#: Property and trait names a detector may put into SQL (as a JSON path or a column alias).
#: Names come from the store's own events — from the public tracking API — so anything else
#: is ignored rather than quoted.
SAFE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Evidence:
    """What the data shows: ``metric`` is ``value`` (in ``unit``) where the baseline is
    ``baseline``, for ``affected_customers`` customers in ``segment`` between ``since`` and
    ``until``; ``revenue_at_stake`` is what the gap costs (lost conversions × average order
    value). ``z_score`` and ``sample_size`` (the affected units) say how sure it is."""

    metric: str
    value: float
    baseline: float
    unit: str
    affected_customers: int
    revenue_at_stake: Decimal
    since: datetime
    until: datetime
    segment: dict[str, str]
    detail: str
    z_score: float = 0.0
    sample_size: int = 0


@dataclass(frozen=True)
class Finding:
    """A detector's result, before the ranking gives it a severity and solutions."""

    kind: str
    title: str
    stage: str
    step: str | None
    evidence: Evidence
    effect: float
    """Relative size of the gap: ``1 - value/baseline`` for a rate that dropped, ``value /
    baseline - 1`` for one that rose (capped at 10)."""
    step_events: tuple[str, ...] = ()
    """The store's event names of the step (from, to), e.g. ``("Checkout Started",
    "Payment Info Entered")``."""
    max_severity: Severity = "high"
    """Some kinds are never urgent (a slow conversion delays revenue, it does not lose it)."""


@dataclass(frozen=True)
class DetectionContext:
    """Where to look: a workspace, a half-open period ``[since, until)``, the stage mapping that
    gives event names their roles, and optionally a segment the map is drawn for.

    ``segment`` keys are event columns (``device_type``, ``channel``…), ``properties.<key>`` or
    ``traits.<key>`` (a person's latest ``$identify`` trait, e.g. ``traits.persona``).
    """

    workspace_id: str
    since: datetime
    until: datetime
    mapping: StageMapping
    segment: Mapping[str, str] | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)

    def __post_init__(self) -> None:
        for name, value in (("since", self.since), ("until", self.until)):
            if value.tzinfo is None or value.utcoffset() is None:
                raise InputError(f"{name} must be timezone-aware (UTC)", field=name)
        if self.since >= self.until:
            raise InputError(f"empty period: since {self.since} is not before until {self.until}")
        for key in self.segment or {}:
            if key.startswith("traits."):
                parts = key.split(".")[1:]
                if not parts or not all(SAFE_KEY.match(part) for part in parts):
                    raise InputError(f"invalid trait name {key!r}", field="segment")
            else:
                resolve_key(key)  # raises InputError for a name that cannot be a key


@dataclass(frozen=True)
class StoreProfile:
    """What a store tracks, found from its own events in the period."""

    event_counts: Mapping[str, int]
    names_by_role: Mapping[str, tuple[str, ...]]
    orders: int
    revenue: Decimal
    trait_keys: tuple[str, ...]

    @property
    def average_order_value(self) -> Decimal:
        return (self.revenue / self.orders).quantize(CENT) if self.orders else Decimal(0)

    def names(self, *roles: str) -> tuple[str, ...]:
        return tuple(sorted({n for r in roles for n in self.names_by_role.get(r, ())}))

    def has(self, role: str) -> bool:
        return bool(self.names_by_role.get(role))

    def main_name(self, role: str) -> str:
        """The most frequent event name with ``role`` (for titles and step labels)."""
        names = self.names_by_role.get(role, ())
        return max(names, key=lambda n: (self.event_counts.get(n, 0), n)) if names else role

    def funnel(self) -> tuple[str, ...]:
        """The funnel roles this store tracks, in order."""
        return tuple(r for r in FUNNEL if self.has(r))

    @property
    def dimensions(self) -> tuple[str, ...]:
        return COLUMN_DIMENSIONS + tuple(f"traits.{k}" for k in self.trait_keys)


def profile_from_rows(
    counts: Sequence[tuple[Any, ...]], traits: Sequence[tuple[Any, ...]], mapping: StageMapping
) -> StoreProfile:
    """Pure: (event, count, revenue sum, revenue count) rows and sampled trait JSON → profile.

    Trait keys become segment dimensions when most identified people have them and they take a
    handful of values (2–12): a persona or a plan, not an e-mail address. Keys named like an
    event column (``country``) are left out: the column already gives that segment.
    """
    event_counts = {str(r[0]): int(r[1]) for r in counts}
    by_role: dict[str, list[str]] = {}
    for name in event_counts:
        role = mapping.role(name)
        if role is not None:
            by_role.setdefault(role, []).append(name)
    purchases = set(by_role.get("purchase", ()))
    orders = sum(int(r[3] or 0) for r in counts if r[0] in purchases)
    revenue = sum((Decimal(r[2] or 0) for r in counts if r[0] in purchases), Decimal(0))
    values: dict[str, set[str]] = {}
    present: dict[str, int] = {}
    for (text,) in traits:
        try:
            obj = orjson.loads(text) if isinstance(text, str | bytes) else text
        except orjson.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        for key, value in obj.items():
            if isinstance(value, str | bool | int) and SAFE_KEY.match(str(key)):
                values.setdefault(key, set()).add(str(value))
                present[key] = present.get(key, 0) + 1
    sampled = max(1, len(traits))
    keys = sorted(
        (
            k
            for k, v in values.items()
            if 2 <= len(v) <= 12 and present[k] >= 0.3 * sampled and k not in COLUMN_DIMENSIONS
        ),
        key=lambda k: (-present[k], k),
    )[:MAX_TRAIT_DIMENSIONS]
    return StoreProfile(
        event_counts=event_counts,
        names_by_role={r: tuple(sorted(n)) for r, n in by_role.items()},
        orders=orders,
        revenue=revenue,
        trait_keys=tuple(sorted(keys)),
    )


def in_list(p: Params, column: str, names: Sequence[str]) -> str:
    """``column IN (…)`` with the names as parameters; ``FALSE`` for no names."""
    if not names:
        return "FALSE"
    return f"{column} IN ({', '.join(p(n) for n in names)})"


def dimension_sql(dimension: str, alias: str = "") -> str:
    """The SQL column name a dimension is selected as (``traits.persona`` → ``t_persona``)."""
    name = dimension.replace("traits.", "t_", 1) if dimension.startswith("traits.") else dimension
    return f"{alias}{name}"


class StoreView:
    """A detector's window on one store: the backend, the context, the profile, and the shared
    pieces of SQL (which events, which people), fetched once and cached."""

    def __init__(self, backend: Backend, context: DetectionContext) -> None:
        self.backend = backend
        self.context = context
        self.dialect = backend.dialect
        self._cache: dict[str, Any] = {}
        self.profile = self._load_profile()

    @property
    def thresholds(self) -> Thresholds:
        return self.context.thresholds

    def fetch(self, query: CompiledQuery) -> list[tuple[Any, ...]]:
        return self.backend.fetch(query.sql, query.params)

    def cached(self, key: str, build: Any) -> Any:
        """``build()`` once per view (queries several detectors share)."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def where(self, p: Params, *, period: bool = True) -> str:
        """Conditions on ``events`` rows: the workspace, the period, and the map's segment."""
        c = self.context
        parts = [f"workspace_id = {p(c.workspace_id)}"]
        if period:
            parts.append(f"timestamp >= {p(c.since)} AND timestamp < {p(c.until)}")
        for key, value in sorted((c.segment or {}).items()):
            if key.startswith("traits."):
                trait = latest_trait_sql(
                    tuple(key.split(".")[1:]), workspace_id=c.workspace_id, dialect=self.dialect
                )
                inner = p.embed(trait)
                parts.append(
                    f"person_id IN (SELECT person_id FROM ({inner}) AS _seg "
                    f"WHERE value = {p(value)})"
                )
            else:
                frag = filter_sql(PropertyFilter(key, "eq", value), dialect=self.dialect)
                parts.append(p.embed(frag))
        return " AND ".join(parts)

    def _load_profile(self) -> StoreProfile:
        p = Params()
        counts = self.fetch(
            p.compile(
                "SELECT event, count(*), sum(revenue), count(revenue) FROM events "
                f"WHERE {self.where(p)} GROUP BY event"
            )
        )
        mapping = self.context.mapping
        identify = [str(r[0]) for r in counts if mapping.role(str(r[0])) == "identify"]
        traits: list[tuple[Any, ...]] = []
        if identify:
            q = Params()
            traits = self.fetch(
                q.compile(
                    "SELECT CAST(traits AS VARCHAR) FROM events "
                    f"WHERE {self.where(q)} AND {in_list(q, 'event', identify)} "
                    "AND traits IS NOT NULL LIMIT 5000"
                )
            )
        return profile_from_rows(counts, traits, mapping)
