"""The durable journey runtime: journeys live in the operational store (SQLite or PostgreSQL).

    catalog   drafts, immutable published versions, pause/archive, per-step stats
    advance   claim events and due timers → pure engine → one commit (state, timers, outbox,
              step records)
    deliver   the outbox: send-time policies, rendering, a channel call per idempotency key
    channels  the channel registry, the ``log`` channel, a deduplicating recorder for tests
    service   one runtime process: the loop ``wayline serve`` and ``wayline worker`` run
    collector the garbage collector set for a process that runs for hours

See ``docs/journeys-runtime.md`` for the guarantees (exactly-once delivery across crashes) and
how the work is shared between processes.
"""

from wayline.journeys.runtime.advance import Advancer, EventHistory, event_of
from wayline.journeys.runtime.catalog import JourneyCatalog, JourneySummary, read_document
from wayline.journeys.runtime.channels import ChannelRegistry, LogChannel, RecordingChannel
from wayline.journeys.runtime.deliver import Deliverer, Profile, Renderer
from wayline.journeys.runtime.service import JourneyRuntime, RoundResult

__all__ = [
    "Advancer",
    "ChannelRegistry",
    "Deliverer",
    "EventHistory",
    "JourneyCatalog",
    "JourneyRuntime",
    "JourneySummary",
    "LogChannel",
    "Profile",
    "RecordingChannel",
    "Renderer",
    "RoundResult",
    "event_of",
    "read_document",
]
