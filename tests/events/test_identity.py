"""The identity rules (wayline.events.identity): examples, then the algebra with Hypothesis."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from wayline.events.identity import (
    IdentityGraph,
    Link,
    LinkKind,
    alias_canonicals,
    links_from_row,
    resolve,
)
from wayline.events.normalize import normalize

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


def ident(user: str, anon: str, minute: int = 0) -> Link:
    return Link(LinkKind.IDENTIFY, user, anon, at(minute))


def alias(new: str, previous: str, minute: int = 0) -> Link:
    return Link(LinkKind.ALIAS, new, previous, at(minute))


def test_identify_attaches_the_anonymous_id_to_the_user() -> None:
    assert resolve([ident("u1", "a1")]) == {"u1": "u1", "a1": "u1"}


def test_two_devices_of_one_user() -> None:
    assert resolve([ident("u1", "a1", 1), ident("u1", "a2", 5)]) == {
        "u1": "u1",
        "a1": "u1",
        "a2": "u1",
    }


def test_shared_device_does_not_merge_two_users() -> None:
    mapping = resolve([ident("dad", "laptop", 1), ident("mum", "laptop", 2)])
    assert mapping == {"dad": "dad", "mum": "mum", "laptop": "dad"}
    # The earliest link decides, wherever it comes in the list.
    assert resolve([ident("mum", "laptop", 2), ident("dad", "laptop", 1)]) == mapping


def test_alias_chain_ends_at_the_latest_target() -> None:
    links = [ident("u1", "a1", 0), alias("u2", "u1", 10), alias("u3", "u2", 20)]
    assert set(resolve(links).values()) == {"u3"}


def test_alias_back_to_an_old_id() -> None:
    assert set(resolve([alias("u2", "u1", 1), alias("u1", "u2", 2)]).values()) == {"u1"}


def test_alias_from_an_anonymous_id_wins_over_identify() -> None:
    mapping = resolve([ident("u1", "a1", 1), alias("u2", "a1", 2)])
    assert mapping["a1"] == "u2"
    assert mapping["u1"] == "u1"


def test_ties_on_time_go_to_the_lexically_smallest_id() -> None:
    assert resolve([ident("ub", "a", 1), ident("ua", "a", 1)])["a"] == "ua"
    assert set(alias_canonicals([alias("x", "p", 1), alias("w", "p", 1)]).values()) == {"w"}


def test_self_links_say_nothing() -> None:
    assert resolve([ident("u1", "u1")]) == {}


def test_links_from_rows() -> None:
    def row(message: dict[str, object]) -> dict[str, object]:
        base = {"messageId": "m", "timestamp": T0.isoformat()}
        return normalize({**base, **message}, workspace_id="w", received_at=T0)

    assert links_from_row(row({"type": "track", "event": "e", "anonymousId": "a"})) == []
    assert links_from_row(row({"type": "page", "userId": "u", "anonymousId": "a"})) == [
        ident("u", "a")
    ]
    assert links_from_row(row({"type": "alias", "userId": "u2", "previousId": "u1"})) == [
        alias("u2", "u1")
    ]
    assert links_from_row(
        row({"type": "alias", "userId": "u2", "previousId": "u1", "anonymousId": "a"})
    ) == [ident("u2", "a"), alias("u2", "u1")]


def test_incremental_reports_the_anonymous_history_moving() -> None:
    graph = IdentityGraph()
    assert graph.add([ident("u1", "a1", 1)]) == {"a1": "u1"}
    assert graph.add([ident("u1", "a1", 1)]) == {}
    assert graph.add([alias("u2", "u1", 5)]) == {"u1": "u2", "a1": "u2"}
    assert graph.person_of("never-seen") == "never-seen"


# --- properties ------------------------------------------------------------------------------

USERS = [f"u{i}" for i in range(5)]
ANONS = [f"a{i}" for i in range(6)]

identify_links = st.builds(
    ident,
    st.sampled_from(USERS),
    # Now and then an id used both as a userId and as an anonymousId: malformed, but possible.
    st.sampled_from(ANONS + USERS[:1]),
    st.integers(0, 20),
)
alias_links = st.builds(
    alias, st.sampled_from(USERS), st.sampled_from(USERS + ANONS), st.integers(0, 20)
)
link_lists = st.lists(st.one_of(identify_links, identify_links, alias_links), max_size=25)


def person(mapping: dict[str, str], node: str) -> str:
    return mapping.get(node, node)


@given(link_lists, st.randoms(use_true_random=False))
def test_order_and_repetition_do_not_matter(links: list[Link], rnd: random.Random) -> None:
    shuffled = links + links[: len(links) // 2]
    rnd.shuffle(shuffled)
    assert resolve(shuffled) == resolve(links)


@given(link_lists)
def test_canonical_is_a_member_that_maps_to_itself(links: list[Link]) -> None:
    mapping = resolve(links)
    for node, canonical in mapping.items():
        assert canonical in mapping  # one of the ids seen
        assert person(mapping, canonical) == canonical  # idempotent
        assert person(mapping, node) == canonical


@given(link_lists)
def test_alias_merges_transitively(links: list[Link]) -> None:
    mapping = resolve(links)
    for link in links:
        if link.kind is LinkKind.ALIAS and link.user_id != link.other_id:
            assert mapping[link.user_id] == mapping[link.other_id]
    # Transitivity as a partition: the groups of the alias graph each have one person.
    groups = alias_canonicals(links)
    for node, canonical in groups.items():
        assert mapping[node] == mapping[canonical] == canonical


@given(link_lists)
def test_identify_never_merges_two_users(links: list[Link]) -> None:
    mapping = resolve(links)
    aliased = alias_canonicals(links)
    users = {link.user_id for link in links if link.user_id != link.other_id}
    for user in users - set(aliased):
        assert mapping[user] == user


@given(link_lists)
def test_an_anonymous_id_follows_its_earliest_user(links: list[Link]) -> None:
    mapping = resolve(links)
    users = {link.user_id for link in links if link.user_id != link.other_id}
    aliased = alias_canonicals(links)
    for anon in set(mapping) - users - set(aliased):
        first = min((link.at, link.user_id) for link in links if link.other_id == anon)
        assert mapping[anon] == mapping[first[1]]


@given(st.lists(link_lists, max_size=4))
@settings(max_examples=200)
def test_incremental_equals_from_scratch_and_reports_exactly_the_changes(
    batches: list[list[Link]],
) -> None:
    graph = IdentityGraph()
    seen: list[Link] = []
    for batch in batches:
        before = resolve(seen)
        changes = graph.add(batch)
        seen.extend(batch)
        after = resolve(seen)
        assert graph.mapping() == after
        expected = {node: new for node, new in after.items() if person(before, node) != new}
        assert changes == expected
