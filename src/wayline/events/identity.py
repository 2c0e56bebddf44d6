"""Identity resolution: which customer (*person*) every visitor id and user id belongs to. Pure.

A shopper browses anonymously (the tracking SDK gives the browser an ``anonymousId``), later
signs up or logs in (the store sends ``identify`` with a ``userId``), maybe from a second device,
and may even change user id (``alias``). Analytics and journeys must see one person across all of
it, so every event row carries a ``person_id`` (see :mod:`wayline.events.schema`) computed from
the rules below. This module decides; :mod:`wayline.storage.identity` applies the decision to the
event store.

Facts
    A *link* joins two ids and carries ``at``, the time of the message it came from. The same
    link may be seen many times; the rules only ever look at the earliest time of an identify
    link and the latest time of an alias link, so a set of links, not their order or
    repetition, decides everything:

    - an **identify link** (``user_id`` ← ``other_id``) from any message carrying both ``userId``
      and ``anonymousId`` (``identify``, but also ``track``, ``page``… and ``alias``):
      "this browser was logged in as this user";
    - an **alias link** (``user_id`` ← ``other_id``) from an ``alias`` call, ``userId`` being the
      new id and ``previousId`` the old one: "these are the same person; use the new id".

    Links from an id to itself say nothing and are dropped.

Rules
    1. *User ids* are the ids on the ``user_id`` side of any link. (An id only ever seen as a
       lone ``userId``, in no link, needs no rule: it is its own person. Should it also serve
       as someone's ``anonymousId`` — malformed, but seen — rule 3 treats it as anonymous.)
    2. **Alias merges unconditionally**: ids joined by a chain of alias links form one person
       (a union-find). Its canonical id is the target (``userId``) of the group's latest alias
       call — the id the store uses now; ties on time go to the lexically smallest target.
    3. **Identify attaches, it does not merge users**: an *anonymous id* (not a user id and in
       no alias link) belongs to the person of the user it was linked to first — smallest
       ``(at, user_id)``. Linked later to other users, it stays: a shared device (a family
       laptop, a shop's tablet) must never fuse two customers into one. The rows of that device
       that carry a ``userId`` still belong to that user (a row's person is the person of its
       ``userId`` when it has one, else of its ``anonymousId``).
    4. Every other id — a user id in no alias link, an id in no link — is its own person.

Properties (tested with Hypothesis): the mapping depends on the set of links only (not their
order or repetition); the canonical id of a person is one of its ids and maps to itself
(``person(person(x)) == person(x)``); ids joined by alias links, transitively, share a person;
the incremental :class:`IdentityGraph` agrees with the from-scratch :func:`resolve`.

Stability: an identify link never changes a user's person; it moves one anonymous id at most
(and only when it is the earliest link of that id). Only an alias call renames a person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from wayline.events.normalize import epoch_micros


class LinkKind(StrEnum):
    IDENTIFY = "identify"
    ALIAS = "alias"


@dataclass(frozen=True, slots=True)
class Link:
    """A fact joining two ids. ``user_id`` is the userId (for an alias: the new id);
    ``other_id`` the anonymousId (for an alias: the previousId)."""

    kind: LinkKind
    user_id: str
    other_id: str
    at: datetime


def links_from_row(row: Mapping[str, Any]) -> list[Link]:
    """The links an event row (:func:`wayline.events.normalize.normalize` output) carries."""
    user_id = row.get("user_id")
    anonymous_id = row.get("anonymous_id")
    at = row["timestamp"]
    links: list[Link] = []
    if user_id and anonymous_id and user_id != anonymous_id:
        links.append(Link(LinkKind.IDENTIFY, user_id, anonymous_id, at))
    if row.get("type") == "alias" and user_id:
        properties = row.get("properties") or {}
        previous = properties.get("previousId") if isinstance(properties, Mapping) else None
        if previous and str(previous) != user_id:
            links.append(Link(LinkKind.ALIAS, user_id, str(previous), at))
    return links


# The rank of an alias target within its group: smaller wins (latest alias, then lexical).
_TargetKey = tuple[int, str]


class _AliasGroups:
    """Union-find over alias links (path compression, union by size) that keeps, per root,
    the winning target key and the members (so a merge can report who moved)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.size: dict[str, int] = {}
        self.best: dict[str, _TargetKey] = {}
        self.members: dict[str, list[str]] = {}

    def __contains__(self, node: str) -> bool:
        return node in self.parent

    def _add(self, node: str) -> None:
        if node not in self.parent:
            self.parent[node] = node
            self.size[node] = 1
            self.members[node] = [node]

    def find(self, node: str) -> str:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:  # path compression
            self.parent[node], node = root, self.parent[node]
        return root

    def group(self, node: str) -> list[str]:
        return self.members[self.find(node)] if node in self.parent else [node]

    def canonical(self, node: str) -> str:
        return self.best[self.find(node)][1]

    def add(self, link: Link) -> None:
        self._add(link.user_id)
        self._add(link.other_id)
        key: _TargetKey = (-epoch_micros(link.at), link.user_id)
        a, b = self.find(link.user_id), self.find(link.other_id)
        if a != b:
            if self.size[a] < self.size[b]:
                a, b = b, a
            self.parent[b] = a
            self.size[a] += self.size.pop(b)
            self.members[a].extend(self.members.pop(b))
            if b in self.best:
                old = self.best.pop(b)
                self.best[a] = min(old, self.best.get(a, old))
        self.best[a] = min(key, self.best.get(a, key))


