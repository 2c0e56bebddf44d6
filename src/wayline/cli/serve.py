"""``wayline serve`` and ``wayline workspaces``: run the API, manage workspaces and write keys.

``serve`` runs the HTTP API with uvicorn (one or several worker processes) and, in its own
process, the mover that carries acknowledged events into the DuckDB event store and the journey
runtime (:mod:`wayline.journeys.runtime`: events and timers move customers through live
journeys, the outbox is delivered). With PostgreSQL, ``--no-journeys`` leaves the runtime to
``wayline worker`` processes. DuckDB allows
one writer process, so the mover runs exactly once however many workers serve requests, and
opens the file for one batch at a time so that the workers can read analytics in between; the
workers only write to the operational store, which takes many writers. On shutdown (Ctrl-C,
SIGTERM) the server stops taking requests first, then the mover moves what is left.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import suppress
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
import uvicorn
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from uvicorn.supervisors import Multiprocess

from wayline.cli import app
from wayline.config import Settings
from wayline.storage.db import Database
from wayline.storage.eventstore import EventStore
from wayline.storage.mover import Mover

if TYPE_CHECKING:
    from fastapi import FastAPI

console = Console()
log = logging.getLogger(__name__)

workspaces_app = typer.Typer(help="Workspaces (one per store) and their write keys.")
app.add_typer(workspaces_app, name="workspaces")


def _show_new_key(title: str, workspace_id: str, key: str) -> None:
    console.print(
        Panel.fit(
            f"workspace [bold]{workspace_id}[/]\nwrite key [bold green]{key}[/]\n\n"
            "Point a Segment-compatible SDK at this server with this write key "
            "(see docs/tracking-api.md).",
            title=title,
        )
    )


# The mover's thread runs in Linux's idle scheduling class (SCHED_IDLE): it gets the CPU only
# when nothing else wants it. Moving into analytics costs more CPU per event than accepting it
# (normalising, Arrow, DuckDB, identity resolution: ~45 µs against ~16 µs per event), and on a
# small machine it competes with the API workers for the same cores. Acknowledging events is
# what clients wait for; analytics may lag a burst by seconds and catch up after it. Measured
# with benchmarks/ingest_http.py (2 workers, 4 clients, quiet 2-core machine): ~41,000 events/s
# with the mover at niceness 10 (which still took a third of the CPU: the workers wait on
# commits, and their wake-ups found it running), ~47,000 in the idle class, ~60,000 with no
# mover. While the API leaves a core idle the mover still moves at full speed; only a load
# that keeps every core busy holds it back, and it catches up when that ends. Where the idle
# class is not available (not Linux), niceness 10 is the fallback.
_BACKGROUND_NICENESS = 10


_T = TypeVar("_T")


class _Foreground:
    """A thread of the creator's priority that runs, one at a time, work handed to it by
    threads of lower priority, which wait meanwhile (a :class:`wayline.storage.mover.Foreground`).

    The mover's write transactions run here: holding SQLite's write lock in the idle class, the
    mover would keep every API commit waiting for as long as other work kept the cores busy (a
    lock holder of low priority, waiters of high priority: priority inversion). Without
    privileges a thread cannot leave the idle class again, and threads inherit their creator's
    class, so this one is started by the main thread.
    """

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def __call__(self, work: Callable[[], _T], /) -> _T:
        future: Future[_T] = Future()
        self._queue.put((work, future))
        return future.result()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            work, future = item
            try:
                future.set_result(work())
            except BaseException as exc:  # the caller's to handle, as if it had run the work
                future.set_exception(exc)


def _in_background(target: Callable[[threading.Event], None], stop: threading.Event) -> None:
    """Run ``target`` in this thread at the lowest CPU priority (Linux: per thread)."""
    with suppress(OSError, AttributeError):  # not Linux, or not allowed: run at normal priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _BACKGROUND_NICENESS)
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: this thread
    target(stop)


def _name_process(name: bytes) -> None:
    """This process's name as ``ps -o comm`` and ``top`` show it (Linux; elsewhere nothing)."""
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, ctypes.c_char_p(name[:15]), 0, 0, 0)  # PR_SET_NAME


