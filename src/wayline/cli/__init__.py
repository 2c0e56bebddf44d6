"""The ``wayline`` command line (Typer).

Each capability adds its commands in a module of its own here and is registered below, so the
command line grows without one file holding every command.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from wayline.errors import WaylineError

app = typer.Typer(
    name="wayline",
    help="Customer journey maps from your store's own data, and journeys that act on them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


def _register() -> None:
    # Imported here so that each module can `from wayline.cli import app` at its top.
    import importlib

    for module in (
        "serve",
        "worker",
        "importing",
        "demo",
        "map",
        "funnel",
        "paths",
        "journeys",
        "templates",
        "accounts",
    ):
        importlib.import_module(f"wayline.cli.{module}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _register()
    try:
        app()
    except WaylineError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
