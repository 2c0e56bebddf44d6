"""``wayline journeys …``: check, replay, publish and watch journeys.

    wayline journeys validate FILE
    wayline journeys simulate FILE --since 2026-03-01 --until 2026-04-01 [--json]
    wayline journeys publish FILE          freeze the file as a new version and set it live
    wayline journeys pause JOURNEY_ID      no new entries; customers inside carry on
    wayline journeys archive JOURNEY_ID    no new entries ever; customers inside leave
    wayline journeys list                  journeys, status, versions, customers inside
    wayline journeys stats JOURNEY_ID      per-step counts, conversion, split results [--json]

The last four act on the operational store (``WAYLINE_DATABASE_URL`` or the data folder's
SQLite file) and the workspace given by ``--workspace`` (default ``default``); the running
runtime (``wayline serve`` or ``wayline worker``) picks a change up within a second or so.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from wayline.cli import app
from wayline.config import Settings
from wayline.errors import ConfigError, InputError
from wayline.journeys.definition import load_journey
from wayline.journeys.durations import format_duration
from wayline.journeys.entry import JourneyStatus
from wayline.journeys.model import (
    EventTrigger,
    Journey,
    ScheduleTrigger,
    SegmentTrigger,
    step_type,
    successors,
)
from wayline.journeys.policies import DEFAULT_POLICY, PERMISSIVE_POLICY
from wayline.journeys.runtime.catalog import JourneyCatalog, read_document
from wayline.journeys.simulation import SeededResponses, SimulationResult, read_events, simulate
from wayline.journeys.stats import JourneyStats
from wayline.storage.db import DEFAULT_WORKSPACE_ID, Database

journeys_app = typer.Typer(
    name="journeys",
    help="Automated journeys: validate, simulate, publish, pause, list, stats.",
    no_args_is_help=True,
)
app.add_typer(journeys_app, name="journeys")
console = Console()

FileArg = Annotated[Path, typer.Argument(help="Journey file (.yaml, .yml or .json).")]


def _describe_trigger(journey: Journey) -> str:
    trigger = journey.trigger
    if isinstance(trigger, EventTrigger):
        filters = ", ".join(f"{f.property} {f.op} {f.value!r}" for f in trigger.matcher.where)
        return f"event {trigger.matcher.event!r}" + (f" where {filters}" if filters else "")
    if isinstance(trigger, SegmentTrigger):
        return f"enters segment {trigger.segment!r}" if trigger.segment else "segment rule"
    assert isinstance(trigger, ScheduleTrigger)
    if trigger.date_trait:
        return f"every year on trait {trigger.date_trait!r} at {trigger.at:%H:%M} local"
    assert trigger.after_event is not None
    delay = format_duration(trigger.delay) if trigger.delay else "?"
    return f"{delay} after the last {trigger.after_event.event!r}, at {trigger.at:%H:%M}"


@journeys_app.command("validate")
def validate(file: FileArg) -> None:
    """Check a journey file; list its steps, or say exactly what is wrong and where."""
    journey = load_journey(file)
    console.print(f"[green]✓[/] {file.name}: journey [bold]{journey.id}[/] ({journey.name})")
    console.print(f"  trigger: {_describe_trigger(journey)}")
    if journey.goal:
        within = format_duration(journey.goal.within)
        console.print(f"  goal: {journey.goal.matcher.event!r} within {within} of entry")
    table = Table("step", "type", "leads to")
    for step in journey.steps:
        outs = ", ".join(
            f"{name} → {target or 'end'}" if name != "next" else (target or "end")
            for name, target in successors(step)
        )
        table.add_row(step.id, step_type(step), outs or "exit")
    console.print(table)


def _when(value: str, option: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{value!r} is not a date: write 2026-03-01 or 2026-03-01T00:00:00Z", field=option
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _rates(values: list[str]) -> dict[str, float]:
    rates = {}
    for item in values:
        key, _, number = item.partition("=")
        try:
            rate = float(number)
        except ValueError:
            rate = -1.0
        if "." not in key or not 0.0 <= rate <= 1.0:
            raise InputError(
                f"{item!r}: write CHANNEL.ACTION=RATE, e.g. email.opened=0.35", field="--rate"
            )
        rates[key] = rate
    return rates


def _stats_table(stats: JourneyStats) -> Table:
    table = Table("step", "type", "reached", "left by", "sent", "skipped", "ended here")
    for s in stats.steps:
        left = ", ".join(f"{k} {v}" for k, v in (s.branches or s.outcomes).items())
        skipped = ", ".join(f"{k} {v}" for k, v in s.skipped.items())
        ended = ", ".join(f"{k} {v}" for k, v in s.ended_here.items())
        sent = str(s.sent) if s.step_type == "send" else ""
        table.add_row(s.step_id, s.step_type, str(s.reached), left, sent, skipped, ended)
    return table


def _report(result: SimulationResult) -> dict[str, Any]:
    stats = result.stats
    return {
        "journey": result.journey_id,
        "since": result.since.isoformat(),
        "until": result.until.isoformat(),
        "events_read": result.events_read,
        "timers_fired": result.timers_fired,
        "entered": stats.entered,
        "converted": stats.converted,
        "conversion_rate": round(stats.conversion_rate, 4),
        "exited": stats.exited,
        "completed": stats.completed,
        "still_active": stats.active,
        "entry_refused": stats.refused,
        "sent_by_channel": stats.sent_by_channel,
        "steps": [asdict(s) for s in stats.steps],
        "splits": {
            k: [{**asdict(b), "conversion_rate": round(b.conversion_rate, 4)} for b in v]
            for k, v in stats.splits.items()
        },
        "webhooks": len(result.webhooks),
        "profile_updates": len(result.profile_updates),
    }


@journeys_app.command("simulate")
def simulate_command(
    file: FileArg,
    since: Annotated[str, typer.Option(help="Start of the replay (UTC date or date-time).")],
    until: Annotated[str, typer.Option(help="End of the replay, exclusive.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the response model.")] = 0,
    rate: Annotated[
        list[str] | None,
        typer.Option(help="Override a response rate, e.g. email.opened=0.35 (repeatable)."),
    ] = None,
    policies: Annotated[
        bool, typer.Option(help="Apply consent, caps and quiet hours as live.")
    ] = True,
    workspace: Annotated[str | None, typer.Option(help="Only this workspace's events.")] = None,
) -> None:
    """Replay the store's events through a journey on a virtual clock and report what it would
    have done: entries, per-step counts, messages sent, conversions."""
    journey = load_journey(file)
    start, end = _when(since, "--since"), _when(until, "--until")
    if end <= start:
        raise InputError("--until must be after --since", field="--until")
    responses = SeededResponses(seed=seed, rates=_rates(rate or []))
    path = Settings().resolved_analytics_path
    if not path.exists():
        raise InputError(
            "no events to replay: import some (wayline import) or run wayline demo",
            source=str(path),
        )
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise ConfigError(f"cannot open the event store {path}: {exc}") from None
    try:
        con.execute("SET TimeZone = 'UTC'")
        result = simulate(
            journey,
            read_events(con, since=start, until=end, workspace_id=workspace),
            since=start,
            until=end,
            responses=responses,
            policy=DEFAULT_POLICY if policies else PERMISSIVE_POLICY,
        )
    finally:
        con.close()
    report = _report(result)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    stats = result.stats
    console.print(
        f"[bold]{journey.id}[/] from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC: "
        f"{result.events_read} events replayed"
    )
    console.print(
        f"  entered {stats.entered}, converted {stats.converted} "
        f"({stats.conversion_rate:.1%}), exited {stats.exited}, completed {stats.completed}, "
        f"still inside {stats.active}"
    )
    if stats.refused:
        console.print("  not entered: " + ", ".join(f"{k} {v}" for k, v in stats.refused.items()))
    if stats.sent_by_channel:
        sent = ", ".join(f"{k} {v}" for k, v in stats.sent_by_channel.items())
        console.print(f"  messages sent: {sent}")
    console.print(_stats_table(stats))
    for split_id, branches in stats.splits.items():
        parts = ", ".join(
            f"{b.name}: {b.customers} customers, {b.conversion_rate:.1%} converted"
            for b in branches
        )
        console.print(f"  split {split_id}: {parts}")


WorkspaceOpt = Annotated[str, typer.Option(help="The workspace (store).")]
JourneyArg = Annotated[str, typer.Argument(help="The journey's id.")]


def _catalog() -> tuple[Database, JourneyCatalog]:
    db = Database.open(Settings())
    db.ensure_default_workspace()
    return db, JourneyCatalog(db)


@journeys_app.command("publish")
def publish_command(file: FileArg, workspace: WorkspaceOpt = DEFAULT_WORKSPACE_ID) -> None:
    """Publish a journey file as a new immutable version and set the journey live.

    Customers already inside stay on the version they entered. Publishing an unchanged file
    makes no new version (it resumes a paused journey).
    """
    document = read_document(file)
    db, catalog = _catalog()
    try:
        journey_id, version, created = catalog.publish(workspace, document, source=file.name)
    finally:
        db.close()
    what = f"version {version} published" if created else f"unchanged: version {version}"
    console.print(f"[green]✓[/] {journey_id}: {what}, live")


def _set_status(journey_id: str, workspace: str, status: JourneyStatus) -> None:
    db, catalog = _catalog()
    try:
        catalog.set_status(workspace, journey_id, status)
    finally:
        db.close()


@journeys_app.command("pause")
def pause_command(journey_id: JourneyArg, workspace: WorkspaceOpt = DEFAULT_WORKSPACE_ID) -> None:
    """Stop new entries; customers inside carry on. Publish again to resume."""
    _set_status(journey_id, workspace, JourneyStatus.PAUSED)
    console.print(f"{journey_id}: paused (customers inside carry on; publish to resume)")


@journeys_app.command("archive")
def archive_command(journey_id: JourneyArg, workspace: WorkspaceOpt = DEFAULT_WORKSPACE_ID) -> None:
    """Stop the journey for good: no new entries, customers inside leave at their next step."""
    _set_status(journey_id, workspace, JourneyStatus.ARCHIVED)
    console.print(f"{journey_id}: archived")


@journeys_app.command("list")
def list_command(
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE_ID,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """The workspace's journeys: status, live version, customers inside and entered."""
    db, catalog = _catalog()
    try:
        rows = catalog.summaries(workspace)
    finally:
        db.close()
    if as_json:
        typer.echo(
            json.dumps(
                [{**asdict(r), "updated_at": r.updated_at.isoformat()} for r in rows], indent=2
            )
        )
        return
    if not rows:
        console.print("No journeys yet: wayline journeys publish FILE")
        return
    table = Table("journey", "name", "status", "live version", "versions", "inside", "entered")
    for r in rows:
        draft = " (+ draft)" if r.has_draft else ""
        table.add_row(
            r.journey_id, r.name, r.status.value + draft, str(r.live_version or "—"),
            str(r.versions), str(r.active), str(r.entered),
        )  # fmt: skip
    console.print(table)


