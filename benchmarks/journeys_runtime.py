"""Benchmark: the durable journey runtime — transitions per second and trigger-to-send delay.

Customers go through ``send → delay 1s → send`` (two engine transitions each: the entry, run
through the first send, and the timer, run through the second), on SQLite and PostgreSQL, with
1 and 2 runtime processes, through the real engine, outbox and ``log`` channel (send-time
policies off). Templates are not rendered here, as ``wayline worker --no-render`` runs: the
loop is measured, not the template engine. ``wayline serve`` and ``wayline worker`` render by
default, and 4. measures what that adds per message.

1. **throughput**: N sign-up events are queued, then the runtime processes start; the clock
   stops when every customer has finished and every message is kept. transitions/s = 2N / time.
2. **latency**: events arrive at ``--rate`` per second for ``--seconds`` through
   ``Database.accept`` (the tracking API's transaction) while the runtime runs; for each
   customer, trigger-to-send = when the log channel kept the first message − when the event was
   accepted. Reported p50/p99, the rate offered in fact and the transition rate sustained.
3. **baseline**, in this process on SQLite, right before each measurement: a bare claim →
   advance → outbox loop (claim a batch of queued rows, bump a per-customer state row, write an
   outbox row, delete the claimed rows, one transaction per batch), no engine. The ratio says
   what the engine and the runtime's bookkeeping cost on top, on the machine as it was then.
   The runtime processes' own CPU time per transition is reported too: on a shared machine it
   varies less than the wall clock.
4. **rendering**: CPU time of :class:`TemplateRenderer` for the benchmark's email (the
   built-in ``welcome`` template: layout, CSS inlining, tracking links, unsubscribe link).

    .venv/bin/python benchmarks/journeys_runtime.py [--customers N] [--rate R] [--seconds S]
        [--postgres-url postgresql://postgres@127.0.0.1:5432/test] [--workers 1 2]
        [--backends sqlite postgres] [--write-results]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, insert, select

from wayline.journeys.policies import PERMISSIVE_POLICY
from wayline.journeys.runtime import JourneyCatalog, JourneyRuntime
from wayline.storage.db import Database
from wayline.storage.journey_models import (
    InputRow,
    InstanceRow,
    MessageLogRow,
    OutboxRow,
    TimerRow,
)
from wayline.storage.models import CustomerProfile

DELAY_SECONDS = 1.0  # the journey's delay step
JOURNEY = {
    "id": "bench",
    "name": "Benchmark series",
    "trigger": {"event": "Signed Up"},
    "steps": [
        {"id": "first", "type": "send", "channel": "email", "template": "welcome",
         "next": "wait"},
        {"id": "wait", "type": "delay", "duration": f"{DELAY_SECONDS:g}s", "next": "second"},
        {"id": "second", "type": "send", "channel": "email", "template": "welcome"},
    ],
}  # fmt: skip
TRANSITIONS_PER_CUSTOMER = 2


def _worker(url: str, stop: MpEvent, cpu: Any) -> None:
    db = Database(url, migrate=False)
    runtime = JourneyRuntime(db, policy=PERMISSIVE_POLICY, batch_size=500, idle_seconds=0.01)
    import threading

    flag = threading.Event()

    def watch() -> None:
        stop.wait()
        flag.set()

    threading.Thread(target=watch, daemon=True).start()
    started = time.process_time()
    runtime.run_forever(flag)
    with cpu.get_lock():
        cpu.value += time.process_time() - started
    db.close()


def _fresh(backend: str, pg_url: str | None, tmp: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.sqlite3'}"
    import psycopg

    assert pg_url is not None
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in pg_url else "?"
    url = f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _drop(url: str, pg_url: str | None) -> None:
    if url.startswith("postgresql") and pg_url:
        import psycopg

        schema = url.rsplit("%3D", 1)[1]
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _setup(url: str, customers: int) -> Database:
    db = Database(url)
    db.ensure_default_workspace()
    JourneyCatalog(db).publish("default", JOURNEY)
    now = datetime.now(UTC)
    rows = [
        {"workspace_id": "default", "person_id": f"c{i}", "email": f"c{i}@example.com",
         "consent": {"email": True}, "traits": {}, "first_seen": now, "last_seen": now}
        for i in range(customers)
    ]  # fmt: skip
    for i in range(0, len(rows), 5000):
        with db.write() as conn:
            conn.execute(insert(CustomerProfile), rows[i : i + 5000])
    return db


def _events(start: int, n: int, now: datetime) -> list[dict[str, Any]]:
    return [
        {"type": "track", "event": "Signed Up", "userId": f"c{i}", "timestamp": now.isoformat(),
         "properties": {"accepted_at": now.isoformat()}, "messageId": uuid.uuid4().hex}
        for i in range(start, start + n)
    ]  # fmt: skip


def _busy(db: Database) -> bool:
    """Whether the runtime has work left: a queued event, a timer or a pending send. Three
    index probes: the finish line is polled every 50 ms, and counting 40,000 kept messages
    each time took 6–10 ms of the two cores the runtime is measured on."""
    with db.read() as conn:
        return any(
            conn.scalar(select(column).where(*where).limit(1)) is not None
            for column, where in (
                (InputRow.id, ()),
                (TimerRow.id, ()),
                (OutboxRow.id, (OutboxRow.status == "pending",)),
            )
        )


def _count(db: Database, *where: Any, table: Any = MessageLogRow) -> int:
    with db.read() as conn:
        return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def _start(url: str, workers: int) -> tuple[list[Any], MpEvent, Any]:
    """The runtime processes, the event that stops them, and the CPU seconds their loops
    used (filled in as they stop)."""
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    cpu = ctx.Value("d", 0.0)
    procs = [ctx.Process(target=_worker, args=(url, stop, cpu)) for _ in range(workers)]
    for p in procs:
        p.start()
    return procs, stop, cpu


def _stop(procs: list[Any], stop: MpEvent) -> None:
    stop.set()
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()


def throughput(url: str, customers: int, workers: int, budget: float) -> tuple[float, float]:
    """Transitions per second, and the runtime processes' CPU seconds per transition."""
    db = _setup(url, customers)
    now = datetime.now(UTC)
    for i in range(0, customers, 2000):
        db.accept("default", _events(i, min(2000, customers - i), now), now)
    procs, stop, cpu = _start(url, workers)
    # The clock starts once the processes are up (imports take seconds on a busy machine).
    while _count(db, table=InputRow) == customers and budget > 0:
        time.sleep(0.01)
    started = time.perf_counter()
    expected = customers * TRANSITIONS_PER_CUSTOMER
    while time.perf_counter() - started < budget:
        if not _busy(db) and _count(db) >= expected:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    done = _count(db, InstanceRow.status == "completed", table=InstanceRow)
    _stop(procs, stop)
    db.close()
    transitions = done * TRANSITIONS_PER_CUSTOMER
    return transitions / elapsed, cpu.value / max(transitions, 1)


