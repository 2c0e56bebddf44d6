"""``wayline demo``: generate the sample store, load it, and show a first look at it.

The command is a short pipeline: generate (:func:`wayline.events.simulator.simulate_store`), load
into the analytics store and resolve identities, then show *sections*, each a function of a
:class:`DemoContext`. The store summary and the purchase funnel come first, then the problems
hidden in the store; later capabilities (the journey map, a sample journey) add their own
section to :data:`SECTIONS`, so this command grows without getting longer.

The shell owns the clock: the simulated period ends today (``start`` = 180 days ago, midnight
UTC), so the dashboard shows recent data; the seed fixes everything else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from wayline.analytics.backend import Backend, DuckDBBackend
from wayline.analytics.funnels import FunnelQuery, FunnelResult, FunnelStep, run_funnel
from wayline.cli import app
from wayline.config import Settings
from wayline.events.simulator import (
    ALL_PROBLEMS,
    ProblemKind,
    SimulatedStore,
    StoreConfig,
    simulate_store,
)
from wayline.events.simulator.load import write_events
from wayline.events.simulator.materialize import SOURCE
from wayline.storage.eventstore import EventStore
from wayline.storage.identity import resolve_identities

DEMO_DAYS = 180
FUNNEL_STEPS = ("$page", "Product Viewed", "Product Added", "Checkout Started", "Order Completed")
FUNNEL_WINDOW = timedelta(days=14)


@dataclass(frozen=True)
class DeviceSummary:
    device_type: str
    visitors: int
    buyers: int
    orders: int
    revenue: Decimal

    @property
    def conversion(self) -> float:
        return self.buyers / self.visitors if self.visitors else 0.0


@dataclass(frozen=True)
class StoreSummary:
    """Headline figures of the demo store, from the loaded events."""

    visitors: int
    customers: int
    """Visitors with at least one order."""
    orders: int
    revenue: Decimal
    devices: tuple[DeviceSummary, ...]

    @property
    def average_order_value(self) -> Decimal:
        if not self.orders:
            return Decimal("0.00")
        return (self.revenue / self.orders).quantize(Decimal("0.01"))


def summarize(backend: Backend, workspace_id: str) -> StoreSummary:
    """The store's headline figures (sample-store events of the workspace only)."""
    where = "workspace_id = ? AND source = ?"
    params = (workspace_id, SOURCE)
    ((visitors, customers, orders, revenue),) = backend.fetch(
        f"""SELECT count(DISTINCT person_id),
                   count(DISTINCT person_id) FILTER (WHERE event = 'Order Completed'),
                   count(*) FILTER (WHERE event = 'Order Completed'),
                   coalesce(sum(revenue) FILTER (WHERE event = 'Order Completed'), 0)
            FROM events WHERE {where}""",
        params,
    )
    rows = backend.fetch(
        f"""SELECT device_type, count(DISTINCT person_id),
                   count(DISTINCT person_id) FILTER (WHERE event = 'Order Completed'),
                   count(*) FILTER (WHERE event = 'Order Completed'),
                   coalesce(sum(revenue) FILTER (WHERE event = 'Order Completed'), 0)
            FROM events WHERE {where} AND device_type IS NOT NULL
            GROUP BY device_type ORDER BY 2 DESC""",
        params,
    )
    devices = tuple(
        DeviceSummary(str(d), int(v), int(b), int(o), Decimal(r)) for d, v, b, o, r in rows
    )
    return StoreSummary(int(visitors), int(customers), int(orders), Decimal(revenue), devices)


def purchase_funnel(backend: Backend, workspace_id: str) -> FunnelResult:
    """Visit → view → add → checkout → order, per customer, within 14 days."""
    query = FunnelQuery(
        steps=tuple(FunnelStep(events=(name,)) for name in FUNNEL_STEPS),
        window=FUNNEL_WINDOW,
        workspace_id=workspace_id,
    )
    return run_funnel(backend, query)


@dataclass
class DemoContext:
    """What a section of the demo output may use."""

    console: Console
    sim: SimulatedStore
    store: EventStore
    backend: Backend
    workspace_id: str


