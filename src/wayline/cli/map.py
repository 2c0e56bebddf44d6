"""``wayline map``: the customer journey map, built from the store's events.

    wayline map                                   # Markdown table + evidence in the terminal
    wayline map --format html -o map.html         # one self-contained page to print or share
    wayline map --since 2026-05-01 --compare previous --format md
    wayline map --persona loyal_regular
    wayline map --breakdown device --values mobile,desktop --format html -o devices.html
    wayline map --segment channel=social --format json
    wayline map --snapshot                        # also save a dated snapshot
    wayline map-history --stage decision --kpi conversion_rate
    wayline map-config                            # write journeymap.yaml to edit

The map is built by :func:`wayline.journeymap.build.build_map` on the DuckDB analytics store
(opened read-only); the stage mapping is the default one with ``<home>/journeymap.yaml`` laid
over it. This module also adds the journey map to ``wayline demo`` (:func:`demo_section`).
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Final

import orjson
import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from wayline.analytics.backend import Backend, DuckDBBackend
from wayline.analytics.params import parse_time
from wayline.cli import app
from wayline.config import Settings
from wayline.errors import ConfigError, InputError
from wayline.journeymap.build import (
    Condition,
    MapQuery,
    PainPointFinder,
    build_map,
    parse_condition,
)
from wayline.journeymap.model import JourneyMap, to_json
from wayline.journeymap.render.format import label, money, value
from wayline.journeymap.render.markdown import evidence_line, render_markdown
from wayline.journeymap.snapshots import kpi_history, save_snapshot
from wayline.journeymap.stages import (
    USER_FILE_TEMPLATE,
    StageMapping,
    load_mapping,
    user_mapping_path,
)
from wayline.storage.eventstore import EventStore

console = Console()
FORMATS: Final = ("md", "html", "json", "csv", "png", "pdf")
_BINARY: Final = ("png", "pdf")
_LAST_RE = re.compile(r"^\s*(\d+)\s*([dw])\s*$")


def pain_point_finder() -> tuple[PainPointFinder | None, str]:
    """The pain-point detectors, or None and why (they are an optional part of a build)."""
    try:
        import wayline.journeymap.painpoints  # noqa: F401  - fail here, not mid-build
        from wayline.journeymap.findings import find_pain_points
    except ImportError as exc:
        return None, f"Pain-point detection is not available: {exc}"
    return find_pain_points, ""


def make_query(
    *,
    workspace: str,
    since: str | None,
    until: str | None,
    last: str | None,
    compare: str | None,
    persona: str | None,
    segment: list[str] | None,
    device: str | None,
    channel: str | None,
    breakdown: str | None,
    values: str | None,
    top: int,
    pain_points: bool,
    now: datetime,
) -> MapQuery:
    """The command's options → a :class:`MapQuery` (InputError on a bad option)."""
    start, end = parse_time(since, "since"), parse_time(until, "until")
    if last is not None:
        m = _LAST_RE.match(last)
        if not m:
            raise InputError(f"cannot read --last {last!r}; write 30d or 4w", field="last")
        days = int(m[1]) * (7 if m[2] == "w" else 1)
        end = end or now
        start = end - timedelta(days=days)
    if compare not in (None, "previous"):
        raise InputError("--compare accepts only 'previous'", field="compare")
    conditions: list[Condition] = [parse_condition(s) for s in segment or []]
    if persona:
        conditions.append(Condition("persona", persona))
    if device:
        conditions.append(Condition("device_type", device))
    if channel:
        conditions.append(Condition("channel", channel))
    return MapQuery(
        workspace_id=workspace,
        since=start,
        until=end,
        conditions=tuple(conditions),
        breakdown=breakdown,
        breakdown_values=tuple(v.strip() for v in values.split(",") if v.strip()) if values else (),
        top=top,
        compare_previous=compare == "previous",
        with_pain_points=pain_points,
    )


def render(journey_map: JourneyMap, fmt: str) -> bytes:
    """The map in a format of :data:`FORMATS`."""
    if fmt == "md":
        return render_markdown(journey_map).encode()
    if fmt == "json":
        return orjson.dumps(to_json(journey_map), option=orjson.OPT_INDENT_2) + b"\n"
    if fmt == "csv":
        from wayline.journeymap.render.csv import render_csv

        return render_csv(journey_map).encode()
    from wayline.journeymap.render.html import render_html

    html = render_html(journey_map)
    if fmt == "html":
        return html.encode()
    from wayline.journeymap.render.browser import render_in_browser

    return render_in_browser(html, "png" if fmt == "png" else "pdf")