@journeys_app.command("stats")
def stats_command(
    journey_id: JourneyArg,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE_ID,
    version: Annotated[int | None, typer.Option(help="Only this version.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Live results: entries, per-step counts, sends and skips, conversion, split branches."""
    db, catalog = _catalog()
    try:
        stats = catalog.stats(workspace, journey_id, version=version)
    finally:
        db.close()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "journey": journey_id,
                    "entered": stats.entered,
                    "converted": stats.converted,
                    "conversion_rate": round(stats.conversion_rate, 4),
                    "exited": stats.exited,
                    "completed": stats.completed,
                    "active": stats.active,
                    "entry_refused": stats.refused,
                    "sent_by_channel": stats.sent_by_channel,
                    "steps": [asdict(s) for s in stats.steps],
                    "splits": {
                        k: [{**asdict(b), "conversion_rate": round(b.conversion_rate, 4)}
                            for b in v]
                        for k, v in stats.splits.items()
                    },
                },
                indent=2,
            )
        )  # fmt: skip
        return
    console.print(
        f"[bold]{journey_id}[/]: entered {stats.entered}, converted {stats.converted} "
        f"({stats.conversion_rate:.1%}), exited {stats.exited}, completed {stats.completed}, "
        f"inside now {stats.active}"
    )
    if stats.refused:
        console.print("  not entered: " + ", ".join(f"{k} {v}" for k, v in stats.refused.items()))
    if stats.sent_by_channel:
        sent = ", ".join(f"{k} {v}" for k, v in stats.sent_by_channel.items())
        console.print(f"  messages sent: {sent}")
    console.print(_stats_table(stats))
    for split_id, branches in stats.splits.items():
        parts = ", ".join(
            f"{b.name}: {b.customers} customers, {b.conversion_rate:.1%} converted"
            for b in branches
        )
        console.print(f"  split {split_id}: {parts}")
