"""Sessions: which visit of a customer an event belongs to, as an SQL fragment.

A *session* groups a person's events into visits. The rule, per event row:

- If the event carries a ``session_id`` (the tracking SDK's own session, e.g. PostHog's
  ``$session_id`` or Amplitude's ``session_id``), that is its session: ``session_key`` is
  ``'s:' || session_id``.
- Otherwise the session is inferred from inactivity, among *that person's events without a
  ``session_id``* ordered by ``timestamp``: the first such event opens a session, and an event
  more than ``gap_seconds`` (default 30 minutes, strictly more) after the previous such event
  opens the next one. ``session_key`` is ``'i:' || n`` with ``n`` = 1, 2, … the session's rank.
  Events with equal timestamps are never split (their gap is 0), so ties do not make the result
  depend on row order.

A ``session_key`` is unique *within a person* only: the unit of a per-session analysis is the
pair ``(person_id, session_key)``. ``person_id`` is the resolved customer, so the anonymous and
identified halves of a visit that merged through identity resolution form one session when they
share a ``session_id``, or when their inferred gaps say so.

The builders here are pure: they return DuckDB SQL (transpiled for PostgreSQL by
:mod:`wayline.analytics.backend`); funnels (``--by session``) and paths compose them as CTEs.

Example::

    sql = f"WITH s AS ({sessionize_sql('events')}) SELECT person_id, session_key, count(*) ..."
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

#: Inactivity after which an event without a ``session_id`` opens a new session.
DEFAULT_SESSION_GAP: Final = timedelta(minutes=30)

#: The column the fragment adds.
SESSION_KEY_COLUMN: Final = "session_key"


def _gap_seconds(gap: timedelta) -> float:
    seconds = gap.total_seconds()
    if seconds <= 0:
        # A programming error, not user input: callers validate user-supplied gaps first.
        raise ValueError(f"session gap must be positive, got {gap}")
    return seconds


def sessionize_sql(
    source: str,
    *,
    gap: timedelta = DEFAULT_SESSION_GAP,
    person_column: str = "person_id",
    time_column: str = "timestamp",
    session_column: str = "session_id",
) -> str:
    """A ``SELECT`` of every column of ``source`` plus ``session_key`` (VARCHAR, never NULL).

    Args:
        source: a table name, a CTE name or a parenthesised sub-query, with at least the
            person, time and session-id columns.
        gap: inactivity that opens a new inferred session (strictly more than ``gap``).
        person_column, time_column, session_column: column names in ``source``.

    Returns:
        DuckDB SQL without parameters, to embed as ``WITH x AS (<this>)``. ``source`` appears
        twice in it (once per half). Its rows also carry a helper column ``_new_session`` (1 on
        a row that opens an inferred session, 0 on rows with a ``session_id``); select
        the columns you need rather than ``*`` (PostgreSQL has no ``* EXCLUDE``).
    """
    seconds = _gap_seconds(gap)
    # Each person's rows split in two: those with a session_id, whose key is that id, and those
    # without, which are sessionized among themselves. The halves are independent, so they are
    # two branches of a UNION ALL: only the rows without a session_id (few, when an SDK sends
    # ids) pay for the window's sort — sorting every row of the log cost 15x more.
    part = f'PARTITION BY "{person_column}"'
    ts = f'"{time_column}"'
    sid = f'"{session_column}"'
    return (
        f"SELECT _s1.*, 0 AS _new_session, 's:' || _s1.{sid} AS {SESSION_KEY_COLUMN} "
        f"FROM {source} AS _s1 WHERE _s1.{sid} IS NOT NULL "
        "UNION ALL "
        "SELECT _sx.*, "
        # RANGE frame (the default with ORDER BY) counts tied rows together, so rows with equal
        # timestamps always get the same key whatever order the engine puts them in.
        f"'i:' || CAST(sum(_sx._new_session) OVER ({part} ORDER BY {ts}) AS VARCHAR) "
        f"AS {SESSION_KEY_COLUMN} "
        "FROM ("
        "SELECT _s0.*, "
        f"CASE WHEN lag({ts}) OVER ({part} ORDER BY {ts}) IS NULL "
        f"OR epoch({ts}) - epoch(lag({ts}) OVER ({part} ORDER BY {ts})) > {seconds!r} "
        "THEN 1 ELSE 0 END AS _new_session "
        f"FROM {source} AS _s0 WHERE _s0.{sid} IS NULL"
        ") AS _sx"
    )