def _money(amount: Decimal) -> str:
    return f"€{amount:,.2f}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def show_summary(ctx: DemoContext) -> None:
    s = summarize(ctx.backend, ctx.workspace_id)
    table = Table(title="Your sample store", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    first = ctx.sim.config.start.date()
    last = (ctx.sim.config.start + timedelta(days=ctx.sim.config.days - 1)).date()
    table.add_row("Period", f"{first} – {last}")
    table.add_row("Visitors", f"{s.visitors:,}")
    table.add_row("Customers (ordered)", f"{s.customers:,}")
    table.add_row("Orders", f"{s.orders:,}")
    table.add_row("Revenue", _money(s.revenue))
    table.add_row("Average order value", _money(s.average_order_value))
    ctx.console.print(table)
    devices = Table(title="By device", title_justify="left")
    for name in ("Device", "Visitors", "Customers", "Conversion", "Orders", "Revenue"):
        devices.add_column(name, justify="left" if name == "Device" else "right")
    for d in s.devices:
        devices.add_row(
            d.device_type,
            f"{d.visitors:,}",
            f"{d.buyers:,}",
            _percent(d.conversion),
            f"{d.orders:,}",
            _money(d.revenue),
        )
    ctx.console.print(devices)


def show_funnel(ctx: DemoContext) -> None:
    result = purchase_funnel(ctx.backend, ctx.workspace_id)
    table = Table(
        title=f"Purchase funnel (customers, within {FUNNEL_WINDOW.days} days)",
        title_justify="left",
    )
    for name in ("Step", "Customers", "Of first step", "Of previous", "Dropped"):
        table.add_column(name, justify="left" if name == "Step" else "right")
    for step in result.steps:
        table.add_row(
            step.name,
            f"{step.users:,}",
            _percent(step.conversion),
            _percent(step.conversion_from_previous),
            f"{step.dropped:,}" if step.index > 1 else "",
        )
    ctx.console.print(table)


def show_problems(ctx: DemoContext) -> None:
    truth = ctx.sim.ground_truth
    if not truth:
        ctx.console.print("A [bold]clean[/] store: no problems were hidden in it.")
        return
    table = Table(
        title="Problems hidden in this store (the journey map should find them)",
        title_justify="left",
    )
    table.add_column("Problem")
    for name in ("Affected", "Others", "Customers"):
        table.add_column(name, justify="right")
    for p in truth:
        m = p.measurement
        if p.kind is ProblemKind.PAYMENT_OUTAGE:
            who = f"{p.start:%b %d} – {p.end - timedelta(days=1):%b %d}"
        else:
            who = ", ".join(f"{k}={v}" for k, v in p.segment)
        table.add_row(
            f"{p.title}\n[dim]{who} · {' → '.join(p.steps)}[/]",
            _percent(m.affected.value),
            _percent(m.baseline.value),
            f"{p.affected_customers:,}",
        )
    ctx.console.print(table)


#: The demo's output, in order. Later capabilities append theirs (journey map, sample journey).
SECTIONS: list[Callable[[DemoContext], None]] = [show_summary, show_funnel, show_problems]


def demo_start(now: datetime, days: int = DEMO_DAYS) -> datetime:
    """The first day of a demo period of ``days`` ending with today (UTC)."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days - 1)


@app.command()
def demo(
    events: Annotated[
        int, typer.Option(min=500, help="About how many events to generate.")
    ] = 200_000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same store.")] = 7,
    clean: Annotated[
        bool, typer.Option("--clean", help="A store without injected problems.")
    ] = False,
) -> None:
    """Generate a realistic sample store, load it, and show a first look at it."""
    settings = Settings()
    settings.ensure_home()
    console = Console()
    config = StoreConfig.for_events(
        events,
        seed=seed,
        start=demo_start(datetime.now(UTC)),
        days=DEMO_DAYS,
        problems=frozenset() if clean else ALL_PROBLEMS,
    )
    started = time.perf_counter()
    path = settings.resolved_analytics_path
    with EventStore(path) as store:
        # DuckDB draws its own progress bar on stdout for long statements: ours is enough.
        store.con.execute("SET enable_progress_bar = false")
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("Generating the sample store", total=1)
            sim = simulate_store(config)
            progress.update(task, completed=1)
            task = progress.add_task("Loading events", total=sim.num_events)
            write_events(store, sim, on_rows=lambda n: progress.advance(task, n))
            task = progress.add_task("Linking visitors to customers", total=1)
            resolve_identities(store, config.workspace_id)
            progress.update(task, completed=1)
        console.print(
            f"Loaded [bold]{sim.num_events:,}[/] events into {path} "
            f"in {time.perf_counter() - started:.1f} s."
        )
        ctx = DemoContext(console, sim, store, DuckDBBackend(store.con), config.workspace_id)
        for section in SECTIONS:
            console.print()
            section(ctx)
