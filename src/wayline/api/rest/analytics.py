"""``/api/v1/funnels``, ``/funnels/dropoffs``, ``/paths``, ``/retention``, ``/lifecycle``,
``/customer-value``: the analytics of :mod:`wayline.analytics` over HTTP, for the caller's
workspace.

Each route parses its query string into the same query object as the CLI command
(``wayline funnel``, ``paths``, ``retention``, ``lifecycle``, ``rfm``) and answers the same JSON
as the command's ``--json`` (``/customer-value`` lists the top customers asked for, where the
command lists them all). Results come through the analytics cache (:mod:`wayline.web.cache`): a
repeated question is answered from memory until new events arrive. A workspace with no events
answers empty results (no steps reached, no paths, no cohorts), never an error.

The query parsing and running live here as plain functions so that the dashboard's pages
(:mod:`wayline.web.analytics_pages`) ask exactly the same questions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from wayline.analytics.backend import Backend
from wayline.analytics.customer_value import (
    RFM_SEGMENTS,
    OrdersQuery,
    RepeatPurchase,
    RfmResult,
    repeat_purchase,
    rfm,
)
from wayline.analytics.funnels import (
    FunnelQuery,
    FunnelResult,
    dropped_persons,
    parse_steps,
    parse_window,
    run_funnel,
)
from wayline.analytics.funnels import validate as validate_funnel
from wayline.analytics.lifecycle import LifecycleQuery, LifecycleResult, lifecycle
from wayline.analytics.lifecycle import validate as validate_lifecycle
from wayline.analytics.params import parse_exclusion, parse_filters, parse_time
from wayline.analytics.paths import GroupRule, PathsQuery, PathsResult, paths
from wayline.analytics.paths import validate as validate_paths
from wayline.analytics.retention import RetentionQuery, RetentionResult, retention
from wayline.analytics.retention import validate as validate_retention
from wayline.api.rest.deps import Page, Paging, Workspace
from wayline.errors import InputError
from wayline.web.cache import Cached, cached_result

router = APIRouter(tags=["Analytics"])

FunnelOrderParam = Literal["ordered", "strict", "any"]
UnitParam = Literal["person", "customer", "session"]
PeriodParam = Literal["day", "week", "month"]


# ---------------------------------------------------------------------------------------------
# Parsing (shared with the dashboard)


def _unit(by: str) -> Literal["person", "session"]:
    # "customer" is what the dashboard calls a person.
    if by in ("person", "customer"):
        return "person"
    if by == "session":
        return "session"
    raise InputError("by must be customer (person) or session", field="by")


def _with_field(exc: InputError, field: str) -> InputError:
    return exc if exc.field is not None else InputError(exc.message, field=field)


def funnel_query(
    workspace_id: str,
    *,
    steps: str,
    window: str = "14d",
    order: str = "ordered",
    breakdown: str | None = None,
    exclude: list[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    by: str = "person",
) -> FunnelQuery:
    """The funnel the user asked for, validated (InputError naming the parameter)."""
    if order not in ("ordered", "strict", "any"):
        raise InputError("order must be ordered, strict or any", field="order")
    try:
        parsed_steps = parse_steps(steps)
    except InputError as exc:
        raise _with_field(exc, "steps") from None
    try:
        parsed_window = parse_window(window)
    except InputError as exc:
        raise _with_field(exc, "window") from None
    except OverflowError:
        raise InputError(f"window {window!r} is too long", field="window") from None
    query = FunnelQuery(
        steps=parsed_steps,
        window=parsed_window,
        order=order,  # type: ignore[arg-type]
        exclusions=tuple(parse_exclusion(x) for x in exclude or () if x.strip()),
        breakdown=breakdown.strip() if breakdown and breakdown.strip() else None,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        by=_unit(by),
        workspace_id=workspace_id,
    )
    try:
        return validate_funnel(query)
    except InputError as exc:
        # The core names its own fields; callers know the query parameters.
        param = {"filter": "breakdown", "exclusions": "exclude"}.get(exc.field or "", exc.field)
        raise InputError(exc.message, field=param) from None


def paths_query(
    workspace_id: str,
    *,
    start: str | None = None,
    end: str | None = None,
    steps: int = 5,
    by: str = "person",
    exclude: list[str] | None = None,
    group: list[str] | None = None,
    events_only: bool = False,
    keep_repeats: bool = False,
    edges: int = 50,
    top: int = 10,
    since: str | None = None,
    until: str | None = None,
    where: list[str] | None = None,
) -> PathsQuery:
    groups = []
    for text in group or ():
        try:
            groups.append(GroupRule.parse(text))
        except InputError as exc:
            raise _with_field(exc, "group") from None
    query = PathsQuery(
        workspace_id=workspace_id,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        by=_unit(by),
        item="event" if events_only else "event_or_page",
        filters=parse_filters(where),
        exclude=tuple(x for x in exclude or () if x.strip()),
        groups=tuple(groups),
        collapse_repeats=not keep_repeats,
        start=start.strip() if start and start.strip() else None,
        end=end.strip() if end and end.strip() else None,
        steps=steps,
        edge_limit=edges,
        path_limit=top,
    )
    return _named(validate_paths, query)


def retention_query(
    workspace_id: str,
    *,
    period: str = "month",
    cohort: str = "first_purchase",
    purchase_events: list[str] | None = None,
    return_events: list[str] | None = None,
    periods: int = 12,
    since: str | None = None,
    until: str | None = None,
    where: list[str] | None = None,
) -> RetentionQuery:
    query = RetentionQuery(
        workspace_id=workspace_id,
        period=period,  # type: ignore[arg-type]
        cohort=cohort,  # type: ignore[arg-type]
        purchase_events=tuple(purchase_events or RetentionQuery.purchase_events),
        return_events=tuple(return_events) if return_events else None,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        periods=periods,
        filters=parse_filters(where),
    )
    return _named(validate_retention, query)


Q = TypeVar("Q")


def _named(validate: Callable[[Q], Q], query: Q) -> Q:
    """``validate(query)``, its errors naming the query parameter (the date range: until)."""
    try:
        return validate(query)
    except InputError as exc:
        if exc.field is not None:
            raise
        raise InputError(exc.message, field="until") from None


# ---------------------------------------------------------------------------------------------
# Running through the cache (shared with the dashboard)


def run_funnel_cached(state: Any, query: FunnelQuery) -> Cached[FunnelResult]:
    """The funnel from the cache of the app whose ``state`` (with its settings) is given."""
    return cached_result(state, ("funnel", query), lambda b: run_funnel(b, query))


def run_paths_cached(state: Any, query: PathsQuery) -> Cached[PathsResult]:
    return cached_result(state, ("paths", query), lambda b: paths(b, query))


def run_retention_cached(state: Any, query: RetentionQuery) -> Cached[RetentionResult]:
    return cached_result(
        state,
        ("retention", query),
        lambda b: retention(b, query, now=datetime.now(UTC)),
    )


# ---------------------------------------------------------------------------------------------
# Response models (the CLI's --json shapes)


class FunnelStepOut(BaseModel):
    index: int = Field(description="1-based step number.")
    name: str
    users: int = Field(description="Customers (or sessions) that reached this step.")
    conversion: float | None = Field(description="Share of step 1's that reached this step.")
    conversion_from_previous: float | None
    dropped: int = Field(description="Reached the previous step but not this one.")
    median_seconds: float | None
    p90_seconds: float | None
    median_seconds_from_start: float | None
    p90_seconds_from_start: float | None


class FunnelOut(BaseModel):
    order: str
    window_seconds: float | None
    by: str
    steps: list[FunnelStepOut]
    breakdown_by: str | None = Field(default=None, description="Present with a breakdown.")
    breakdown: dict[str, list[FunnelStepOut]] | None = Field(
        default=None, description="Steps per breakdown value ('(none)': no value)."
    )


class DroppedCustomer(BaseModel):
    person_id: str


class PathsQueryOut(BaseModel):
    workspace_id: str
    since: str | None
    until: str | None
    by: str
    start: str | None
    end: str | None
    steps: int


class SankeyNodeOut(BaseModel):
    id: str
    name: str
    step: int


class SankeyLinkOut(BaseModel):
    source: str = Field(description="Node id.")
    target: str = Field(description="Node id.")
    value: int
    persons: int
    share: float = Field(description="Share of the source node's outgoing flow.")
    median_seconds: float | None


class PathVariantOut(BaseModel):
    items: list[str]
    count: int
    persons: int
    share: float


class PathsOut(BaseModel):
    query: PathsQueryOut
    units: int
    nodes: list[SankeyNodeOut]
    links: list[SankeyLinkOut]
    top_paths: list[PathVariantOut]


class CohortOut(BaseModel):
    start: str
    size: int
    retained: list[int] = Field(description="Customers back in period 0, 1, 2…")
    rates: list[float]


class RetentionOut(BaseModel):
    period: str
    cohort: str
    now: str
    cohorts: list[CohortOut]
    average_rates: list[float | None]


class LifecyclePeriodOut(BaseModel):
    start: str
    new: int
    returning: int
    resurrecting: int
    dormant: int
    active: int
    quick_ratio: float | None


class LifecycleOut(BaseModel):
    period: str
    events: list[str] | None
    periods: list[LifecyclePeriodOut]


class RepeatPurchaseOut(BaseModel):
    customers: int
    repeat_customers: int
    repeat_purchase_rate: float | None
    orders: int
    revenue: str = Field(description="Exact decimal, as a string.")
    gaps: int = Field(description="Times between two orders of one customer.")
    median_days_between_orders: float | None
    mean_days_between_orders: float | None
    median_days_to_second_order: float | None
    gap_buckets: dict[str, int] = Field(description="Gaps per bucket of days (0-7d, 7-30d…).")


class RfmSegmentOut(BaseModel):
    name: str
    customers: int
    share: float
    revenue: str


class RfmCustomerOut(BaseModel):
    person_id: str
    last_order: str
    recency_days: float
    frequency: int = Field(description="Orders.")
    monetary: str = Field(description="Revenue, exact decimal, as a string.")
    r: int
    f: int
    m: int
    segment: str


class RfmOut(BaseModel):
    as_of: str
    segments: list[RfmSegmentOut] = Field(description="Largest first.")
    customers: list[RfmCustomerOut] = Field(
        description="The top customers by revenue asked for (of the segment, if one was given)."
    )


class CustomerValueOut(BaseModel):
    repeat_purchase: RepeatPurchaseOut
    rfm: RfmOut


# ---------------------------------------------------------------------------------------------
# Routes

Since = Annotated[
    str | None, Query(description="From this date/time (ISO, UTC), inclusive.", max_length=64)
]
Until = Annotated[
    str | None, Query(description="Up to this date/time (ISO, UTC), exclusive.", max_length=64)
]
Where = Annotated[
    list[str] | None,
    Query(description="Property filter: key=value, key>=10, key~text, key? … (repeatable)."),
]
Steps = Annotated[
    str,
    Query(
        min_length=1,
        max_length=4000,
        description="Comma-separated steps; a|b accepts either event; a[key=value] filters.",
    ),
]
Window = Annotated[
    str, Query(max_length=32, description="Conversion window from step 1: 7d, 12h, 30m or none.")
]
Exclude = Annotated[
    list[str] | None, Query(description="EVENT[@FROM-TO]: drop attempts with it between steps.")
]
Breakdown = Annotated[
    str | None,
    Query(max_length=200, description="Split by a property or column, traits.NAME, or cohort."),
]


@router.get(
    "/funnels",
    response_model=FunnelOut,
    response_model_exclude_unset=True,
    summary="A conversion funnel",
)
def get_funnel(
    ctx: Workspace,
    request: Request,
    steps: Steps,
    window: Window = "14d",
    order: FunnelOrderParam = "ordered",
    breakdown: Breakdown = None,
    exclude: Exclude = None,
    since: Since = None,
    until: Until = None,
    by: UnitParam = "person",
) -> Any:
    """How many customers go through the steps, where they drop off, and how long it takes
    (the JSON of ``wayline funnel --json``)."""
    query = funnel_query(
        ctx.workspace_id,
        steps=steps,
        window=window,
        order=order,
        breakdown=breakdown,
        exclude=exclude,
        since=since,
        until=until,
        by=by,
    )
    return FunnelOut.model_validate(run_funnel_cached(request.app.state, query).value.to_dict())


@router.get(
    "/funnels/dropoffs",
    response_model=Page[DroppedCustomer],
    summary="Who dropped off at a funnel step",
)
def get_funnel_dropoffs(
    ctx: Workspace,
    request: Request,
    paging: Paging,
    steps: Steps,
    step: Annotated[int, Query(ge=2, description="The step they did not reach (2…).")],
    window: Window = "14d",
    order: FunnelOrderParam = "ordered",
    breakdown: Breakdown = None,
    value: Annotated[
        str | None, Query(max_length=200, description="With a breakdown: only this value.")
    ] = None,
    exclude: Exclude = None,
    since: Since = None,
    until: Until = None,
    by: UnitParam = "person",
) -> Page[DroppedCustomer]:
    """The customers who reached step ``step - 1`` but not step ``step``, in id order."""
    query = funnel_query(
        ctx.workspace_id,
        steps=steps,
        window=window,
        order=order,
        breakdown=breakdown,
        exclude=exclude,
        since=since,
        until=until,
        by=by,
    )
    if step > len(query.steps):
        raise InputError(f"the funnel has {len(query.steps)} steps", field="step")
    if value is not None and query.breakdown is None:
        raise InputError("value needs a breakdown", field="value")
    ids = cached_result(
        request.app.state,
        ("dropoffs", query, step, value),
        lambda b: sorted(dropped_persons(b, query, step, value=value, any_value=value is None)),
    ).value
    items = [
        DroppedCustomer(person_id=p) for p in ids[paging.offset : paging.offset + paging.limit]
    ]
    return Page[DroppedCustomer].of(items, len(ids), paging)


@router.get("/paths", response_model=PathsOut, summary="Paths customers take (Sankey)")
def get_paths(
    ctx: Workspace,
    request: Request,
    start: Annotated[
        str | None,
        Query(alias="from", max_length=200, description="Paths from the first occurrence."),
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", max_length=200, description="Paths to the first occurrence.")
    ] = None,
    steps: Annotated[int, Query(ge=2, le=50, description="Steps in each path.")] = 5,
    by: UnitParam = "person",
    exclude: Annotated[list[str] | None, Query(description="Leave this event out.")] = None,
    group: Annotated[
        list[str] | None, Query(description="REGEX=NAME: rename matching items.")
    ] = None,
    events_only: Annotated[bool, Query(description="Name page views $page.")] = False,
    keep_repeats: Annotated[bool, Query(description="Do not collapse repeated steps.")] = False,
    edges: Annotated[int, Query(ge=1, le=1000, description="Keep the N largest links.")] = 50,
    top: Annotated[int, Query(ge=0, le=1000, description="How many top paths.")] = 10,
    since: Since = None,
    until: Until = None,
    where: Where = None,
) -> Any:
    """A Sankey's nodes and links (d3-sankey shape) and the top paths (the JSON of
    ``wayline paths --json``)."""
    query = paths_query(
        ctx.workspace_id,
        start=start,
        end=end,
        steps=steps,
        by=by,
        exclude=exclude,
        group=group,
        events_only=events_only,
        keep_repeats=keep_repeats,
        edges=edges,
        top=top,
        since=since,
        until=until,
        where=where,
    )
    return PathsOut.model_validate(run_paths_cached(request.app.state, query).value.to_dict())


@router.get("/retention", response_model=RetentionOut, summary="Retention by cohort")
def get_retention(
    ctx: Workspace,
    request: Request,
    period: PeriodParam = "month",
    cohort: Literal["first_purchase", "first_seen"] = "first_purchase",
    purchase_event: Annotated[
        list[str] | None, Query(description="Event names that are an order.")
    ] = None,
    return_event: Annotated[
        list[str] | None, Query(description="What counts as coming back.")
    ] = None,
    periods: Annotated[int, Query(ge=1, le=400, description="Periods after the cohort's.")] = 12,
    since: Since = None,
    until: Until = None,
    where: Where = None,
) -> Any:
    """Cohorts by first purchase (or first visit) and the share back in each later period
    (the JSON of ``wayline retention --json``)."""
    query = retention_query(
        ctx.workspace_id,
        period=period,
        cohort=cohort,
        purchase_events=purchase_event,
        return_events=return_event,
        periods=periods,
        since=since,
        until=until,
        where=where,
    )
    result = run_retention_cached(request.app.state, query).value
    return RetentionOut.model_validate(result.to_dict())


@router.get("/lifecycle", response_model=LifecycleOut, summary="Customer lifecycle per period")
def get_lifecycle(
    ctx: Workspace,
    request: Request,
    period: PeriodParam = "week",
    event: Annotated[
        list[str] | None, Query(description="Only these events make a customer active.")
    ] = None,
    since: Since = None,
    until: Until = None,
    where: Where = None,
) -> Any:
    """New, returning, resurrecting and dormant customers per period (the JSON of
    ``wayline lifecycle --json``)."""
    query = _named(
        validate_lifecycle,
        LifecycleQuery(
            workspace_id=ctx.workspace_id,
            period=period,
            events=tuple(event) if event else None,
            since=parse_time(since, "since"),
            until=parse_time(until, "until"),
            filters=parse_filters(where),
        ),
    )
    result: LifecycleResult = cached_result(
        request.app.state,
        ("lifecycle", query),
        lambda b: lifecycle(b, query, now=datetime.now(UTC)),
    ).value
    return LifecycleOut.model_validate(result.to_dict())


_SEGMENTS = sorted({name for _, name in RFM_SEGMENTS})


@router.get(
    "/customer-value",
    response_model=CustomerValueOut,
    summary="Repeat purchases, time between orders and RFM segments",
)
def get_customer_value(
    ctx: Workspace,
    request: Request,
    purchase_event: Annotated[
        list[str] | None,
        Query(description="Event name that is an order (repeatable; default: Order Completed)."),
    ] = None,
    customers: Annotated[
        int, Query(ge=0, le=1000, description="Also list this many top customers by revenue.")
    ] = 0,
    segment: Annotated[
        str | None,
        Query(description=f"List only customers of this RFM segment: {', '.join(_SEGMENTS)}."),
    ] = None,
    since: Since = None,
    until: Until = None,
    where: Where = None,
) -> Any:
    """Customer value (the JSON of ``wayline rfm --json``, with the top ``customers`` only)."""
    query = OrdersQuery(
        workspace_id=ctx.workspace_id,
        purchase_events=tuple(p.strip() for p in purchase_event or () if p.strip())
        or OrdersQuery.purchase_events,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        filters=parse_filters(where),
    )
    if query.since and query.until and query.since >= query.until:
        raise InputError("until must be after since", field="until")
    if segment is not None and segment not in _SEGMENTS:
        raise InputError(
            f"unknown RFM segment {segment!r}; one of: {', '.join(_SEGMENTS)}", field="segment"
        )

    def compute(b: Backend) -> tuple[RepeatPurchase, RfmResult]:
        return repeat_purchase(b, query), rfm(b, query, now=datetime.now(UTC))

    repeat, scores = cached_result(request.app.state, ("customer-value", query), compute).value
    out = scores.to_dict(customers=False)
    out["customers"] = [c.to_dict() for c in scores.top(customers, segment)]
    return CustomerValueOut.model_validate({"repeat_purchase": repeat.to_dict(), "rfm": out})