def latency(url: str, rate: int, seconds: float, workers: int) -> tuple[float, float, float, float]:
    """(p50, p99, transitions/s sustained, transitions/s offered in fact)."""
    total = int(rate * seconds)
    db = _setup(url, total)
    procs, stop, _ = _start(url, workers)
    time.sleep(4.0)  # let the processes import and connect
    chunk = max(1, rate // 20)  # 20 requests per second, like a busy tracking API
    sent = 0
    started = time.perf_counter()
    opened = datetime.now(UTC)
    while sent < total:
        due = started + sent / rate
        if (wait := due - time.perf_counter()) > 0:
            time.sleep(wait)
        now = datetime.now(UTC)
        n = min(chunk, total - sent)
        db.accept("default", _events(sent, n, now), now)
        sent += n
    # The events' own commits wait for SQLite's write lock like the tracking API's would: the
    # rate offered in fact can fall short of --rate while the runtime holds the lock.
    expected = total * TRANSITIONS_PER_CUSTOMER
    offered = expected / (time.perf_counter() - started)
    deadline = time.perf_counter() + 60
    while (_busy(db) or _count(db) < expected) and time.perf_counter() < deadline:
        time.sleep(0.1)
    _stop(procs, stop)
    with db.read() as conn:
        first = conn.execute(
            select(OutboxRow.payload, OutboxRow.done_at).where(
                OutboxRow.step_id == "first", OutboxRow.status == "sent"
            )
        ).all()
        last = conn.execute(
            select(func.max(OutboxRow.done_at)).where(OutboxRow.status == "sent")
        ).scalar_one()
    db.close()
    # From the tracking API's commit of the event (its accepted_at property, carried in the
    # send's trigger) to the moment the send was marked delivered.
    delays = sorted(
        (done - datetime.fromisoformat(orjson.loads(payload)["trigger"]["properties"]
                                       ["accepted_at"])).total_seconds()
        for payload, done in first
        if done is not None
    )  # fmt: skip
    if not delays or last is None:
        return float("nan"), float("nan"), 0.0, offered
    p50 = statistics.median(delays)
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    # The rate the runtime kept: every transition done, over the time from the first event to
    # the last send, less the journey's own 1 s delay (the last customer's second send cannot
    # come sooner than that after its event, however fast the runtime is).
    elapsed = (last - opened).total_seconds() - DELAY_SECONDS
    return p50, p99, len(delays) * TRANSITIONS_PER_CUSTOMER / elapsed, offered


def baseline(items: int, tmp: Path) -> float:
    path = tmp / f"baseline-{uuid.uuid4().hex[:6]}.sqlite3"
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE q (id INTEGER PRIMARY KEY, person TEXT, payload TEXT)")
    con.execute("CREATE TABLE state (person TEXT PRIMARY KEY, n INTEGER, state TEXT)")
    con.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, key TEXT UNIQUE, payload TEXT)")
    con.execute("BEGIN")  # one transaction for the set-up (in autocommit: a fsync per row)
    con.executemany(
        "INSERT INTO q (person, payload) VALUES (?, ?)",
        [(f"c{i}", '{"event":"Signed Up"}') for i in range(items)],
    )
    con.executemany("INSERT INTO state VALUES (?, 0, '{}')", [(f"c{i}",) for i in range(items)])
    con.execute("COMMIT")
    started = time.perf_counter()
    done = 0
    while True:
        con.execute("BEGIN IMMEDIATE")
        rows = con.execute("SELECT id, person, payload FROM q ORDER BY id LIMIT 500").fetchall()
        if not rows:
            con.execute("COMMIT")
            break
        con.executemany(
            "UPDATE state SET n = n + 1, state = ? WHERE person = ?",
            [('{"step":"wait"}', p) for _, p, _ in rows],
        )
        con.executemany(
            "INSERT INTO outbox (key, payload) VALUES (?, ?)",
            [(f"{p}/first/1", payload) for _, p, payload in rows],
        )
        con.executemany("DELETE FROM q WHERE id = ?", [(i,) for i, _, _ in rows])
        con.execute("COMMIT")
        done += len(rows)
    con.close()
    path.unlink()
    return done / (time.perf_counter() - started)


