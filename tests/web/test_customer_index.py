"""The customer list and search (``search_customers`` over the customer index and the profiles)
against a direct reading of the same data: the same customers, in the same order, with the same
total, for any search, page size and offset; and how the list follows new events and profiles."""

from __future__ import annotations

import os
import random
import string
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from wayline.api.rest.customers import search_customers
from wayline.config import Settings
from wayline.events.normalize import normalize
from wayline.storage.db import Database
from wayline.storage.eventstore import EventStore
from wayline.storage.models import CustomerProfile
from wayline.web.cache import ResultCache

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WS = "default"


def make_state(home: Path, *, background: bool = False) -> SimpleNamespace:
    conf = Settings(home=home)
    conf.ensure_home()
    db = Database.open(conf)
    db.ensure_default_workspace()
    cache = ResultCache(background=background)
    return SimpleNamespace(db=db, settings=conf, analytics_cache=cache)


def track(person: str, anonymous: str | None, at: datetime, n: int) -> dict[str, Any]:
    message = {
        "type": "track",
        "event": "Product Viewed",
        "userId": person,
        "anonymousId": anonymous,
        "timestamp": at.isoformat(),
        "messageId": f"{person}-{n}",
    }
    return normalize(
        {k: v for k, v in message.items() if v is not None}, workspace_id=WS, received_at=at
    )


def add_events(state: SimpleNamespace, events: list[dict[str, Any]]) -> None:
    with EventStore(state.settings.resolved_analytics_path) as store:
        store.append_rows(events)


def add_profile(state: SimpleNamespace, person: str, **fields: Any) -> None:
    with state.db.write() as conn:
        conn.execute(
            insert(CustomerProfile).values(
                workspace_id=WS, person_id=person, consent={}, traits={}, **fields
            )
        )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimpleNamespace, dict]]:
    """60 customers: some with events only, some with a profile only, some with both; ids,
    anonymous ids, e-mails and names from a small alphabet so that searches share substrings."""
    rng = random.Random(7)
    state = make_state(tmp_path_factory.mktemp("customers"))
    word = lambda: "".join(rng.choice("abc") for _ in range(rng.randint(2, 5)))  # noqa: E731
    truth: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    for i in range(60):
        person = f"p{i}{word()}"
        kind = rng.choice(["events", "profile", "both"])
        texts: list[str] = [person]
        last: list[datetime] = []
        if kind in ("events", "both"):
            for n in range(rng.randint(1, 4)):
                anonymous = f"anon-{word()}" if rng.random() < 0.5 else None
                at = T0 + timedelta(hours=rng.randint(0, 2000))
                events.append(track(person, anonymous, at, n))
                texts += [anonymous] if anonymous else []
                last.append(at)
        if kind in ("profile", "both"):
            first, family = word().title(), word().title()
            # The mover keeps a profile's last seen at its latest identify, so never after the
            # customer's last event (search_customers ranks event matches on that).
            seen = T0 + timedelta(hours=rng.randint(0, 2000))
            seen = min([seen, *last])
            add_profile(
                state,
                person,
                email=f"{word()}@{word()}.example",
                first_name=first,
                last_name=family,
                first_seen=seen,
                last_seen=seen,
            )
            texts += [f"{first} {family}"]
            last.append(seen)
            texts.append(state_email(state, person))
        truth[person] = {"texts": [t.lower() for t in texts], "last": max(last)}
    add_events(state, events)
    yield state, truth
    state.db.close()


def state_email(state: SimpleNamespace, person: str) -> str:
    with state.db.read() as conn:
        return str(
            conn.scalar(
                CustomerProfile.__table__.select()
                .with_only_columns(CustomerProfile.email)
                .where(CustomerProfile.person_id == person)
            )
        )


def expected(truth: dict[str, dict[str, Any]], q: str) -> list[str]:
    q = q.strip().lower()
    found = [p for p, t in truth.items() if not q or any(q in text for text in t["texts"])]
    return sorted(found, key=lambda p: (-truth[p]["last"].timestamp(), p))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    q=st.one_of(
        st.just(""), st.text(alphabet="abcp0123456789-@. " + string.ascii_uppercase[:3], max_size=4)
    ),
    limit=st.integers(1, 25),
    offset=st.integers(0, 70),
)
def test_search_equals_reading_every_customer(
    store: tuple[SimpleNamespace, dict], q: str, limit: int, offset: int
) -> None:
    state, truth = store
    found, total = search_customers(state, WS, q, limit=limit, offset=offset)
    want = expected(truth, q)
    assert total == len(want)
    assert [c.person_id for c in found] == want[offset : offset + limit]


def test_new_events_show_after_one_refresh_and_profiles_at_once(tmp_path: Path) -> None:
    state = make_state(tmp_path, background=True)
    add_events(state, [track("ann", None, T0, 0)])
    found, total = search_customers(state, WS, None, limit=10, offset=0)
    assert [c.person_id for c in found] == ["ann"] and total == 1

    add_events(state, [track("bob", None, T0 + timedelta(days=1), 0)])
    add_profile(state, "cy", email="cy@shop.example", first_seen=T0, last_seen=T0)
    # The index of before is served while it is rebuilt; the profile is read every time.
    found, _ = search_customers(state, WS, None, limit=10, offset=0)
    assert [c.person_id for c in found] == ["ann", "cy"]
    state.analytics_cache.wait_idle()
    found, total = search_customers(state, WS, None, limit=10, offset=0)
    assert [c.person_id for c in found] == ["bob", "ann", "cy"] and total == 3
    assert [c.person_id for c in search_customers(state, WS, "cy@", limit=5, offset=0)[0]] == ["cy"]
    state.db.close()


def test_an_empty_store_lists_profiles_only(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    assert search_customers(state, WS, None, limit=10, offset=0) == ([], 0)
    add_profile(state, "cy", email="cy@shop.example", first_seen=T0, last_seen=T0)
    found, total = search_customers(state, WS, "CY@SHOP", limit=10, offset=0)
    assert [(c.person_id, c.events) for c in found] == [("cy", 0)] and total == 1
    state.db.close()


def test_times_come_back_in_utc_whatever_the_server_s_zone(tmp_path: Path) -> None:
    """DuckDB answers a new cursor's instants in the machine's zone: the index and its searches
    set UTC, so the list shows the same times as the rest of the API on any server."""
    script = f"""
import sys
from datetime import timedelta
from types import SimpleNamespace
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_customer_index import T0, WS, add_events, make_state, track
from wayline.api.rest.customers import search_customers
state = make_state({str(tmp_path)!r})
add_events(state, [track("ann", None, T0, 0)])
found, _ = search_customers(state, WS, None, limit=5, offset=0)
print(found[0].last_seen.utcoffset() == timedelta(0), found[0].last_seen == T0)
"""
    env = {**os.environ, "TZ": "Pacific/Auckland"}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
