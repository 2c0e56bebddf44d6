"""Each workspace's own providers and sending rules, as set in the dashboard or the REST API.

:class:`WorkspacePolicies` gives the deliverer a workspace's send-time policy from its stored
sending settings (quiet hours, frequency cap), ``None`` when it never set them.

:class:`WorkspaceProviders` is the :class:`~wayline.journeys.runtime.channels.ChannelRegistry`'s
resolver: for a (workspace, channel) with stored settings (``storage.channel_config``) it gives
a :class:`ConfiguredChannel`; without, ``None`` and the registry falls back to the log channel.
Settings are re-read after ``ttl`` seconds, so a change in the dashboard reaches sends soon.

The deliverer sends each batch inside its own ``asyncio.run()``; an ``httpx.AsyncClient`` is
bound to the loop it first ran in, so the client is made per send, inside the running loop.
The outbox row is the durable record of attempts (its ``attempts`` and ``outcome``), so each
send's attempt log only has to live as long as the send.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from wayline.channels.base import ChannelKind, InMemoryAttemptLog, OutboundMessage, SendResult
from wayline.channels.config import ProviderSettings
from wayline.channels.email import EmailChannel, SmtpSettings
from wayline.channels.sms import SmsChannel, TwilioSettings
from wayline.channels.whatsapp import WhatsAppChannel, WhatsAppSettings
from wayline.errors import WaylineError
from wayline.journeys.policies import SendPolicy, policy_from_settings
from wayline.journeys.runtime.recent import Recent
from wayline.storage.channel_config import ChannelConfigStore
from wayline.storage.db import Database
from wayline.storage.workspace_settings import stored_sending

_KINDS: dict[type, ChannelKind] = {
    SmtpSettings: ChannelKind.EMAIL,
    WhatsAppSettings: ChannelKind.WHATSAPP,
    TwilioSettings: ChannelKind.SMS,
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ConfiguredChannel:
    """One workspace's provider for one channel (see the module docstring)."""

    def __init__(
        self, settings: ProviderSettings, *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.kind = _KINDS[type(settings)]

    async def send(self, message: OutboundMessage, *, idempotency_key: str) -> SendResult:
        log = InMemoryAttemptLog()
        s = self.settings
        if isinstance(s, SmtpSettings):
            return await EmailChannel(s, log=log, clock=self.clock).send(
                message, idempotency_key=idempotency_key
            )
        async with httpx.AsyncClient() as client:
            if isinstance(s, WhatsAppSettings):
                whatsapp = WhatsAppChannel(s, client=client, log=log, clock=self.clock)
                return await whatsapp.send(message, idempotency_key=idempotency_key)
            assert isinstance(s, TwilioSettings)
            sms = SmsChannel(s, client=client, log=log, clock=self.clock)
            return await sms.send(message, idempotency_key=idempotency_key)


class WorkspaceProviders:
    """Resolves (workspace, channel) to the workspace's configured provider, or ``None``."""

    def __init__(
        self,
        store: ChannelConfigStore,
        *,
        ttl: float = 30.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.clock = clock
        self._recent: Recent[tuple[str, str], ConfiguredChannel | None] = Recent(self._load, ttl)

    def __call__(self, workspace_id: str, channel: str) -> ConfiguredChannel | None:
        return self._recent((workspace_id, channel))

    def _load(self, key: tuple[str, str]) -> ConfiguredChannel | None:
        try:
            settings = self.store.settings(*key)
        except WaylineError:
            # Unreadable settings (a changed secret key, a channel Wayline does not configure
            # such as ``webhook``): the message goes to the log channel, never lost.
            return None
        return ConfiguredChannel(settings, clock=self.clock) if settings else None


class WorkspacePolicies:
    """A workspace's sending rules (``workspace_settings.sending``), re-read after ``ttl`` s."""

    def __init__(self, db: Database, *, ttl: float = 30.0) -> None:
        self.db = db
        self._recent: Recent[str, SendPolicy | None] = Recent(self._load, ttl)

    def __call__(self, workspace_id: str) -> SendPolicy | None:
        return self._recent(workspace_id)

    def _load(self, workspace_id: str) -> SendPolicy | None:
        stored = stored_sending(self.db, workspace_id)
        return policy_from_settings(stored) if stored else None