def alias_canonicals(links: Iterable[Link]) -> dict[str, str]:
    """Rule 2 alone: every id in an alias link → the canonical id of its alias group."""
    groups = _AliasGroups()
    for link in links:
        if link.kind is LinkKind.ALIAS and link.user_id != link.other_id:
            groups.add(link)
    return {node: groups.canonical(node) for node in groups.parent}


def resolve(links: Iterable[Link]) -> dict[str, str]:
    """From scratch: every id named in ``links`` → its person id (the rules above)."""
    links = [link for link in links if link.user_id != link.other_id]
    aliased = alias_canonicals(links)
    users = {link.user_id for link in links}
    owner: dict[str, tuple[datetime, str]] = {}
    for link in links:
        if link.kind is LinkKind.IDENTIFY:
            candidate = (link.at, link.user_id)
            current = owner.get(link.other_id)
            if current is None or candidate < current:
                owner[link.other_id] = candidate
    mapping: dict[str, str] = {}
    for node in users | {link.other_id for link in links}:
        if node in aliased:
            mapping[node] = aliased[node]
        elif node in users:
            mapping[node] = node
        elif node in owner:
            user = owner[node][1]
            mapping[node] = aliased.get(user, user)
        else:  # pragma: no cover - every other_id without an alias has an identify link
            mapping[node] = node
    return mapping


class IdentityGraph:
    """The same rules, kept up to date link batch by link batch.

    ``add`` returns only the ids whose person changed, so a caller can rewrite just their rows.
    Ids never seen map to themselves.
    """

    def __init__(self) -> None:
        self._aliases = _AliasGroups()
        self._users: set[str] = set()
        self._owner: dict[str, tuple[datetime, str]] = {}
        self._owned: dict[str, set[str]] = {}  # user → anonymous ids it currently owns

    def person_of(self, node: str) -> str:
        if node in self._aliases:
            return self._aliases.canonical(node)
        if node in self._users:
            return node
        owner = self._owner.get(node)
        if owner is None:
            return node
        user = owner[1]
        return self._aliases.canonical(user) if user in self._aliases else user

    def mapping(self) -> dict[str, str]:
        """Every id seen → its person id."""
        nodes = set(self._aliases.parent) | self._users | set(self._owner)
        return {node: self.person_of(node) for node in nodes}

    def _touched(self, links: list[Link]) -> set[str]:
        """Ids whose person may change when ``links`` are added: the ids named, everything in
        their alias groups, and the anonymous ids owned by any of those."""
        touched: set[str] = set()
        for link in links:
            for node in (link.user_id, link.other_id):
                if node not in touched:
                    touched.update(self._aliases.group(node))
        for node in list(touched):
            touched.update(self._owned.get(node, ()))
        return touched

    def add(self, links: Iterable[Link]) -> dict[str, str]:
        """Add links; return ``{id: new person id}`` for every id whose person changed
        (an id not seen before counts as having been its own person)."""
        batch = [link for link in links if link.user_id != link.other_id]
        touched = self._touched(batch)
        before = {node: self.person_of(node) for node in touched}
        for link in batch:
            self._users.add(link.user_id)
            if link.kind is LinkKind.ALIAS:
                self._aliases.add(link)
            else:
                candidate = (link.at, link.user_id)
                current = self._owner.get(link.other_id)
                if current is None or candidate < current:
                    if current is not None:
                        self._owned[current[1]].discard(link.other_id)
                    self._owner[link.other_id] = candidate
                    self._owned.setdefault(link.user_id, set()).add(link.other_id)
        changed: dict[str, str] = {}
        for node, old in before.items():
            new = self.person_of(node)
            if new != old:
                changed[node] = new
        return changed