def render_cost(messages: int = 300) -> float:
    """CPU seconds to render one of the benchmark's emails as ``wayline serve`` does."""
    from wayline.channels.templates.library import TemplateLibrary
    from wayline.channels.tracking import LinkSigner
    from wayline.journeys.runtime.deliver import Profile
    from wayline.journeys.runtime.render import TemplateRenderer

    renderer = TemplateRenderer(
        TemplateLibrary(), LinkSigner(base_url="http://127.0.0.1:8000", secret="s" * 32)
    )
    now = datetime.now(UTC)
    profile = Profile("c1", "c1@example.com", first_name="Ada")
    send = {"template": "welcome", "channel": "email", "journey_id": "bench", "step_id": "first",
            "trigger": {"event": "Signed Up", "properties": {}}, "variables": {}}  # fmt: skip
    renderer.render({**send, "message_id": "m_0"}, workspace_id="default", profile=profile,
                    to=profile.email or "", now=now)  # fmt: skip
    started = time.process_time()
    for i in range(messages):
        renderer.render({**send, "message_id": f"m_{i}"}, workspace_id="default",
                        profile=profile, to=profile.email or "", now=now)  # fmt: skip
    return (time.process_time() - started) / messages


def baseline_now(tmp: Path) -> float:
    """The bare loop's rate right now (best of three short runs): taken next to each
    measurement, because the machine is shared and its speed drifts minute to minute."""
    return max(baseline(60_000, tmp) for _ in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=30_000)
    parser.add_argument(
        "--rate", type=int, default=5_000,
        help="events/s in the latency run (each is 2 transitions: 5,000 = the 10,000/s goal)",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--budget", type=float, default=300.0, help="max seconds per run")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("WAYLINE_TEST_POSTGRES_URL"),
        help="a PostgreSQL database to create scratch schemas in (default: "
        "WAYLINE_TEST_POSTGRES_URL; without one, SQLite only)",
    )
    parser.add_argument("--write-results", action="store_true", help="update RESULTS.md")
    args = parser.parse_args()
    backends = [b for b in args.backends if b == "sqlite" or args.postgres_url]
    rows: list[str] = []
    latencies: list[str] = []
    best: dict[str, float] = {}  # per backend: the best transitions/s
    # per backend, from the latency run: (p99, transitions/s offered in fact, sustained)
    kept: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for backend in backends:
            for workers in args.workers:
                base = baseline_now(tmp)
                url = _fresh(backend, args.postgres_url, tmp)
                try:
                    rate, cpu = throughput(url, args.customers, workers, args.budget)
                finally:
                    _drop(url, args.postgres_url)
                best[backend] = max(best.get(backend, 0.0), rate)
                print(
                    f"{backend:8} {workers} worker(s): {rate:,.0f} transitions/s "
                    f"({args.customers:,} customers), {cpu * 1e6:,.0f} µs CPU per transition in "
                    f"the runtime processes; bare loop {base:,.0f}/s, ratio {rate / base:.3f}",
                    flush=True,
                )
                rows.append(
                    f"| {backend} | {workers} | {rate:,.0f} | {cpu * 1e6:,.0f} µs | {base:,.0f} "
                    f"| {rate / base:.3f} |"
                )
            workers = max(args.workers)
            base = baseline_now(tmp)
            url = _fresh(backend, args.postgres_url, tmp)
            try:
                p50, p99, sustained, offered = latency(url, args.rate, args.seconds, workers)
            finally:
                _drop(url, args.postgres_url)
            kept[backend] = (p99, offered, sustained)
            print(
                f"{backend:8} trigger-to-first-send at {args.rate:,} events/s "
                f"({args.rate * TRANSITIONS_PER_CUSTOMER:,} transitions/s asked, {offered:,.0f} "
                f"offered, {sustained:,.0f} sustained, {workers} worker(s)): "
                f"p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms; bare loop {base:,.0f}/s",
                flush=True,
            )
            latencies.append(
                f"| {backend} | {workers} | {args.rate * TRANSITIONS_PER_CUSTOMER:,} | "
                f"{offered:,.0f} | {sustained:,.0f} | {p50 * 1000:,.0f} ms | {p99 * 1000:,.0f} ms |"
            )
    render = render_cost()
    print(f"rendering one email: {render * 1e6:,.0f} µs CPU", flush=True)
    if args.write_results:
        write_results(args, rows, latencies, verdict(args.rate, best, kept), render)


