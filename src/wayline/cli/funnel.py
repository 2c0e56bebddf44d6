"""``wayline funnel``: a conversion funnel over the analytics store, in the terminal.

    wayline funnel --steps "Product Viewed,Product Added|Cart Viewed,Order Completed"
    wayline funnel --steps "a,b,c" --window 7d --order strict --breakdown channel --json
    wayline funnel --steps "a,b,c" --exclude "Coupon Removed@1-3" --dropped-at 3

Options are parsed into a :class:`wayline.analytics.funnels.FunnelQuery` and run on the DuckDB
analytics store (opened read-only). The result is a rich table, or with ``--json`` a JSON object
with ``steps`` (name, users, conversion, dropped, median/p90 seconds…) and, with a breakdown,
``breakdown`` mapping each value to its steps. ``--dropped-at K`` lists instead the ids of the
customers who reached step K-1 but not step K.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from wayline.analytics.backend import DuckDBBackend
from wayline.analytics.funnels import (
    ORDERS,
    FunnelQuery,
    FunnelResult,
    FunnelStepResult,
    dropped_persons,
    parse_steps,
    parse_window,
    run_funnel,
)
from wayline.analytics.params import parse_exclusion, parse_time
from wayline.cli import app
from wayline.config import Settings
from wayline.display import duration, percent
from wayline.errors import ConfigError, InputError
from wayline.storage.eventstore import EventStore

console = Console()


def _table(title: str, steps: tuple[FunnelStepResult, ...], unit: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("step")
    table.add_column(unit, justify="right")
    table.add_column("conversion", justify="right")
    table.add_column("from previous", justify="right")
    table.add_column("dropped", justify="right")
    table.add_column("median time", justify="right")
    table.add_column("p90 time", justify="right")
    for s in steps:
        table.add_row(
            str(s.index),
            s.name,
            f"{s.users:,}",
            percent(s.conversion),
            percent(s.conversion_from_previous) if s.index > 1 else "",
            f"{s.dropped:,}" if s.index > 1 else "",
            duration(s.median_seconds),
            duration(s.p90_seconds),
        )
    return table


def _show(result: FunnelResult) -> None:
    q = result.query
    window = "none" if q.window is None else duration(q.window.total_seconds())
    unit = "sessions" if q.by == "session" else "customers"
    title = f"Funnel ({q.order}, window {window})"
    console.print(_table(title, result.steps, unit))
    for group in result.breakdown:
        label = group.value if group.value is not None else "(none)"
        console.print(_table(f"{q.breakdown} = {label}", group.steps, unit))


@app.command("funnel")
def funnel_command(
    steps: Annotated[
        str,
        typer.Option(
            "--steps",
            help="Comma-separated steps; a|b accepts either event; a[key=value;n>=2] filters.",
        ),
    ],
    window: Annotated[
        str, typer.Option("--window", help="Conversion window from step 1: 7d, 12h, 30m or none.")
    ] = "14d",
    order: Annotated[
        str, typer.Option("--order", help=f"Step order: {', '.join(ORDERS)}.")
    ] = "ordered",
    breakdown: Annotated[
        str | None,
        typer.Option(
            "--breakdown",
            help="Split by an event property or column (first touch), traits.NAME, or cohort.",
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="EVENT[@FROM-TO]: drop attempts with it between steps."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="From this date/time (ISO, UTC), inclusive.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Up to this date/time (ISO, UTC), exclusive.")
    ] = None,
    by: Annotated[str, typer.Option("--by", help="Count customers (person) or sessions.")] = (
        "person"
    ),
    dropped_at: Annotated[
        int | None,
        typer.Option("--dropped-at", help="List the customers who reached step K-1 but not K."),
    ] = None,
    value: Annotated[
        str | None,
        typer.Option("--value", help="With --dropped-at and --breakdown: only this value."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many ids.")] = 1000,
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="Workspace id.")] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """How many customers go through STEPS, where they drop off, and how long it takes."""
    if order not in ORDERS:
        raise InputError(f"--order must be one of {', '.join(ORDERS)}", field="order")
    if by not in ("person", "session"):
        raise InputError("--by must be person or session", field="by")
    query = FunnelQuery(
        steps=parse_steps(steps),
        window=parse_window(window),
        order=order,  # type: ignore[arg-type]
        exclusions=tuple(parse_exclusion(x) for x in exclude or ()),
        breakdown=breakdown,
        since=parse_time(since, "since"),
        until=parse_time(until, "until"),
        by=by,  # type: ignore[arg-type]
        workspace_id=workspace,
    )
    path = Settings().resolved_analytics_path
    if not path.exists():
        raise ConfigError(f"no analytics store at {path}: import events or run the demo first")
    with EventStore(path, read_only=True) as store:
        backend = DuckDBBackend(store.con)
        if dropped_at is not None:
            ids = dropped_persons(
                backend,
                query,
                dropped_at,
                value=value,
                any_value=value is None,
                limit=limit,
            )
            if as_json:
                _emit({"dropped_at": dropped_at, "count": len(ids), "person_ids": ids})
            else:
                for person in ids:
                    typer.echo(person)
            return
        result = run_funnel(backend, query)
    if as_json:
        _emit(result.to_dict())
    else:
        _show(result)


def _emit(data: Any) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
