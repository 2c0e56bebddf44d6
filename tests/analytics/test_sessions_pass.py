"""The numpy sessionizer (:mod:`wayline.analytics.sessions_pass`) against the reference rule:
two rows share a session key exactly when they are in the same session of the same person, and
the rows it orders are the kept ones, whole sessions per part, by time and rank within each."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from journey_logs import T0, ev, event_logs
from paths_reference import sessions as reference_sessions

from wayline.analytics.sessions_pass import Sessions, mix, sessions


def _cut(
    rows: list[dict[str, Any]], gap: timedelta, parts: int, keep: list[bool] | None = None
) -> tuple[Sessions, np.ndarray, np.ndarray]:
    persons = sorted({r["person_id"] for r in rows})
    ids = sorted({r["session_id"] for r in rows if r["session_id"] is not None})
    # Small codes, as adversarial as hashes get: persons 0, 1, 2… and session ids 0, 1, 2…
    person = np.array([persons.index(r["person_id"]) for r in rows], dtype=np.uint64)
    sid = np.array([ids.index(r["session_id"]) if r["session_id"] else 0 for r in rows])
    epochs = np.array([r["timestamp"].timestamp() for r in rows], dtype=np.float64)
    times = np.round(epochs * 1e6).astype(np.int64)
    ranks = np.array([hash(r["event"]) % 3 for r in rows], dtype=np.int64)
    got = sessions(
        person,
        sid.astype(np.uint64),
        np.array([r["session_id"] is not None for r in rows], dtype=bool),
        times,
        ranks,
        epochs,
        gap_seconds=gap.total_seconds(),
        keep=None if keep is None else np.array(keep, dtype=bool),
        parts=parts,
    )
    return got, times, ranks


def _units(rows: list[dict[str, Any]], gap: timedelta, parts: int) -> list[int]:
    return _cut(rows, gap, parts)[0].units.tolist()


def _partition(labels: list[Any]) -> set[frozenset[int]]:
    groups: dict[Any, set[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, set()).add(i)
    return {frozenset(g) for g in groups.values()}


@settings(max_examples=150, deadline=None)
@given(
    rows=event_logs(max_events=60),
    gap=st.sampled_from([timedelta(minutes=30), timedelta(minutes=5), timedelta(seconds=7)]),
    parts=st.sampled_from([1, 2, 3]),
)
def test_same_sessions_as_the_reference(
    rows: list[dict[str, Any]], gap: timedelta, parts: int
) -> None:
    keys = reference_sessions(rows, gap)
    expected = [(r["person_id"], keys[r["message_id"]]) for r in rows]
    assert _partition(_units(rows, gap, parts)) == _partition(expected)


def test_gap_is_strictly_more_and_ties_never_split() -> None:
    rows = [
        ev("p", "a", T0),
        ev("p", "b", T0 + timedelta(minutes=30)),  # exactly the gap: same session
        ev("p", "c", T0 + timedelta(minutes=61)),  # 31 minutes on: a new one
        ev("p", "d", T0 + timedelta(minutes=61)),  # a tie: the same new one
        ev("p", "e", T0 + timedelta(minutes=62), session_id="x"),  # its own id
        ev("q", "a", T0 + timedelta(minutes=1)),  # another person
    ]
    u = _units(rows, timedelta(minutes=30), parts=1)
    assert u[0] == u[1] != u[2] == u[3]
    assert len({u[0], u[2], u[4], u[5]}) == 4


@settings(max_examples=100, deadline=None)
@given(rows=event_logs(max_events=60), parts=st.sampled_from([1, 2, 3]), data=st.data())
def test_orders_hold_the_kept_rows_in_session_order(
    rows: list[dict[str, Any]], parts: int, data: st.DataObject
) -> None:
    keep = data.draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    got, times, ranks = _cut(rows, timedelta(minutes=30), parts, keep)
    everything = np.concatenate([np.zeros(0, np.intp), *got.orders])
    assert sorted(everything.tolist()) == [i for i, k in enumerate(keep) if k]
    seen: set[int] = set()
    for order in got.orders:
        units = got.units[order]
        starts = [i for i in range(len(order)) if i == 0 or units[i] != units[i - 1]]
        ends = [*starts[1:], len(order)] if starts else []
        for a, b in zip(starts, ends, strict=True):
            assert int(units[a]) not in seen  # a session is one run, in one part
            seen.add(int(units[a]))
            key = [(times[i], ranks[i]) for i in order[a:b]]
            assert key == sorted(key)


def test_empty() -> None:
    none = np.zeros(0, dtype=np.uint64)
    got = sessions(
        none, none, np.zeros(0, bool), np.zeros(0, np.int64), np.zeros(0, np.int64),
        np.zeros(0), gap_seconds=1, parts=2,
    )  # fmt: skip
    assert got.units.dtype == np.uint64 and len(got.units) == 0
    assert [len(o) for o in got.orders] == [0]


@pytest.mark.parametrize("bit", [0, 1, 63])
def test_mix_scatters_low_bits(bit: int) -> None:
    # windows_in_parts splits units on their low bits: consecutive numbers must not share them.
    keys = mix(np.arange(4096, dtype=np.uint64))
    share = ((keys >> np.uint64(bit)) & np.uint64(1)).mean()
    assert 0.45 < share < 0.55
    assert len(set(keys.tolist())) == 4096