def build(
    backend: Backend,
    q: MapQuery,
    mapping: StageMapping,
    now: datetime,
) -> JourneyMap:
    finder, note = pain_point_finder() if q.with_pain_points else (None, "")
    journey_map = build_map(backend, q, mapping, now=now, find_pain_points=finder)
    if note:
        from dataclasses import replace

        journey_map = replace(journey_map, pain_points_note=note)
    return journey_map


@app.command("map")
def map_command(
    fmt: Annotated[
        str, typer.Option("--format", "-f", help=f"Output format: {', '.join(FORMATS)}.")
    ] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
    ] = None,
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="Workspace id.")] = "default",
    since: Annotated[
        str | None,
        typer.Option(help="Start of the period (ISO date/time, UTC); default: first event."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="End of the period, excluded; default: after the last event.")
    ] = None,
    last: Annotated[
        str | None, typer.Option("--last", help="The period is the last N days/weeks: 30d, 4w.")
    ] = None,
    compare: Annotated[
        str | None,
        typer.Option(
            "--compare", help="'previous': every figure with its change vs the period before."
        ),
    ] = None,
    persona: Annotated[
        str | None, typer.Option(help="Only customers of this persona (profile trait).")
    ] = None,
    segment: Annotated[
        list[str] | None,
        typer.Option(
            "--segment",
            "-s",
            help="Only customers with key=value (first touch: device_type, channel, country, "
            "properties.x; traits.x; customer_type=new|returning|loyal). Repeatable.",
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="Only customers on this device.")] = None,
    channel: Annotated[
        str | None, typer.Option(help="Only customers who came through this channel.")
    ] = None,
    breakdown: Annotated[
        str | None,
        typer.Option(
            help="Side by side, one map per value: device, channel, persona, customer_type…"
        ),
    ] = None,
    values: Annotated[
        str | None, typer.Option(help="With --breakdown: which values (comma-separated).")
    ] = None,
    top: Annotated[int, typer.Option(min=1, max=20, help="Actions etc. shown per stage.")] = 5,
    pain_points: Annotated[
        bool, typer.Option("--pain-points/--no-pain-points", help="Detect pain points.")
    ] = True,
    snapshot: Annotated[
        bool, typer.Option("--snapshot", help="Also save the map as a dated snapshot.")
    ] = False,
) -> None:
    """Build the customer journey map from the store's events."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", field="format")
    if fmt in _BINARY and output is None:
        raise InputError(f"--format {fmt} needs --output FILE", field="output")
    settings = Settings()
    now = datetime.now(UTC)
    q = make_query(
        workspace=workspace,
        since=since,
        until=until,
        last=last,
        compare=compare,
        persona=persona,
        segment=segment,
        device=device,
        channel=channel,
        breakdown=breakdown,
        values=values,
        top=top,
        pain_points=pain_points,
        now=now,
    )
    mapping = load_mapping(settings.home)
    path = settings.resolved_analytics_path
    if not path.exists():
        raise ConfigError(f"no analytics store at {path}; run `wayline demo` or import events")
    with EventStore(path, read_only=True) as store:
        journey_map = build(DuckDBBackend(store.con), q, mapping, now)
    data = render(journey_map, fmt)
    if snapshot:
        saved = save_snapshot(settings.home, journey_map)
        Console(stderr=True).print(f"Snapshot saved: {saved}")
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(output)
    Console(stderr=True).print(f"Journey map written to {output}")


@app.command("map-history")
def map_history_command(
    stage: Annotated[str, typer.Option(help="Stage: awareness, consideration, decision…")],
    kpi: Annotated[str, typer.Option(help="KPI key, e.g. conversion_rate, repeat_purchase_rate.")],
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="Workspace id.")] = "default",
    view: Annotated[
        str | None, typer.Option(help="The view's label (default: the first view).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """The history of one KPI of one stage over the saved map snapshots."""
    points = kpi_history(Settings().home, workspace, stage, kpi, view)
    if as_json:
        rows = [
            {
                "taken_at": p.taken_at.isoformat(),
                "since": p.since.isoformat(),
                "until": p.until.isoformat(),
                "value": str(p.value) if p.value is not None else None,
                "unit": p.unit,
            }
            for p in points
        ]
        sys.stdout.buffer.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")
        return
    from wayline.journeymap.model import Metric

    table = Table(title=f"{stage} · {kpi}", title_justify="left")
    for name in ("Snapshot", "Period", "Value"):
        table.add_column(name, justify="right" if name == "Value" else "left")
    for p in points:
        table.add_row(
            f"{p.taken_at:%Y-%m-%d %H:%M}",
            f"{p.since:%Y-%m-%d} → {p.until:%Y-%m-%d}",
            value(Metric(p.value, p.unit)),  # type: ignore[arg-type]
        )
    console.print(table)


@app.command("map-config")
def map_config_command() -> None:
    """Write journeymap.yaml (the stage mapping and your notes per stage) to edit."""
    settings = Settings()
    settings.ensure_home()
    path = user_mapping_path(settings.home)
    if path.exists():
        console.print(f"{path} already exists; edit it and run `wayline map`.")
        return
    path.write_text(USER_FILE_TEMPLATE, encoding="utf-8")
    console.print(f"Wrote {path}: add your event names, page rules and notes per stage.")


# ---------------------------------------------------------------------------------------------
# The demo's journey-map section


def demo_section(ctx: object) -> None:
    """``wayline demo`` ends here: write the sample store's journey map (HTML and Markdown next
    to the data) and print its table and top pain points."""
    from wayline.cli.demo import DemoContext

    assert isinstance(ctx, DemoContext)
    settings = Settings()
    now = datetime.now(UTC)
    mapping = load_mapping(settings.home)
    q = MapQuery(workspace_id=ctx.workspace_id)
    journey_map = build(ctx.backend, q, mapping, now)
    out_dir = settings.home
    md = render_markdown(journey_map)
    (out_dir / "journey-map.md").write_text(md, encoding="utf-8")
    html_path = out_dir / "journey-map.html"
    html_path.write_bytes(render(journey_map, "html"))
    c = ctx.console
    c.print("[bold]Your customer journey map[/]")
    view = journey_map.views[0]
    table = Table(show_lines=True)
    for name in ("Stage", "Customer action", "Touchpoints", "Drop-off", "KPI"):
        table.add_column(name)
    for s in view.stages:
        table.add_row(
            s.label,
            "\n".join(f"{label(a.name)} ({value(a.persons)})" for a in s.actions[:3]),
            ", ".join(label(t.name) for t in s.touchpoints[:3]),
            f"{value(s.dropped)} ({value(s.move_on_rate)} move on)" if s.dropped else "–",
            "\n".join(f"{k.label}: {value(k.metric, journey_map.currency)}" for k in s.kpis[:3]),
        )
    c.print(table)
    if view.pain_points:
        c.print("[bold]Top pain points[/] (by revenue at stake)")
        for p in view.pain_points[:5]:
            c.print(Markdown(evidence_line(p, journey_map.currency)))
            for sol in p.solutions[:1]:
                tpl = f" (journey template {sol.template})" if sol.template else ""
                c.print(f"    [green]→ {sol.title}[/]{tpl}")
    elif journey_map.pain_points_note:
        c.print(f"[dim]{journey_map.pain_points_note}[/]")
    at_stake = sum((p.evidence.revenue_at_stake for p in view.pain_points), start=0)
    if view.pain_points:
        c.print(f"Revenue at stake in total: [bold]{money(at_stake, journey_map.currency)}[/]")
    c.print(f"Journey map written to {html_path} and {out_dir / 'journey-map.md'}")
    c.print("Open the HTML file in a browser, or run `wayline map --format html -o map.html`.")
    c.print(
        "For the dashboard (map, funnels, journeys, customers): [bold]wayline serve[/], then "
        "open http://127.0.0.1:8000 — the first visit creates your account."
    )


def _register_demo_section() -> None:
    from wayline.cli import demo

    if demo_section not in demo.SECTIONS:
        demo.SECTIONS.append(demo_section)


_register_demo_section()
