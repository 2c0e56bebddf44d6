"""Done when: Segment's own Python SDK, pointed at a real ``wayline serve``, delivers every event
exactly once, retries included.

The server runs as a subprocess with two workers and a test-only fault: every 5th response is
replaced by a 503 *after* the request was committed, as if the answer were lost on the way back.
The SDK retries those batches; on top of that a second client re-sends 2,000 events with the same
``messageId``s. After shutdown (which moves what is left), DuckDB must hold exactly the 10,000
events, once each; the inbox keeps every copy it received until the mover drops the extra ones.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from segment.analytics import Client

from wayline.config import Settings
from wayline.storage.db import Database
from wayline.storage.eventstore import EventStore

N = 10_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    home = tmp_path / "data"
    port = _free_port()
    env = {
        **os.environ,
        "WAYLINE_HOME": str(home),
        "WAYLINE_MOVE_INTERVAL_SECONDS": "0.2",
        "WAYLINE_TEST_LOSE_EVERY_NTH_RESPONSE": "5",
    }
    env.pop("WAYLINE_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "wayline", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"wayline serve did not start:\n{out}")
            time.sleep(0.1)
        yield url, home, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class _Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "Retry attempt" in record.getMessage():
            self.count += 1


@pytest.mark.slow
def test_segment_sdk_delivers_each_event_exactly_once(
    server: tuple[str, Path, subprocess.Popen[bytes]],
) -> None:
    url, home, proc = server
    with Database.open(Settings(home=home)) as db:
        _, key, _ = db.ensure_default_workspace()
    errors: list[object] = []
    retries = _Retries()
    seg_log = logging.getLogger("segment")
    seg_log.addHandler(retries)
    old_level = seg_log.level
    seg_log.setLevel(logging.DEBUG)
    try:
        for first, count in ((0, N), (3_000, 2_000)):  # then 2,000 re-sent on purpose
            client = Client(
                key,
                host=url,
                gzip=True,
                upload_size=100,
                max_queue_size=N * 2,
                on_error=lambda exc, _batch: errors.append(exc),
                max_retries=5,
            )
            for i in range(first, first + count):
                client.track(
                    user_id=f"user-{i % 700}",
                    event="Product Viewed" if i % 3 else "Order Completed",
                    properties={"product_id": f"p{i % 50}", "revenue": "12.50"},
                    message_id=f"msg-{i}",
                )
            client.shutdown()
    finally:
        seg_log.removeHandler(retries)
        seg_log.setLevel(old_level)
    assert errors == []
    assert retries.count > 0, "the fault injection should have forced retries"

    with Database.open(Settings(home=home)) as db:
        # Every copy received, retries included (the mover keeps one of each).
        assert db.inbox_count("default") >= N

    proc.send_signal(signal.SIGINT)  # a clean shutdown moves what is left
    assert proc.wait(timeout=60) == 0
    with EventStore(home / "events.duckdb", read_only=True) as store:
        total, distinct = store.con.execute(
            "SELECT count(*), count(DISTINCT message_id) FROM events"
        ).fetchall()[0]
    assert (total, distinct) == (N, N)
    with Database.open(Settings(home=home)) as db:
        assert db.inbox_count(pending=True) == 0
