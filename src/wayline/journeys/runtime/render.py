"""Rendering a send from the outbox: its template, the customer, the triggering event.

:class:`TemplateRenderer` is the deliverer's default :class:`~wayline.journeys.runtime.deliver.
Renderer`: it loads the step's template from the workspace's template library (built-in ones
plus ``<data folder>/templates/<workspace>``), renders it for the channel with
:func:`wayline.channels.compose` (unsubscribe link, click tracking, open pixel) and caches
templates per process for a short while. A template that is missing or fails to render raises an
:class:`~wayline.errors.InputError`; the deliverer records the send as failed with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from wayline.channels.base import ChannelKind, OutboundMessage
from wayline.channels.compose import compose
from wayline.channels.templates.library import TemplateLibrary
from wayline.channels.templates.render import Template
from wayline.channels.tracking import LinkSigner, MessageRef
from wayline.journeys.runtime.deliver import Profile
from wayline.journeys.runtime.recent import Recent


class TemplateRenderer:
    """Renders outbox sends with the template library (see the module docstring).

    Args:
        library: where templates come from: one library, or a function giving each
            workspace's (its own templates over the built-in ones). Templates are cached for
            ``cache_seconds``, so an edit in the dashboard reaches sends within that time.
        signer: signs tracking and unsubscribe links (the server's public URL and secret).
        store: what templates know of the store (``name``, ``url``…).
        track: rewrite links for click tracking and add the open pixel (email).
    """

    def __init__(
        self,
        library: TemplateLibrary | Callable[[str], TemplateLibrary],
        signer: LinkSigner,
        *,
        store: Mapping[str, Any] | None = None,
        track: bool = True,
        cache_seconds: float = 30.0,
    ) -> None:
        self._library = library
        self.signer = signer
        self.store = dict(store or {})
        self.track = track
        self._templates: Recent[tuple[str, str], Template] = Recent(self._load, cache_seconds)

    def _load(self, key: tuple[str, str]) -> Template:
        workspace_id, name = key
        lib = self._library
        library = lib if isinstance(lib, TemplateLibrary) else lib(workspace_id)
        return library.get(name)

    def render(
        self,
        send: Mapping[str, Any],
        *,
        workspace_id: str,
        profile: Profile,
        to: str,
        now: datetime,
    ) -> OutboundMessage:
        template = self._templates((workspace_id, str(send["template"])))
        trigger = send.get("trigger") or {}
        ref = MessageRef(
            message_id=str(send["message_id"]),
            workspace_id=workspace_id,
            customer_id=profile.person_id,
            channel=ChannelKind(str(send["channel"])),
            journey_id=str(send.get("journey_id")),
            step_id=str(send.get("step_id")),
        )
        variables = send.get("variables") or {}
        return compose(
            template,
            ref=ref,
            to=to,
            customer=profile.as_customer(),
            store=self.store,
            signer=self.signer,
            now=now,
            event={"event": trigger.get("event"), "properties": trigger.get("properties") or {}},
            journey={"id": send.get("journey_id")},
            params=variables,
            track=self.track,
        )
