"""The solutions library: what to do about each kind of pain point.

The library is data (``solutions/library.yaml``, shipped with Wayline): each **solution** says
what to do, the effect to expect, the effort, and — where an automated journey can deliver it
— a **journey template**: a journey definition file in ``solutions/journeys/``, written in the
journey language (``docs/journey-language.md``) and valid as shipped, so a user can validate,
simulate and launch it as is. Each **pain-point kind** lists its solutions, most useful first;
a solution can be limited to some segments (``when: {device_type: mobile}``) or to segments
whose key mentions a word (``when_segment_key: [late]``).

Templates use the Segment e-commerce event names (``Checkout Started``, ``Order Completed``…).
:meth:`Solution.journey_for` rewrites them to a store's own names by role, through the stage
mapping, so the same template fits a store that calls them ``begin_checkout`` and
``purchase``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wayline.errors import InputError
from wayline.journeymap.stages import StageMapping, default_mapping
from wayline.journeys.definition import parse_journey
from wayline.journeys.model import Journey

Effort = Literal["low", "medium", "high"]
_PACKAGE = "wayline.journeymap"
LIBRARY_FILE = "library.yaml"
#: Keys of a journey document whose value is an event name (rewritten per store).
_EVENT_KEYS = ("event", "after_event")


@dataclass(frozen=True)
class Solution:
    """One thing to do about a pain point, and the journey that does it (if any)."""

    id: str
    title: str
    description: str
    expected_effect: str
    effort: Effort
    journey: str | None = None
    """File name of the journey template in ``solutions/journeys/`` (None: not automatable)."""
    when: Mapping[str, str] = field(default_factory=dict)
    when_segment_key: tuple[str, ...] = ()

    def applies_to(self, segment: Mapping[str, str]) -> bool:
        if any(segment.get(k) != v for k, v in self.when.items()):
            return False
        if self.when_segment_key:
            keys = " ".join(segment).lower()
            return any(word in keys for word in self.when_segment_key)
        return True

    @property
    def journey_template(self) -> str | None:
        """Where the journey template is installed (a path to give ``wayline journeys
        validate``/``simulate``), or None."""
        path = self.journey_file()
        return None if path is None else str(path)

    @property
    def channel(self) -> str | None:
        """The channel of the template's first message (``email``, ``whatsapp``, ``sms``)."""
        data = self.journey_document()
        steps = data.get("steps", []) if data else []
        sends = [st for st in steps if isinstance(st, dict) and st.get("type") == "send"]
        if not sends:
            return None
        channels = {str(st.get("channel")) for st in sends}
        # "whatsapp or email" when a template picks the channel per customer.
        return " or ".join(sorted(channels))

    def journey_file(self) -> Traversable | None:
        """The journey template shipped with Wayline, or None."""
        if self.journey is None:
            return None
        return resources.files(_PACKAGE).joinpath("solutions", "journeys", self.journey)

    def journey_document(self) -> dict[str, Any] | None:
        """The template as a decoded YAML document (None without a journey)."""
        path = self.journey_file()
        if path is None:
            return None
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise InputError("a journey template is a mapping", source=self.journey)
        return data

    def journey_for(
        self,
        events_by_role: Mapping[str, str] | None = None,
        *,
        properties: Mapping[str, str] | None = None,
        mapping: StageMapping | None = None,
    ) -> Journey | None:
        """The journey template, validated, with the store's own names.

        Args:
            events_by_role: role → the store's event name for it (e.g. ``{"checkout":
                "begin_checkout"}``); every event name of the template whose role (by
                ``mapping``, default Wayline's) is a key is replaced.
            properties: property names to rename in ``where`` filters (e.g. ``{"late":
                "delivered_late"}``), for a store whose lateness flag has another name.
        """
        data = self.journey_document()
        if data is None:
            return None
        stage_mapping = mapping or default_mapping()
        renamed = _rewrite(data, events_by_role or {}, properties or {}, stage_mapping)
        return parse_journey(renamed, source=self.journey or self.id)


def _rewrite(
    node: Any, events: Mapping[str, str], properties: Mapping[str, str], mapping: StageMapping
) -> Any:
    if isinstance(node, list):
        return [_rewrite(x, events, properties, mapping) for x in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _EVENT_KEYS and isinstance(value, str):
            role = mapping.role(value)
            out[key] = events.get(role, value) if role is not None else value
        elif key == "where" and isinstance(value, dict):
            out[key] = {
                properties.get(k, k): _rewrite(v, events, properties, mapping)
                for k, v in value.items()
            }
        else:
            out[key] = _rewrite(value, events, properties, mapping)
    return out


class _SolutionEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    expected_effect: str = Field(min_length=1)
    effort: Effort
    journey: str | None = None
    when: dict[str, str] = Field(default_factory=dict)
    when_segment_key: list[str] = Field(default_factory=list)


class _LibraryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    solutions: dict[str, _SolutionEntry]
    pain_points: dict[str, list[str]]


@dataclass(frozen=True)
class SolutionLibrary:
    """Solutions by id, and the solutions of each pain-point kind in order."""

    solutions: Mapping[str, Solution]
    by_kind: Mapping[str, tuple[str, ...]]

    def for_pain_point(
        self, kind: str, segment: Mapping[str, str] | None = None
    ) -> tuple[Solution, ...]:
        """The solutions for a pain point of ``kind`` in ``segment``, most useful first."""
        seg = segment or {}
        return tuple(
            s for sid in self.by_kind.get(kind, ()) if (s := self.solutions[sid]).applies_to(seg)
        )

    def with_journeys(self) -> tuple[Solution, ...]:
        return tuple(s for s in self.solutions.values() if s.journey is not None)


def parse_library(text: str, source: str = LIBRARY_FILE) -> SolutionLibrary:
    """A library file's text → :class:`SolutionLibrary`; :class:`InputError` when invalid."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", source=source) from None
    try:
        model = _LibraryFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise InputError(err["msg"], source=source, field=where) from None
    solutions = {
        sid: Solution(
            id=sid,
            title=e.title,
            description=" ".join(e.description.split()),
            expected_effect=" ".join(e.expected_effect.split()),
            effort=e.effort,
            journey=e.journey,
            when=dict(e.when),
            when_segment_key=tuple(e.when_segment_key),
        )
        for sid, e in model.solutions.items()
    }
    for kind, ids in model.pain_points.items():
        for sid in ids:
            if sid not in solutions:
                raise InputError(
                    f"unknown solution {sid!r}", source=source, field=f"pain_points.{kind}"
                )
    return SolutionLibrary(solutions, {k: tuple(v) for k, v in model.pain_points.items()})


@lru_cache(maxsize=1)
def load_library() -> SolutionLibrary:
    """The library shipped with Wayline."""
    text = resources.files(_PACKAGE).joinpath("solutions", LIBRARY_FILE).read_text("utf-8")
    return parse_library(text)
