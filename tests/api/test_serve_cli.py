"""``wayline workspaces create|list``: keys are printed and work against the store; the
mover's thread of ``wayline serve`` yields the CPU to the API."""

from __future__ import annotations

import os
import re
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wayline.cli import _register, app
from wayline.config import Settings
from wayline.storage.db import Database


def test_workspaces_create_and_list(home: Path) -> None:
    _register()
    runner = CliRunner()
    created = runner.invoke(app, ["workspaces", "create", "Linen & Co"])
    assert created.exit_code == 0, created.output
    key = re.search(r"wk_[A-Za-z0-9_-]+", created.output)
    assert key is not None
    with Database.open(Settings()) as db:
        workspace_id = db.workspace_for_key(key.group())
    assert workspace_id is not None and workspace_id.startswith("ws_")

    listed = runner.invoke(app, ["workspaces", "list"], terminal_width=200)
    assert listed.exit_code == 0, listed.output
    assert "Linen & Co" in listed.output and "default" in listed.output
    assert key.group() in listed.output.replace("\n", "").replace("│", "").replace(" ", "")


def test_workspace_needs_a_name(home: Path) -> None:
    _register()
    result = CliRunner().invoke(app, ["workspaces", "create", "  "])
    assert result.exit_code != 0


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling classes only")
def test_the_mover_thread_runs_in_the_idle_class_and_the_caller_keeps_its_own() -> None:
    from wayline.cli.serve import _in_background

    seen: list[tuple[int, int]] = []

    def target(stop: threading.Event) -> None:
        seen.append((os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)))

    worker = threading.Thread(target=_in_background, args=(target, threading.Event()))
    worker.start()
    worker.join()
    assert seen == [(os.SCHED_IDLE, 10)]
    # Per thread: the API's and the runtime's threads keep the normal class.
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling classes only")
def test_the_movers_write_transactions_run_at_normal_priority() -> None:
    """A lock holder in the idle class would keep the API's commits waiting (priority
    inversion): the mover hands its write transactions to a thread of normal priority."""
    from wayline.cli.serve import _Foreground, _in_background

    foreground = _Foreground("test-writes")
    seen: list[tuple[str, int]] = []

    def where() -> tuple[str, int]:
        return threading.current_thread().name, os.sched_getscheduler(0)

    def target(stop: threading.Event) -> None:
        seen.append(where())
        seen.append(foreground(where))
        try:
            foreground(lambda: 1 // 0)
        except ZeroDivisionError:
            seen.append(("raised", 0))

    worker = threading.Thread(target=_in_background, args=(target, threading.Event()))
    worker.start()
    worker.join()
    foreground.stop()
    assert seen[1:] == [("test-writes", os.SCHED_OTHER), ("raised", 0)]
    assert seen[0][1] == os.SCHED_IDLE


def test_the_mover_process_moves_what_is_left_when_stopped_or_orphaned(home: Path) -> None:
    """``wayline serve`` runs the mover in a process of its own (its idle thread must not hold
    the GIL the server's threads need); stopped, or finding the server gone, it moves what is
    left and exits."""
    import multiprocessing

    from wayline.cli.serve import _mover_process
    from wayline.storage.eventstore import EventStore

    settings = Settings()
    with Database.open(settings) as db:
        db.ensure_default_workspace()
        EventStore(settings.resolved_analytics_path).close()
        spawn = multiprocessing.get_context("spawn")
        for parent, stop_it, messages in ((os.getpid(), True, 3), (-1, False, 2)):
            db.accept(
                "default",
                [
                    {
                        "type": "track",
                        "event": "Viewed",
                        "userId": "u",
                        "messageId": f"{parent}-{i}",
                    }
                    for i in range(messages)
                ],
                datetime.now(UTC),
            )
            stop = spawn.Event()
            mover = spawn.Process(target=_mover_process, args=(stop, parent))
            mover.start()
            if stop_it:
                stop.set()
            mover.join(timeout=60)  # orphaned (not our child's parent): stops by itself
            assert mover.exitcode == 0
            assert db.inbox_count(pending=True) == 0
    with EventStore(settings.resolved_analytics_path) as store:
        assert store.count() == 5