def _mover_process(stop: Any, parent: int) -> None:
    """The mover's process: ``run_forever`` in a thread of the idle class until ``stop`` (a
    multiprocessing event) is set or the server's process is gone, then what is left is moved.

    A process of its own, not a thread of the server's: a Python thread in the idle class
    holds the GIL while it waits for a core, and the server's other threads (the journey
    runtime's, whose transactions hold SQLite's write lock) waited behind it, the API's commits
    behind them (~0.5 s in 10 s of load, 2 workers). Its write transactions run in this
    process's main thread (:class:`_Foreground`), at normal priority.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the server stops us
    _name_process(b"wayline-mover")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings()
    with Database.open(settings, migrate=False) as db:
        foreground = _Foreground("wayline-mover-writes")
        runner = Mover(
            db,
            settings.resolved_analytics_path,
            interval=settings.move_interval_seconds,
            foreground=foreground,
        )
        done = threading.Event()
        thread = threading.Thread(
            target=_in_background, args=(runner.run_forever, done), name="wayline-mover"
        )
        thread.start()
        while not stop.wait(1.0) and os.getppid() == parent:
            pass
        done.set()
        thread.join()
        foreground.stop()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API worker processes.")] = 1,
    mover: Annotated[
        bool,
        typer.Option(
            help="Move events into analytics here. Turn off on API-only servers sharing a "
            "PostgreSQL store: exactly one process per DuckDB file may run the mover."
        ),
    ] = True,
    journeys: Annotated[
        bool,
        typer.Option(
            help="Run the journey runtime here (off when `wayline worker` processes run it)."
        ),
    ] = True,
    prewarm: Annotated[
        bool,
        typer.Option(
            help="Compute each workspace's default dashboard pages ahead of the first visit "
            "(and again every few minutes when new events arrived)."
        ),
    ] = True,
) -> None:
    """Run the tracking API, the mover that feeds analytics, the journey runtime and the
    dashboard's prewarmer."""
    settings = Settings()
    db = Database.open(settings)  # migrates before any worker starts
    workspace_id, key, created = db.ensure_default_workspace()
    if created:
        _show_new_key("New data folder: default workspace created", workspace_id, key)
    if not settings.database_url:
        # On the embedded store this is the only server: an import still "running" now was cut
        # off by the last stop (it stored nothing). With PostgreSQL, other servers may be
        # running imports, so their jobs are left alone.
        from wayline.events.importers.jobs import ImportJobs

        if abandoned := ImportJobs(db, settings).abandon_unfinished():
            console.print(f"{abandoned} import(s) cut off by the last stop marked failed.")
    stop = threading.Event()
    spawn = multiprocessing.get_context("spawn")
    stop_mover = spawn.Event()
    mover_process = None
    if mover:
        # Create the file and its table now, then let go: the mover opens it per batch, so the
        # API workers can read analytics (the dashboard) in between.
        EventStore(settings.resolved_analytics_path).close()
        mover_process = spawn.Process(
            target=_mover_process, args=(stop_mover, os.getpid()), name="wayline-mover"
        )
        mover_process.start()
    prewarm_thread = None
    if prewarm:
        from wayline.web.prewarm import Prewarmer

        prewarm_thread = threading.Thread(
            target=_in_background,
            args=(Prewarmer(db, settings).run_forever, stop),
            name="wayline-prewarm",
            daemon=True,  # a pass may take a minute; stopping must not wait for it
        )
        prewarm_thread.start()
    journeys_thread = None
    if journeys:
        from wayline.cli.worker import build_runtime

        journeys_thread = build_runtime(db, settings).start_thread(stop)
    console.print(
        f"Wayline tracking API on [bold]http://{host}:{port}/v1/[/] "
        f"({workers} worker{'s' if workers > 1 else ''}); data in {settings.home}"
    )
    # The API always runs in worker processes (an import string and a factory: each builds its
    # own app and store), even with one worker: the mover's batches hold the GIL for tens of
    # milliseconds, and sharing a process with them would show in the API's latency.
    config = uvicorn.Config(
        "wayline.cli.serve:create_worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
    )
    try:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        if journeys_thread is not None:
            journeys_thread.join()
        if mover_process is not None:
            stop_mover.set()
            mover_process.join()
            console.print("Stopped; every acknowledged event was moved into analytics.")
        else:
            console.print("Stopped; acknowledged events wait in the inbox for the mover.")
        db.close()


# The GIL switch interval of an API worker. A request is committed by the group-commit thread
# (see wayline.storage.db), which needs the GIL to run; while the event loop is busy decoding the
# next request it does not let go of the GIL until the switch interval has passed (5 ms by
# default), so every commit could wait up to 5 ms before it even began. With 4 clients posting
# batches of 100 to 2 workers, 0.5 ms took the server from 24,000-37,000 to 38,000-52,000
# events/s (runs alternated, same machine, same load).
_WORKER_SWITCH_INTERVAL = 0.0005


def create_worker_app() -> FastAPI:
    """The app of one API worker process (uvicorn's factory)."""
    from wayline.api import create_app

    sys.setswitchinterval(_WORKER_SWITCH_INTERVAL)
    return create_app()


@workspaces_app.command("create")
def workspaces_create(name: Annotated[str, typer.Argument(help="The store's name.")]) -> None:
    """Create a workspace and print its write key."""
    with Database.open(Settings()) as db:
        workspace_id, key = db.create_workspace(name)
    _show_new_key(f"Workspace {name!r} created", workspace_id, key)


@workspaces_app.command("list")
def workspaces_list() -> None:
    """List workspaces and their active write keys."""
    with Database.open(Settings()) as db:
        db.ensure_default_workspace()
        rows = db.list_workspaces()
    table = Table("id", "name", "created")
    table.add_column("write keys", overflow="fold")
    for ws in rows:
        table.add_row(
            ws.id, ws.name, f"{ws.created_at:%Y-%m-%d %H:%M} UTC", "\n".join(ws.write_keys) or "—"
        )
    console.print(table)
