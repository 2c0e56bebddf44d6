"""Crash tests: workers killed with SIGKILL at random while customers go through a journey.

Afterwards every customer must have finished and every intended message must have been
delivered exactly once: the recording channel (a provider that deduplicates on the idempotency
key, in its own tables) holds each expected key once and no other, and every outbox row is
marked sent. Killed workers may have *called* the channel twice for a key (killed between the
call and the commit that marks the row); the recorder's call log shows how often.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from runtime_support import add_profiles, count, series, track
from sqlalchemy import select

from wayline.journeys.runtime import JourneyCatalog, RecordingChannel
from wayline.journeys.runtime.channels import RECORDED_MESSAGES
from wayline.storage.db import Database
from wayline.storage.journey_models import InputRow, InstanceRow, OutboxRow

SENDS = 2


def _start(url: str, home: Path, recorder: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "WAYLINE_DATABASE_URL": url, "WAYLINE_HOME": str(home)}
    log = (home / "workers.log").open("ab")  # a file, not a pipe nobody reads (it would fill)
    return subprocess.Popen(
        [sys.executable, "-m", "wayline", "worker", "--send-policy", "none",
         "--lease-seconds", "2", "--batch-size", "400", "--no-render", "--record-to", recorder],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )  # fmt: skip


def _run_crash_test(
    url: str,
    recorder_url: str,
    home: Path,
    *,
    customers: int,
    workers: int,
    budget: float,
    kill_every: tuple[float, float],
    min_kills: int,
    kill_at: tuple[float, ...] = (),
) -> None:
    """``kill_at``: also kill a worker when these shares of the customers have completed, so
    a fast run cannot finish before the planned kills (the timer alone can be outrun)."""
    rng = random.Random(7)
    db = Database(url)
    db.ensure_default_workspace()
    JourneyCatalog(db).publish("default", series(delay="1s", sends=SENDS, goal=False))
    people = [f"c{i:05d}" for i in range(customers)]
    add_profiles(db, people)
    recorder = RecordingChannel(recorder_url)  # creates its tables before the workers start
    procs = [_start(url, home, recorder_url) for _ in range(workers)]
    kills = 0
    try:
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        for i in range(0, customers, 1000):
            db.accept("default", [track(p, "Signed Up", now) for p in people[i : i + 1000]], now)
        deadline = time.monotonic() + budget
        next_kill = time.monotonic() + rng.uniform(*kill_every)
        thresholds = sorted(kill_at)
        while time.monotonic() < deadline:
            completed = count(db, InstanceRow, InstanceRow.status == "completed")
            done = completed == customers
            if done and count(db, OutboxRow, OutboxRow.status != "sent") == 0:
                break
            crossed = bool(thresholds) and completed >= thresholds[0] * customers
            if crossed:
                thresholds.pop(0)
            if crossed or time.monotonic() >= next_kill:
                victim = rng.randrange(len(procs))
                procs[victim].kill()  # SIGKILL: no cleanup, mid-transaction or mid-send
                procs[victim].wait()
                kills += 1
                procs[victim] = _start(url, home, recorder_url)
                next_kill = time.monotonic() + rng.uniform(*kill_every)
            time.sleep(0.2)
        else:
            pytest.fail("the workers did not finish in time")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    assert kills >= min_kills, "the test must actually kill workers"
    assert count(db, InputRow) == 0
    assert count(db, InstanceRow) == customers
    assert count(db, InstanceRow, InstanceRow.status == "completed") == customers
    expected = {f"series:{p}:1/send_{k}/1" for p in people for k in range(SENDS)}
    with recorder.engine.connect() as conn:
        kept = [r[0] for r in conn.execute(select(RECORDED_MESSAGES.c.idempotency_key))]
    calls, keys, _ = recorder.counts()
    recorder.close()
    db.close()
    assert len(kept) == len(set(kept))  # 0 duplicates
    assert set(kept) == expected  # 0 missing, nothing unintended
    assert keys == len(expected)
    # Re-sends after a kill happen only in the window between the call and its commit.
    print(f"\n{kills} SIGKILLs, {calls} channel calls for {keys} messages")


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_killed_at_random_on_postgres_deliver_each_message_once(
    postgres_url: str, tmp_path: Path
) -> None:
    _run_crash_test(
        postgres_url, postgres_url, tmp_path, customers=10_000, workers=4, budget=150.0,
        kill_every=(0.8, 2.0), min_kills=8,
    )  # fmt: skip


@pytest.mark.slow
def test_a_worker_killed_at_random_on_sqlite_delivers_each_message_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    recorder = f"sqlite:///{tmp_path / 'provider.sqlite3'}"
    # One process that needs seconds to start: killed every few seconds, it still gets on.
    _run_crash_test(
        url, recorder, tmp_path, customers=3_000, workers=1, budget=120.0,
        kill_every=(3.0, 6.0), min_kills=2, kill_at=(0.2, 0.5),
    )  # fmt: skip
