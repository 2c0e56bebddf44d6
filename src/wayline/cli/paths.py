"""``wayline paths``, ``retention``, ``rfm`` and ``lifecycle``: journey analytics in the terminal.

Each command parses its options into a query of :mod:`wayline.analytics` (paths, retention,
customer_value, lifecycle), runs it on the analytics store, and shows rich tables — or, with
``--json``, the result as JSON on stdout (the Sankey's nodes and links for ``paths``).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

import orjson
import typer
from rich.console import Console
from rich.table import Table

from wayline.analytics.backend import DuckDBBackend
from wayline.analytics.customer_value import OrdersQuery, repeat_purchase, rfm
from wayline.analytics.lifecycle import LifecycleQuery, lifecycle
from wayline.analytics.params import parse_filters, parse_time
from wayline.analytics.paths import GroupRule, PathsQuery, paths, transitions
from wayline.analytics.retention import PERIODS, RetentionQuery, retention
from wayline.cli import app
from wayline.config import Settings
from wayline.display import duration, percent
from wayline.errors import ConfigError, InputError
from wayline.storage.eventstore import EventStore

console = Console()

Workspace = Annotated[str, typer.Option("--workspace", "-w", help="Workspace id.")]
Since = Annotated[
    str | None, typer.Option("--since", help="From this date/time (ISO, UTC), inclusive.")
]
Until = Annotated[
    str | None, typer.Option("--until", help="Up to this date/time (ISO, UTC), exclusive.")
]
Where = Annotated[
    list[str] | None,
    typer.Option("--where", help="Property filter: key=value, key>=10, key~text, key? …"),
]
Json = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
PurchaseEvents = Annotated[
    list[str] | None,
    typer.Option(
        "--purchase-event",
        help="Event name that is an order (repeatable; default: Order Completed).",
    ),
]


def _period(text: str) -> Literal["day", "week", "month"]:
    if text not in PERIODS:
        raise InputError(f"period must be one of {', '.join(PERIODS)}", field="--period")
    return text


def _backend() -> tuple[EventStore, DuckDBBackend]:
    path = Settings().resolved_analytics_path
    if not path.exists():
        raise ConfigError(f"no analytics store at {path}: import events or run the demo first")
    store = EventStore(path, read_only=True)
    return store, DuckDBBackend(store.con)


def _emit_json(data: Any) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode())


@app.command("paths")
def paths_command(
    start: Annotated[
        str | None, typer.Option("--from", help="Paths from the first occurrence of this.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Paths to the first occurrence of this.")
    ] = None,
    steps: Annotated[int, typer.Option("--steps", help="Steps in each path.")] = 5,
    by: Annotated[str, typer.Option("--by", help="person or session.")] = "person",
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Leave this event out (repeatable).")
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option("--group", help="REGEX=NAME: rename matching items (repeatable)."),
    ] = None,
    events_only: Annotated[
        bool, typer.Option("--events-only", help="Name page views $page, not by their path.")
    ] = False,
    keep_repeats: Annotated[
        bool, typer.Option("--keep-repeats", help="Do not collapse repeated steps.")
    ] = False,
    edges: Annotated[int, typer.Option("--edges", help="Keep the N largest links.")] = 50,
    top: Annotated[int, typer.Option("--top", help="How many top paths.")] = 10,
    show_transitions: Annotated[
        bool,
        typer.Option("--transitions", help="Show the whole transition graph instead."),
    ] = False,
    since: Since = None,
    until: Until = None,
    where: Where = None,
    workspace: Workspace = "default",
    as_json: Json = False,
) -> None:
    """Paths customers take: a Sankey of the first steps (or around an event) and top paths."""
    if by not in ("person", "session"):
        raise InputError("--by must be person or session", field="--by")
    query = PathsQuery(
        workspace_id=workspace,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
        by=cast(Literal["person", "session"], by),
        item="event" if events_only else "event_or_page",
        filters=parse_filters(where),
        exclude=tuple(exclude or ()),
        groups=tuple(GroupRule.parse(g) for g in group or ()),
        collapse_repeats=not keep_repeats,
        start=start,
        end=end,
        steps=steps,
        edge_limit=edges,
        path_limit=top,
    )
    store, backend = _backend()
    with store:
        if show_transitions:
            graph = transitions(backend, query)
            if as_json:
                _emit_json({"transitions": [asdict(t) for t in graph]})
                return
            table = Table(title="transitions")
            for col in ("from", "to", "count", "persons", "share", "median time"):
                table.add_column(col, justify="right" if col not in ("from", "to") else "left")
            for t in graph[:edges]:
                table.add_row(
                    t.source,
                    t.target,
                    f"{t.count:,}",
                    f"{t.persons:,}",
                    percent(t.share),
                    duration(t.median_seconds),
                )
            console.print(table)
            return
        result = paths(backend, query)
    if as_json:
        _emit_json(result.to_dict())
        return
    names = {n.id: (n.step, n.name) for n in result.nodes}
    table = Table(title=f"top links ({result.units:,} paths)")
    for col in ("step", "from", "to", "count", "persons", "share", "median time"):
        table.add_column(col, justify="left" if col in ("from", "to") else "right")
    for link in result.links[:25]:
        s_step, s_name = names[link.source]
        table.add_row(
            str(s_step),
            s_name,
            names[link.target][1],
            f"{link.value:,}",
            f"{link.persons:,}",
            percent(link.share),
            duration(link.median_seconds),
        )
    console.print(table)
    if result.top_paths:
        tops = Table(title="top paths")
        tops.add_column("path")
        tops.add_column("count", justify="right")
        tops.add_column("share", justify="right")
        for p in result.top_paths:
            tops.add_row(" → ".join(p.items), f"{p.count:,}", percent(p.share))
        console.print(tops)


@app.command("retention")
def retention_command(
    period: Annotated[str, typer.Option("--period", help="day, week or month.")] = "month",
    first_seen: Annotated[
        bool,
        typer.Option("--first-seen", help="Cohorts by first event, not by first purchase."),
    ] = False,
    purchase_event: PurchaseEvents = None,
    return_event: Annotated[
        list[str] | None,
        typer.Option("--return-event", help="What counts as coming back (repeatable)."),
    ] = None,
    periods: Annotated[int, typer.Option("--periods", help="Periods after the cohort's.")] = 12,
    since: Since = None,
    until: Until = None,
    where: Where = None,
    workspace: Workspace = "default",
    as_json: Json = False,
) -> None:
    """Cohorts by first purchase (or first visit) and the share back in each later period."""
    query = RetentionQuery(
        workspace_id=workspace,
        period=_period(period),
        cohort="first_seen" if first_seen else "first_purchase",
        purchase_events=tuple(purchase_event or RetentionQuery.purchase_events),
        return_events=tuple(return_event) if return_event else None,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
        periods=periods,
        filters=parse_filters(where),
    )
    store, backend = _backend()
    with store:
        result = retention(backend, query, now=datetime.now(UTC))
    if as_json:
        _emit_json(result.to_dict())
        return
    width = max((len(c.retained) for c in result.cohorts), default=0)
    table = Table(title=f"retention by {query.cohort.replace('_', ' ')} ({query.period})")
    table.add_column("cohort")
    table.add_column("customers", justify="right")
    for n in range(width):
        table.add_column(f"{n}", justify="right")
    fmt = "%Y-%m-%d" if query.period != "month" else "%Y-%m"
    for c in result.cohorts:
        table.add_row(c.start.strftime(fmt), f"{c.size:,}", *(percent(r) for r in c.rates))
    table.add_row("mean", "", *(percent(r) for r in result.average_rates()), style="bold")
    console.print(table)


@app.command("rfm")
def rfm_command(
    purchase_event: PurchaseEvents = None,
    customers: Annotated[
        int, typer.Option("--customers", help="Also list this many top customers.")
    ] = 0,
    since: Since = None,
    until: Until = None,
    where: Where = None,
    workspace: Workspace = "default",
    as_json: Json = False,
) -> None:
    """Customer value: repeat-purchase rate, time between orders, RFM segments."""
    query = OrdersQuery(
        workspace_id=workspace,
        purchase_events=tuple(purchase_event or OrdersQuery.purchase_events),
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
        filters=parse_filters(where),
    )
    store, backend = _backend()
    with store:
        repeat = repeat_purchase(backend, query)
        scores = rfm(backend, query, now=datetime.now(UTC))
    if as_json:
        _emit_json(
            {"repeat_purchase": repeat.to_dict(), "rfm": scores.to_dict(customers=customers > 0)}
        )
        return
    summary = Table(title="orders", show_header=False)
    summary.add_column("what", style="bold")
    summary.add_column("value", justify="right")
    summary.add_row("customers", f"{repeat.customers:,}")
    summary.add_row("orders", f"{repeat.orders:,}")
    summary.add_row("revenue", f"{repeat.revenue:,}")
    summary.add_row("repeat-purchase rate", percent(repeat.rate))
    summary.add_row("median time between orders", duration(repeat.median_gap_seconds))
    summary.add_row("mean time between orders", duration(repeat.mean_gap_seconds))
    summary.add_row("median time to 2nd order", duration(repeat.median_seconds_to_second_order))
    for label, n in repeat.gap_buckets:
        summary.add_row(f"gaps {label}", f"{n:,}")
    console.print(summary)
    segments = Table(title=f"RFM segments (as of {scores.as_of:%Y-%m-%d %H:%M} UTC)")
    for col in ("segment", "customers", "share", "revenue"):
        segments.add_column(col, justify="left" if col == "segment" else "right")
    for s in scores.segments():
        segments.add_row(s.name, f"{s.customers:,}", percent(s.share), f"{s.revenue:,}")
    console.print(segments)
    if customers > 0:
        best = scores.top(customers)
        table = Table(title="top customers by revenue")
        for col in ("customer", "R", "F", "M", "segment", "orders", "revenue", "last order"):
            table.add_column(col)
        for c in best:
            table.add_row(
                c.person_id,
                str(c.r),
                str(c.f),
                str(c.m),
                c.segment,
                str(c.frequency),
                f"{c.monetary:,}",
                f"{c.last_order:%Y-%m-%d}",
            )
        console.print(table)


@app.command("lifecycle")
def lifecycle_command(
    period: Annotated[str, typer.Option("--period", help="day, week or month.")] = "week",
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="Only these events make a customer active (repeatable)."),
    ] = None,
    since: Since = None,
    until: Until = None,
    where: Where = None,
    workspace: Workspace = "default",
    as_json: Json = False,
) -> None:
    """New, returning, resurrecting and dormant customers per period."""
    query = LifecycleQuery(
        workspace_id=workspace,
        period=_period(period),
        events=tuple(event) if event else None,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
        filters=parse_filters(where),
    )
    store, backend = _backend()
    with store:
        result = lifecycle(backend, query, now=datetime.now(UTC))
    if as_json:
        _emit_json(result.to_dict())
        return
    table = Table(title=f"lifecycle ({query.period})")
    for col in ("period", "new", "returning", "resurrecting", "dormant", "quick ratio"):
        table.add_column(col, justify="left" if col == "period" else "right")
    for p in result.periods:
        table.add_row(
            f"{p.start:%Y-%m-%d}",
            f"{p.new:,}",
            f"{p.returning:,}",
            f"{p.resurrecting:,}",
            f"{p.dormant:,}",
            "—" if p.quick_ratio is None else f"{p.quick_ratio:.2f}",
        )
    console.print(table)
