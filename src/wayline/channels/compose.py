"""From a template and a customer to an :class:`OutboundMessage` ready for a channel.

What the journey runtime calls at a send step, before :meth:`Channel.send`: it renders the
template for the channel, and for email adds the signed one-click unsubscribe link (in the
footer and the ``List-Unsubscribe`` header), rewrites links through the click tracker and adds
the open pixel. Pure: ``now`` is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from wayline.channels.base import ChannelKind, EmailContent, OutboundMessage, TextContent
from wayline.channels.templates.render import Template
from wayline.channels.tracking import LinkSigner, MessageRef, track_html
from wayline.errors import InputError


def compose(
    template: Template,
    *,
    ref: MessageRef,
    to: str,
    customer: Mapping[str, Any],
    store: Mapping[str, Any],
    signer: LinkSigner,
    now: datetime,
    event: Mapping[str, Any] | None = None,
    journey: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    whatsapp_session: bool = False,
    track: bool = True,
) -> OutboundMessage:
    """Render ``template`` for ``ref.channel`` and wrap it as an outbound message.

    ``whatsapp_session``: inside the 24-hour customer-service window, send the template's free
    ``session_text`` instead of the approved template (when it has one).
    """
    channel = ref.channel
    unsubscribe = signer.unsubscribe_url(ref, now=now) if channel is ChannelKind.EMAIL else None
    context = template.context_for(
        customer=customer,
        store=store,
        channel=channel.value,
        code_secret=signer.secret,
        event=event,
        journey=journey,
        params=params,
        unsubscribe_url=unsubscribe,
    )
    content: EmailContent | TextContent | Any
    if channel is ChannelKind.EMAIL:
        email = template.render_email(context)
        html = email.html
        if track:
            html = track_html(html, signer=signer, ref=ref, now=now, skip=[unsubscribe or ""])
        # The text part keeps the plain (UTM-tagged) links: readable, still attributed to the
        # channel; only HTML clicks are counted as email_clicked.
        content = EmailContent(
            subject=email.subject, html=html, text=email.text, preheader=email.preheader
        )
    elif channel is ChannelKind.SMS:
        content = TextContent(template.render_sms(context))
    elif channel is ChannelKind.WHATSAPP:
        text = template.render_whatsapp_text(context) if whatsapp_session else None
        content = TextContent(text) if text else template.render_whatsapp(context)
    else:
        raise InputError(f"templates do not render for the {channel.value} channel")
    return OutboundMessage(
        message_id=ref.message_id,
        workspace_id=ref.workspace_id,
        customer_id=ref.customer_id,
        channel=channel,
        to=to,
        content=content,
        journey_id=ref.journey_id,
        step_id=ref.step_id,
        unsubscribe_url=unsubscribe,
    )
