"""The stage mapping: which journey stage, touchpoint and role each event name belongs to.

A journey map groups what customers do into **stages** — awareness, consideration, decision,
retention and, where reviews or referrals exist, advocacy — and says **where** each action
happens: the **touchpoint** (product page, cart, checkout, email, WhatsApp, support…). Events
only carry a name, so a mapping says, per name, its stage, touchpoint and **role**: what the
event means (``product_view``, ``add_to_cart``, ``checkout``, ``payment``, ``purchase``,
``refund``, ``review``, ``support``, ``error``, ``delivery``…). Roles let the pain-point
detectors find the funnel of a store they have never seen, whatever it names its events.

The mapping comes from two YAML files of the same shape:

- ``default_mapping.yaml``, shipped with Wayline: the Segment e-commerce spec names
  (``Product Viewed``, ``Product Added``, ``Checkout Started``, ``Order Completed``…), GA4's
  recommended e-commerce events (``view_item``, ``add_to_cart``, ``begin_checkout``,
  ``add_payment_info``, ``purchase``…), Shopify and Meta pixel names and common variants;
- ``<WAYLINE_HOME>/journeymap.yaml``, the store owner's own, which adds or overrides names and
  page rules and holds the owner's **notes, thoughts and ideas per stage** (they appear on the
  map).

Names match loosely (:func:`normalize_name`): case, spaces, ``_``, ``-`` and camelCase do not
matter. A page view (``$page``) takes the stage of the first page rule whose path prefix matches
its ``page_path`` (``/products`` → consideration, ``/cart`` → decision), else its own stage
(awareness: arriving at the store). A name the mapping does not know is never dropped: it gets a
*suggested* stage from words in its name (``known=False``), and the map lists it so the owner
can add it to their file.

Everything here is pure except :func:`load_mapping`, which reads the two files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wayline.errors import InputError

Stage = Literal["awareness", "consideration", "decision", "retention", "advocacy"]
STAGES: Final[tuple[Stage, ...]] = get_args(Stage)

#: Where an action happens. Channel names (ads, search, social, email, whatsapp, sms,
#: referral, direct) are touchpoints too: the awareness stage is drawn by acquisition channel.
TOUCHPOINTS: Final[tuple[str, ...]] = (
    "website",
    "app",
    "content",
    "ads",
    "search",
    "social",
    "referral",
    "direct",
    "catalogue",
    "product_page",
    "cart",
    "checkout",
    "payment",
    "account",
    "email",
    "whatsapp",
    "sms",
    "support",
    "delivery",
    "reviews",
)

#: What an event means to the analytics and the pain-point detectors.
ROLES: Final[tuple[str, ...]] = (
    "page_view",
    "promotion_view",
    "promotion_click",
    "search",
    "product_list",
    "product_click",
    "product_view",
    "wishlist",
    "add_to_cart",
    "remove_from_cart",
    "cart_view",
    "coupon",
    "checkout",
    "checkout_step",
    "checkout_error",
    "payment",
    "payment_failed",
    "purchase",
    "signup",
    "login",
    "identify",
    "order_update",
    "delivery",
    "refund",
    "cancel",
    "support",
    "message_delivered",
    "message_open",
    "message_click",
    "message_reply",
    "message_failed",
    "unsubscribe",
    "review",
    "share",
    "referral",
    "error",
)

#: The purchase funnel by role, in order: what "moving on" means between the stages.
FUNNEL_ROLES: Final[tuple[str, ...]] = (
    "page_view",
    "product_view",
    "add_to_cart",
    "checkout",
    "payment",
    "purchase",
)

USER_FILE_NAME: Final = "journeymap.yaml"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^a-z0-9$]+")


def normalize_name(name: str) -> str:
    """The key an event name is matched by: its letters, digits and ``$``, lower-cased.
    ``"productAdded"``, ``"Product Added"``, ``"product_added"`` and ``"PRODUCT-ADDED"`` all give
    ``"productadded"``. Separators are dropped rather than split on camelCase, so that brand
    names written in camelCase (``WhatsApp``) match their lower-case spelling."""
    return _NON_WORD.sub("", name.lower())


def _words(name: str) -> list[str]:
    return _NON_WORD.sub(" ", _CAMEL.sub(" ", name.strip()).lower()).split()


@dataclass(frozen=True)
class EventClass:
    """Where an event sits on the map. ``known`` is False for a name the mapping does not know:
    ``stage`` and ``touchpoint`` are then a suggestion and ``role`` is None."""

    stage: Stage
    touchpoint: str
    role: str | None
    known: bool = True


@dataclass(frozen=True)
class PageRule:
    """Page views whose path starts with ``prefix`` are at ``stage`` / ``touchpoint``."""

    prefix: str
    stage: Stage
    touchpoint: str


@dataclass(frozen=True)
class StageNotes:
    """What the owner wrote about a stage in their file; shown on the map as written."""

    label: str | None = None
    goal: str | None = None
    notes: tuple[str, ...] = ()
    thoughts: tuple[str, ...] = ()
    feelings: tuple[str, ...] = ()
    ideas: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (
            self.label or self.goal or self.notes or self.thoughts or self.feelings or self.ideas
        )


# Words in an unknown name → the stage it most likely belongs to, checked in this order.
_SUGGEST: Final[tuple[tuple[tuple[str, ...], Stage, str], ...]] = (
    (("review", "rating", "rated", "refer", "share", "invite", "recommend"), "advocacy", "reviews"),
    (("refund", "return", "deliver", "ship", "track", "support", "ticket"), "retention", "support"),
    (
        ("email", "whatsapp", "sms", "push", "newsletter", "subscri", "login", "sign"),
        "retention",
        "account",
    ),
    (
        ("cart", "basket", "checkout", "pay", "order", "purchase", "coupon", "buy"),
        "decision",
        "checkout",
    ),
    (
        (
            "product",
            "item",
            "search",
            "list",
            "collection",
            "category",
            "wishlist",
            "compare",
            "filter",
            "view",
            "browse",
            "size",
            "video",
            "zoom",
        ),
        "consideration",
        "product_page",
    ),
    (
        ("ad", "campaign", "promo", "landing", "visit", "session", "page", "screen"),
        "awareness",
        "website",
    ),
)


def _channel_in(key: str) -> str | None:
    for channel in ("whatsapp", "email", "sms"):
        if channel in key:
            return channel
    return None


def suggest(name: str) -> EventClass:
    """A stage and touchpoint for a name the mapping does not know, from the words in it."""
    key = normalize_name(name)
    words = _words(name)
    for stems, stage, touchpoint in _SUGGEST:
        for stem in stems:
            # Short stems must be whole words ("ad" is not "add"); longer ones may be prefixes,
            # or anywhere in the joined name when long enough to be unambiguous ("whatsapp").
            if any(w == stem or (len(stem) > 3 and w.startswith(stem)) for w in words) or (
                len(stem) >= 5 and stem in key
            ):
                return EventClass(stage, _channel_in(key) or touchpoint, None, known=False)
    return EventClass("consideration", "website", None, known=False)


@dataclass(frozen=True)
class StageMapping:
    """Event name → :class:`EventClass`, page rules, and the owner's notes per stage."""

    events: Mapping[str, EventClass]
    """Keyed by :func:`normalize_name`."""
    pages: tuple[PageRule, ...] = ()
    notes: Mapping[str, StageNotes] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    """The files the mapping was read from, for messages."""

    def classify(self, event_name: str, page_path: str | None = None) -> EventClass:
        """The stage, touchpoint and role of an event (a suggestion when ``known`` is False)."""
        found = self.events.get(normalize_name(event_name))
        if found is None:
            return suggest(event_name)
        if page_path is not None and found.role == "page_view":
            rule = self.page_rule(page_path)
            if rule is not None:
                return EventClass(rule.stage, rule.touchpoint, found.role)
        return found

    def page_rule(self, page_path: str) -> PageRule | None:
        for rule in self.pages:
            if page_path.startswith(rule.prefix):
                return rule
        return None

    def is_known(self, event_name: str) -> bool:
        return normalize_name(event_name) in self.events

    def role(self, event_name: str) -> str | None:
        found = self.events.get(normalize_name(event_name))
        return found.role if found is not None else None

    def names_with_role(self, role: str, names: Iterable[str]) -> tuple[str, ...]:
        """The names among ``names`` (e.g. a store's distinct event names) having ``role``,
        sorted — what a detector passes to a funnel step."""
        return tuple(sorted({n for n in names if self.role(n) == role}))

    def stages_present(self, names: Iterable[str]) -> tuple[Stage, ...]:
        """The stages to draw for a store with these event names: the four core stages, plus
        advocacy only where the store has reviews, referrals or shares."""
        stages = {self.classify(n).stage for n in names}
        return tuple(s for s in STAGES if s != "advocacy" or "advocacy" in stages)

    def notes_for(self, stage: str) -> StageNotes:
        return self.notes.get(stage, StageNotes())