def verdict(rate: int, best: dict[str, float], kept: dict[str, tuple[float, float, float]]) -> str:
    """The goal, judged for each backend on its own."""
    asked = rate * TRANSITIONS_PER_CUSTOMER
    lines = []
    for backend, top in best.items():
        p99, offered, sustained = kept.get(backend, (float("nan"), 0.0, 0.0))
        missed = []
        if top < 10_000:
            missed.append(f"the best run reached {top:,.0f} transitions/s, not 10,000")
        # p99 counts only at the goal's load, and where the runtime kept it: below it, the
        # delay measures a growing backlog.
        if offered < 0.95 * asked:
            waiting = ", waiting for the write lock," if backend == "sqlite" else ""
            missed.append(
                f"the events' commits{waiting} offered {offered:,.0f} transitions/s of the "
                f"{asked:,} asked"
            )
        if sustained < 0.95 * offered:
            missed.append(f"of {offered:,.0f} transitions/s offered it kept {sustained:,.0f}")
        if not p99 < 1.0:
            missed.append(f"p99 trigger-to-send was {p99 * 1000:,.0f} ms, not under 1 s")
        if missed:
            lines.append(f"- {backend}: **goal not met** — " + "; ".join(missed) + ".")
        else:
            lines.append(
                f"- {backend}: **goal met** — {top:,.0f} transitions/s at best, and p99 "
                f"trigger-to-send {p99 * 1000:,.0f} ms at {offered:,.0f} transitions/s offered."
            )
    return "\n".join(lines)


