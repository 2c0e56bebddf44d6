"""``wayline import``: load an export file into the analytics store, with progress and a summary.

The work is :func:`wayline.events.importers.import_file`; this module parses the options, shows
DuckDB's progress as a rich progress bar (on a terminal only, so piped output stays clean) and
prints what was loaded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from wayline.cli import app
from wayline.config import Settings
from wayline.errors import InputError, WaylineError
from wayline.events.importers import FORMATS, ImportResult, import_file
from wayline.storage.eventstore import EventStore

_FORMAT_HELP = "File format: " + ", ".join(FORMATS) + " (auto: from the extension and header)."


def parse_mapping(entries: list[str]) -> dict[str, str]:
    """``["user_id=email", …]`` → ``{"user_id": "email"}``."""
    mapping: dict[str, str] = {}
    for entry in entries:
        target, sep, column = entry.partition("=")
        if not sep or not target.strip() or not column.strip():
            raise InputError(f"expected FIELD=COLUMN, got {entry!r}", field="--map")
        mapping[target.strip()] = column.strip()
    return mapping


def _summary(console: Console, result: ImportResult) -> None:
    verb = "would load" if result.dry_run else "loaded"
    table = Table(title=f"{result.file} ({result.format}): {verb}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_row("rows read", f"{result.rows_read:,}")
    table.add_row(f"events {verb}", f"{result.events_loaded:,}")
    if result.skipped:
        table.add_row("already stored, skipped", f"{result.skipped:,}")
    table.add_row("customers", f"{result.customers:,}")
    if result.first_timestamp and result.last_timestamp:
        table.add_row(
            "time range",
            f"{result.first_timestamp:%Y-%m-%d %H:%M} → {result.last_timestamp:%Y-%m-%d %H:%M} UTC",
        )
    table.add_row("seconds", f"{result.seconds:.2f}")
    console.print(table)
    if result.events_by_name:
        names = Table(title="events by name")
        names.add_column("event")
        names.add_column("count", justify="right")
        for name, count in result.events_by_name.items():
            names.add_row(name, f"{count:,}")
        console.print(names)
    if result.dry_run:
        console.print("dry run: nothing was stored.")


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="The file to import.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=_FORMAT_HELP)] = "auto",
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="FIELD=COLUMN: which column fills user_id, anonymous_id, event, timestamp, "
            "message_id, revenue, … (generic csv/jsonl/parquet). Repeatable.",
        ),
    ] = None,
    event: Annotated[
        str | None, typer.Option("--event", help="Event name of every row (no event column).")
    ] = None,
    workspace: Annotated[str, typer.Option("--workspace", "-w", help="Workspace id.")] = "default",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the whole file and report; store nothing.")
    ] = False,
) -> None:
    """Import events or orders from a CSV, JSON Lines, Parquet, GA4, Shopify or WooCommerce file."""
    out = Console()
    err = Console(stderr=True)
    try:
        settings = Settings()
        settings.ensure_home()
        with (
            EventStore(settings.resolved_analytics_path) as store,
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>5.1f}%"),
                TimeElapsedColumn(),
                console=err,
                transient=True,
                disable=not err.is_terminal,
            ) as bar,
        ):
            tasks: dict[str, TaskID] = {}

            def progress(stage: str, pct: float | None) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=100)
                if pct is not None:
                    bar.update(tasks[stage], completed=pct)

            result = import_file(
                store,
                file,
                now=datetime.now(UTC),
                format=fmt,
                workspace_id=workspace,
                mapping=parse_mapping(mapping or []),
                event_name=event,
                dry_run=dry_run,
                progress=progress,
            )
    except WaylineError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    _summary(out, result)