# ---------------------------------------------------------------------------------------------
# The file format, validated with pydantic at the edge


class _EventEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: Stage
    touchpoint: str = Field(min_length=1)
    role: str | None = None

    @field_validator("role")
    @classmethod
    def _known_role(cls, value: str | None) -> str | None:
        if value is not None and value not in ROLES:
            raise ValueError(f"unknown role {value!r}; use one of {', '.join(ROLES)}")
        return value


class _PageEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefix: str = Field(min_length=1)
    stage: Stage
    touchpoint: str = Field(min_length=1)


def _texts(value: Any) -> Any:
    # A single note may be written as a string instead of a one-item list.
    return [value] if isinstance(value, str) else value


class _StageEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str | None = None
    goal: str | None = None
    notes: list[str] = []
    thoughts: list[str] = []
    feelings: list[str] = []
    ideas: list[str] = []

    @field_validator("notes", "thoughts", "feelings", "ideas", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        return _texts(value)


class _MappingFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: dict[str, _EventEntry] = {}
    pages: list[_PageEntry] = []
    stages: dict[Stage, _StageEntry] = {}


def _lines_of(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    """Record the 1-based line of every key and item, by its path in the document."""
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            out[(*path, key)] = key_node.start_mark.line + 1
            _lines_of(value_node, (*path, key), out)
            out[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines_of(item, (*path, i), out)


def _parse(text: str, source: str) -> _MappingFile:
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(
            f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
            source=source,
            row=mark.line + 1 if mark is not None else None,
        ) from exc
    if data is None:
        return _MappingFile()
    if not isinstance(data, dict):
        raise InputError("expected a mapping with events, pages and stages", source=source, row=1)
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _lines_of(node, (), lines)
    try:
        return _MappingFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        message = err["msg"]
        if loc and loc[-1] == "[key]":  # a dict key of the wrong kind: an unknown stage
            loc = loc[:-1]
            message = f"unknown stage {loc[-1]!r}; use one of {', '.join(STAGES)}"
        # The deepest part of the location that exists in the file gives the line.
        row = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)
        where = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        raise InputError(message, source=source, row=row, field=where) from exc


def _merge(files: Iterable[tuple[_MappingFile, str]]) -> StageMapping:
    events: dict[str, EventClass] = {}
    user_pages: list[PageRule] = []
    default_pages: list[PageRule] = []
    notes: dict[str, StageNotes] = {}
    sources: list[str] = []
    for i, (parsed, source) in enumerate(files):
        sources.append(source)
        for name, entry in parsed.events.items():
            events[normalize_name(name)] = EventClass(entry.stage, entry.touchpoint, entry.role)
        rules = [PageRule(p.prefix, p.stage, p.touchpoint) for p in parsed.pages]
        # The owner's page rules come first, so they win over the defaults.
        if i == 0:
            default_pages = rules
        else:
            user_pages = rules + user_pages
        for stage, s in parsed.stages.items():
            notes[stage] = StageNotes(
                label=s.label,
                goal=s.goal,
                notes=tuple(s.notes),
                thoughts=tuple(s.thoughts),
                feelings=tuple(s.feelings),
                ideas=tuple(s.ideas),
            )
    return StageMapping(events, tuple(user_pages + default_pages), notes, tuple(sources))


@lru_cache(maxsize=1)
def _default_file() -> _MappingFile:
    text = resources.files("wayline.journeymap").joinpath("default_mapping.yaml").read_text()
    return _parse(text, "default_mapping.yaml")


def parse_mapping(text: str, source: str = USER_FILE_NAME) -> StageMapping:
    """The default mapping with the owner's file (its text) laid over it. Raises InputError
    naming the line and field of the first problem."""
    return _merge([(_default_file(), "default_mapping.yaml"), (_parse(text, source), source)])


def default_mapping() -> StageMapping:
    """The shipped mapping alone."""
    return _merge([(_default_file(), "default_mapping.yaml")])


def user_mapping_path(home: Path) -> Path:
    return home / USER_FILE_NAME


def load_mapping(home: Path | None) -> StageMapping:
    """The default mapping, overridden by ``<home>/journeymap.yaml`` when that file exists."""
    if home is None:
        return default_mapping()
    path = user_mapping_path(home)
    if not path.is_file():
        return default_mapping()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the file: {exc}", source=str(path)) from exc
    return parse_mapping(text, str(path))


USER_FILE_TEMPLATE: Final = """\
# Your journey map settings. Wayline reads this file on every `wayline map`.
#
# events: add your own event names or change where a known one sits on the map.
#   Names match loosely (case, spaces, _ and camelCase do not matter).
#   stage: awareness | consideration | decision | retention | advocacy
#   role (optional): what the event means, e.g. product_view, add_to_cart, checkout, payment,
#   purchase, refund, review, support, error, delivery
events: {}
#  "Size Guide Opened": {stage: consideration, touchpoint: product_page, role: product_view}

# pages: page views whose path starts with prefix are drawn at this stage and touchpoint.
pages: []
#  - {prefix: /lookbook, stage: awareness, touchpoint: content}

# stages: your own notes, thoughts, feelings and ideas per stage; they appear on the map.
stages: {}
#  decision:
#    goal: Checkout in under two minutes
#    thoughts: ["Is shipping free?", "Can I pay with PayPal?"]
#    ideas: ["Show delivery date on the product page"]
"""