def write_results(
    args: argparse.Namespace, rows: list[str], latencies: list[str], verdict: str, render: float
) -> None:
    from results import write_section

    markdown = f"""
## Journey runtime (issue 5)
Customers go through `send → delay 1s → send` (2 engine transitions each) through the real
engine, outbox and `log` channel (send-time policies off, templates not rendered — as
`wayline worker --no-render` runs), with 1 and 2 runtime processes
(`benchmarks/journeys_runtime.py --customers {args.customers}`). The bare loop is the reference
claim → advance → outbox loop on SQLite without the engine, run in the same process right before
each measurement (best of three): the ratio is what the engine and the runtime's bookkeeping
(instances, timers, outbox, step records, delivery) cost on this machine. CPU is the runtime
processes' own time per transition (PostgreSQL's server processes not included), steadier than
the wall clock on a shared machine.

| backend | workers | transitions/s | CPU per transition | bare loop /s | ratio |
|---|---|---|---|---|---|
{chr(10).join(rows)}

Trigger-to-first-send: events arrive through `Database.accept` (the tracking API's transaction)
at {args.rate:,}/s for {args.seconds:g} s while the runtime runs; the delay is from the event's
commit to the moment its first message was marked delivered.

| backend | workers | transitions/s asked | offered | sustained | p50 | p99 |
|---|---|---|---|---|---|---|
{chr(10).join(latencies)}

"Offered" is the rate the events' commits reached in fact (on SQLite they wait for the write
lock, as the tracking API's do). "Sustained" is every transition done over the time from the
first event to the last send, less the journey's own 1 s delay. Where it is below the offered
rate, the queue grows for the whole run and the delay measures that backlog, not the loop.
Goal: at least 10,000 transitions/s through the real engine, and p99 trigger-to-send under 1 s
at that load (the issue's reference: a bare loop reaching about 35,000/s on SQLite):

{verdict}

Rendering is not in these figures. `wayline serve` and `wayline worker` render every send by
default (unless `--no-render`): the benchmark's email (built-in `welcome` template: layout, CSS
inlining, tracking and unsubscribe links) costs {render * 1e6:,.0f} µs of CPU per message on its
own, so one core renders about {1 / render:,.0f} emails/s — with rendering, the template engine,
not the runtime, bounds the send rate.
"""
    write_section("journeys_runtime", markdown)


if __name__ == "__main__":
    main()
