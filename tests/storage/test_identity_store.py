"""resolve_identities on a real DuckDB store: person_id follows the identity rules."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wayline.events.identity import links_from_row, resolve
from wayline.events.normalize import normalize
from wayline.storage import identity as store_identity
from wayline.storage.eventstore import EventStore, rows_to_arrow
from wayline.storage.identity import person_ids_for, resolve_identities

T0 = datetime(2026, 3, 1, tzinfo=UTC)
_ids = itertools.count()


def event(
    minute: int,
    *,
    user: str | None = None,
    anon: str | None = None,
    type: str = "track",
    previous: str | None = None,
    workspace: str = "w",
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": type,
        "messageId": f"m{next(_ids)}",
        "timestamp": (T0 + timedelta(minutes=minute)).isoformat(),
    }
    if type == "track":
        message["event"] = "Product Viewed"
    if user is not None:
        message["userId"] = user
    if anon is not None:
        message["anonymousId"] = anon
    if previous is not None:
        message["previousId"] = previous
    return normalize(message, workspace_id=workspace, received_at=T0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "events.duckdb") as s:
        yield s


def persons(store: EventStore, workspace: str = "w") -> list[tuple[Any, ...]]:
    return store.con.execute(
        """SELECT anonymous_id, user_id, person_id FROM events
           WHERE workspace_id = ? ORDER BY "timestamp", message_id""",
        [workspace],
    ).fetchall()


def test_anonymous_browsing_becomes_the_customers_on_identify(store: EventStore) -> None:
    store.append_rows([event(1, anon="a1"), event(2, anon="a1"), event(3, anon="a2")])
    assert resolve_identities(store, "w") == 0
    store.append_rows([event(4, anon="a1", user="u1", type="identify"), event(5, user="u1")])
    assert resolve_identities(store, "w") == 2  # the two anonymous page views of a1
    assert persons(store) == [
        ("a1", None, "u1"),
        ("a1", None, "u1"),
        ("a2", None, "a2"),
        ("a1", "u1", "u1"),
        (None, "u1", "u1"),
    ]


def test_rows_moved_after_the_link_get_the_person_at_once(store: EventStore) -> None:
    store.append_rows([event(1, anon="a1", user="u1", type="identify")])
    resolve_identities(store, "w")
    store.append_rows([event(2, anon="a1")])  # raw person_id is "a1"
    assert resolve_identities(store, "w") == 1
    assert persons(store)[-1] == ("a1", None, "u1")


def test_alias_chain_across_calls(store: EventStore) -> None:
    store.append_rows([event(1, anon="a1"), event(2, anon="a1", user="u1", type="identify")])
    resolve_identities(store, "w")
    store.append_rows([event(3, user="u2", previous="u1", type="alias"), event(4, user="u2")])
    resolve_identities(store, "w")
    store.append_rows([event(5, user="u3", previous="u2", type="alias")])
    resolve_identities(store, "w")
    assert {row[2] for row in persons(store)} == {"u3"}
    assert person_ids_for(store, "w", ["a1", "u1", "u2", "u3", "x"]) == {
        "a1": "u3",
        "u1": "u3",
        "u2": "u3",
        "u3": "u3",
        "x": "x",
    }


def test_two_anonymous_devices_of_one_user(store: EventStore) -> None:
    store.append_rows([event(1, anon="phone"), event(2, anon="laptop")])
    store.append_rows([event(3, anon="phone", user="u1"), event(4, anon="laptop", user="u1")])
    assert resolve_identities(store, "w") == 2
    assert {row[2] for row in persons(store)} == {"u1"}


def test_shared_device_keeps_two_customers_apart(store: EventStore) -> None:
    store.append_rows(
        [
            event(1, anon="laptop"),
            event(2, anon="laptop", user="dad", type="identify"),
            event(3, anon="laptop", user="mum", type="identify"),
            event(4, anon="laptop", user="mum"),
        ]
    )
    resolve_identities(store, "w")
    assert [row[2] for row in persons(store)] == ["dad", "dad", "mum", "mum"]


def test_a_late_identify_rewrites_old_rows(store: EventStore) -> None:
    store.append_rows([event(10, anon="a1"), event(20, anon="a1", user="u2")])
    resolve_identities(store, "w")
    assert persons(store)[0][2] == "u2"
    # Arrives late (a mobile app back online) but happened first: a1 was u1's device.
    store.append_rows([event(5, anon="a1", user="u1", type="identify")])
    assert resolve_identities(store, "w") == 1
    assert persons(store) == [("a1", "u1", "u1"), ("a1", None, "u1"), ("a1", "u2", "u2")]


def test_calling_twice_changes_nothing(store: EventStore) -> None:
    store.append_rows([event(1, anon="a1"), event(2, anon="a1", user="u1")])
    assert resolve_identities(store, "w") == 1
    before = store.con.execute("SELECT * FROM identities ORDER BY ALL").fetchall()
    assert resolve_identities(store, "w") == 0
    assert store.con.execute("SELECT * FROM identities ORDER BY ALL").fetchall() == before


def test_person_ids_for_before_any_resolution(store: EventStore) -> None:
    assert person_ids_for(store, "w", ["a", "b", "a"]) == {"a": "a", "b": "b"}


def test_workspaces_are_separate(store: EventStore) -> None:
    store.append_rows(
        [
            event(1, anon="a1", workspace="w"),
            event(2, anon="a1", workspace="other"),
            event(3, anon="a1", user="u1", workspace="w"),
        ]
    )
    assert resolve_identities(store, "other") == 0
    assert resolve_identities(store, "w") == 1
    assert persons(store, "other") == [("a1", None, "a1")]
    assert person_ids_for(store, "other", ["a1"]) == {"a1": "a1"}


def test_deleted_rows_make_the_next_call_read_afresh(store: EventStore) -> None:
    store.append_rows([event(1, anon="a1", user="u1")])
    # Filler rows (two row groups' worth), inserted in SQL because normalizing them is slow.
    store.con.execute(
        """INSERT INTO events (workspace_id, message_id, type, event, anonymous_id, person_id,
                               "timestamp", received_at, source)
           SELECT 'w', 'x' || range, 'track', 'e', 'x' || range, 'x' || range,
                  TIMESTAMPTZ '2026-03-01 00:02:00+00', now(), 'test'
           FROM range(200000)"""
    )
    store.append_rows([event(3, anon="a2", user="u2")])
    resolve_identities(store, "w")
    # A deletion then a checkpoint compacts row groups and shifts rowids under the watermark.
    store.con.execute("DELETE FROM events WHERE anonymous_id LIKE 'x%'")
    store.con.execute("CHECKPOINT")
    store.append_rows([event(4, anon="a1"), event(5, anon="a2"), event(6, anon="a3")])
    resolve_identities(store, "w")
    assert [row[2] for row in persons(store)] == ["u1", "u2", "u1", "u2", "a3"]


def test_deleted_rows_take_their_links_with_them(store: EventStore) -> None:
    # A sample store replaced by another in which the ids mean other people.
    store.append_rows([event(1, anon="a1", user="u1"), event(2, anon="a1")])
    store.append_rows([event(3, anon="z", workspace="other")])  # holds the last rowid
    resolve_identities(store, "w")
    store.con.execute("DELETE FROM events WHERE workspace_id = 'w'")
    store.append_rows([event(4, anon="a1"), event(5, anon="a1", user="u2")])
    resolve_identities(store, "w")
    assert [row[2] for row in persons(store)] == ["u2", "u2"]


def test_a_failure_leaves_the_store_as_it_was(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve_identities(store, "w") == 0  # creates the identity tables
    store.append_rows([event(1, anon="a1"), event(2, anon="a1", user="u1")])

    def boom(*args: object) -> dict[str, str]:
        raise RuntimeError("boom")

    monkeypatch.setattr(store_identity, "alias_canonicals", boom)
    with pytest.raises(RuntimeError):
        resolve_identities(store, "w")
    assert persons(store)[0] == ("a1", None, "a1")
    assert store.con.execute("SELECT count(*) FROM identity_links").fetchone() == (0,)
    assert store.con.execute("SELECT count(*) FROM identity_watermarks").fetchone() == (0,)
    monkeypatch.undo()
    assert resolve_identities(store, "w") == 1


def test_inside_the_callers_transaction(store: EventStore) -> None:
    store.con.execute("BEGIN")
    # append_rows opens a transaction of its own: insert by hand, as a caller's batch would.
    rows = [event(1, anon="a1"), event(2, anon="a1", user="u1")]
    store.con.register("_rows", rows_to_arrow(rows))
    store.con.execute("INSERT INTO events SELECT * FROM _rows")
    assert resolve_identities(store, "w") == 1
    store.con.execute("ROLLBACK")
    assert store.count() == 0
    assert resolve_identities(store, "w") == 0
    store.con.execute("BEGIN")
    store.con.register("_rows", rows_to_arrow(rows))  # the rollback took the view away too
    store.con.execute("INSERT INTO events SELECT * FROM _rows")
    assert resolve_identities(store, "w") == 1
    store.con.execute("COMMIT")
    assert [row[2] for row in persons(store)] == ["u1", "u1"]


# --- incremental vs from scratch, on random logs ---------------------------------------------

USERS = ["u0", "u1", "u2", "u3"]
ANONS = ["a0", "a1", "a2", "a3", "a4"]
messages = st.one_of(
    st.builds(lambda m, a: event(m, anon=a), st.integers(0, 30), st.sampled_from(ANONS)),
    st.builds(
        lambda m, u, a: event(m, user=u, anon=a, type="identify"),
        st.integers(0, 30),
        st.sampled_from(USERS),
        st.sampled_from(ANONS),
    ),
    # A lone userId, now and then one also used as an anonymousId (malformed, but it happens).
    st.builds(lambda m, u: event(m, user=u), st.integers(0, 30), st.sampled_from([*USERS, "a0"])),
    st.builds(
        lambda m, u, p: event(m, user=u, previous=p, type="alias"),
        st.integers(0, 30),
        st.sampled_from(USERS),
        st.sampled_from(USERS + ANONS),
    ),
)


@given(st.lists(st.lists(messages, min_size=1, max_size=8), min_size=1, max_size=4))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@pytest.mark.slow
def test_batch_by_batch_equals_the_rules_applied_to_everything(
    batches: list[list[dict[str, Any]]],
) -> None:
    with EventStore(":memory:") as store:
        everything: list[dict[str, Any]] = []
        for batch in batches:
            store.append_rows(batch)
            everything.extend(batch)
            before = dict(store.con.execute("SELECT message_id, person_id FROM events").fetchall())
            changed = resolve_identities(store, "w")
            after = dict(store.con.execute("SELECT message_id, person_id FROM events").fetchall())
            assert changed == sum(before[m] != after[m] for m in after)
            mapping = resolve(link for row in everything for link in links_from_row(row))
            for row in everything:
                key = row["user_id"] or row["anonymous_id"]
                assert after[row["message_id"]] == mapping.get(key, key)
        assert resolve_identities(store, "w") == 0
