"""Benchmark: identity resolution on a generated store, against a plain scan as the baseline.

The store: ``--events`` events of ``--customers`` customers (20 events each by default):

- 30 % browse anonymously first (8 events), then identify, then browse logged in;
- 50 % are known from their first event (userId and anonymousId on every row);
- 20 % never identify;
- 1 % of the identified change user id with an alias call.

Measured, in one process on one DuckDB file:

- baseline: ``SELECT count(DISTINCT anonymous_id)`` over the workspace (one scan of the ids);
- bulk: the first ``resolve_identities`` over everything (what follows an import);
- mover: a batch of ``--batch`` new rows then ``resolve_identities``, several times. Batch 0
  identifies visitors from the bulk data (their history is spread over the whole table: the
  worst case); later batches identify visitors who browsed in the batch before (the usual case:
  a sign-up minutes after browsing). The median of the later batches is reported;
- idle: a call with nothing new.

Run: ``.venv/bin/python benchmarks/identity.py`` (full scale: 10 M events, 500 k customers)
or with ``--events 1000000 --customers 50000`` for a quick check.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from wayline.storage.eventstore import EventStore
from wayline.storage.identity import resolve_identities

WORKSPACE = "bench"

# One row per event: customer c = r // per, k = r % per (the event's rank in the customer's
# history). Segment by c % 100: 0-29 anonymous first, 30-79 known, 80-99 never identify;
# c % 100 == 30 (1 %) also aliases to a new user id at its last event.
_GENERATE = """
INSERT INTO events (workspace_id, message_id, "type", event, user_id, anonymous_id, person_id,
                    "timestamp", received_at, properties, source)
SELECT $1, 'm' || r, t, CASE t WHEN 'identify' THEN '$identify' WHEN 'alias' THEN '$alias'
                              ELSE 'Product Viewed' END,
       uid, aid, coalesce(uid, aid), ts, ts,
       CASE WHEN t = 'alias' THEN json_object('previousId', 'u' || c) END, 'bench'
FROM (
    SELECT r, c, k, ts,
        CASE WHEN seg < 30 AND k = 8 THEN 'identify'
             WHEN seg = 30 AND k = $3 - 1 THEN 'alias'
             ELSE 'track' END AS t,
        CASE WHEN seg < 30 AND k < 8 THEN NULL
             WHEN seg = 30 AND k = $3 - 1 THEN 'n' || c
             WHEN seg < 80 THEN 'u' || c
             ELSE NULL END AS uid,
        CASE WHEN seg = 30 AND k = $3 - 1 THEN NULL ELSE 'a' || c END AS aid
    FROM (
        SELECT r, r // $3 AS c, r % $3 AS k, (r // $3) % 100 AS seg,
               TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(r % $3 * 600 + r // $3) AS ts
        FROM range($2) t(r)
    )
)
"""

# A mover batch ($4 = batch number n, $2 rows): half are new visitors browsing anonymously
# ('v<n>_<j>', 5 events each), a quarter are identifies — of the visitors of batch n-1 (they
# sign up a few minutes after browsing), or for batch 0 of visitors from the bulk data who never
# identified (their whole history, anywhere in the table, moves) — and a quarter is browsing of
# known customers.
_BATCH = """
INSERT INTO events (workspace_id, message_id, "type", event, user_id, anonymous_id, person_id,
                    "timestamp", received_at, source)
SELECT $1, 'b' || $4 || '-' || i, t, CASE t WHEN 'identify' THEN '$identify'
                                          ELSE 'Product Viewed' END,
       uid, aid, coalesce(uid, aid),
       TIMESTAMPTZ '2026-02-01 00:00:00+00' + to_seconds($4 * 3600 + i), now(), 'bench'
FROM (
    SELECT i,
        CASE WHEN i % 4 = 2 THEN 'identify' ELSE 'track' END AS t,
        CASE i % 4
            WHEN 2 THEN 'nu' || $4 || '_' || (i // 4)
            WHEN 3 THEN 'u' || ((i * 104729) % ($3 * 8 // 10))
        END AS uid,
        CASE i % 4
            WHEN 2 THEN CASE WHEN $4 = 0
                             THEN 'a' || (((i // 4) * 7919) % ($3 // 100) * 100 + 80 + i % 20)
                             ELSE 'v' || ($4 - 1) || '_' || (i // 4) END
            WHEN 3 THEN 'a' || ((i * 104729) % ($3 * 8 // 10))
            ELSE 'v' || $4 || '_' || (i // 2 // 5 * 2 + i % 2)
        END AS aid
    FROM range($2) t(i)
)
"""


def timed(fn: object, *args: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--batches", type=int, default=6)
    args = parser.parse_args()
    per = max(args.events // args.customers, 10)

    with tempfile.TemporaryDirectory() as folder, EventStore(Path(folder) / "b.duckdb") as store:
        con = store.con
        con.execute("SET enable_progress_bar = false")
        t_gen, _ = timed(con.execute, _GENERATE, [WORKSPACE, args.customers * per, per])
        con.execute("CHECKPOINT")
        rows = store.count(WORKSPACE)
        print(f"generated {rows:,} events of {args.customers:,} customers in {t_gen:.1f} s")

        def baseline() -> int:
            sql = "SELECT count(DISTINCT anonymous_id) FROM events WHERE workspace_id = ?"
            result = con.execute(sql, [WORKSPACE]).fetchone()
            return int(result[0]) if result else 0

        def check_resolved() -> None:
            """No anonymous row of a visitor who identified still stands alone."""
            row = con.execute(
                """SELECT count(*) FROM events WHERE workspace_id = $1 AND user_id IS NULL
                   AND person_id = anonymous_id AND anonymous_id IN (
                       SELECT anonymous_id FROM events WHERE workspace_id = $1
                       AND user_id IS NOT NULL AND anonymous_id IS NOT NULL)""",
                [WORKSPACE],
            ).fetchone()
            assert row == (0,), f"{row} anonymous rows left unresolved"

        baseline()  # warm the cache, as the resolve below will find it
        t_base, distinct = timed(baseline)
        t_bulk, changed = timed(resolve_identities, store, WORKSPACE)
        check_resolved()
        print(f"baseline count(DISTINCT anonymous_id) = {distinct:,}: {t_base * 1000:.0f} ms")
        print(
            f"bulk resolve: {t_bulk:.2f} s, {changed:,} rows rewritten "
            f"({t_bulk / t_base:.1f}x the baseline)"
        )

        t_idle, idle_changed = timed(resolve_identities, store, WORKSPACE)
        assert idle_changed == 0
        print(f"idle resolve (nothing new): {t_idle * 1000:.1f} ms")

        times = []
        for n in range(args.batches):
            con.execute(_BATCH, [WORKSPACE, args.batch, args.customers, n])
            t_batch, moved = timed(resolve_identities, store, WORKSPACE)
            times.append(t_batch)
            print(
                f"  mover batch {n}: {args.batch:,} rows, {moved:,} rewritten, "
                f"{t_batch * 1000:.0f} ms"
            )
        print(
            f"mover batch 0 (old visitors identify, worst case): {times[0] * 1000:.0f} ms "
            f"({times[0] / t_base:.2f}x the baseline)"
        )
        check_resolved()
        median = statistics.median(times[1:])
        print(
            f"mover batch resolve (median of {len(times) - 1} usual batches): "
            f"{median * 1000:.0f} ms ({median / t_base:.2f}x the baseline)"
        )


if __name__ == "__main__":
    main()
