"""The event row: the one shape every source of events is turned into.

Every entry point (the tracking API, the importers, the sample-store simulator) produces rows of
this shape, and every analytic reads them. It follows the Segment spec — ``type``, ``event``,
``userId``/``anonymousId``, ``properties``, ``traits``, ``context``, ``timestamp``, ``messageId`` —
and adds columns lifted out of the JSON so the analytics need not parse it on every query:

- ``event`` is the track event's name; for the other call types it is ``$page``, ``$screen``,
  ``$identify``, ``$alias`` or ``$group``, so that every row has a name a funnel or path can use.
- ``person_id`` is the resolved customer (see :mod:`wayline.events.identity`): the ``userId`` the
  visitor is linked to, else the ``anonymousId``. It is rewritten when identities merge.
- ``device_type``, ``os``, ``channel``, ``country``, ``page_path`` come from ``context``;
  ``revenue``/``currency`` from ``properties`` (Segment e-commerce spec: ``revenue`` or ``total``).
- Times are UTC. Money is DECIMAL(18, 2), never float.
"""

from __future__ import annotations

import pyarrow as pa

EVENT_TYPES = ("track", "identify", "page", "screen", "alias", "group")

#: Column name → DuckDB type, in table order.
EVENT_COLUMNS: dict[str, str] = {
    "workspace_id": "VARCHAR NOT NULL",
    "message_id": "VARCHAR NOT NULL",
    "type": "VARCHAR NOT NULL",
    "event": "VARCHAR NOT NULL",
    "user_id": "VARCHAR",
    "anonymous_id": "VARCHAR",
    "person_id": "VARCHAR NOT NULL",
    "timestamp": "TIMESTAMPTZ NOT NULL",
    "received_at": "TIMESTAMPTZ NOT NULL",
    "session_id": "VARCHAR",
    "device_type": "VARCHAR",
    "os": "VARCHAR",
    "channel": "VARCHAR",
    "country": "VARCHAR",
    "page_path": "VARCHAR",
    "revenue": "DECIMAL(18,2)",
    "currency": "VARCHAR",
    "properties": "JSON",
    "traits": "JSON",
    "context": "JSON",
    "source": "VARCHAR NOT NULL",
}

#: The JSON columns (``properties``, ``traits``, ``context``), in table order.
JSON_COLUMNS = tuple(name for name, sql_type in EVENT_COLUMNS.items() if sql_type == "JSON")

#: The same columns as an Arrow schema, for bulk loads (importers, simulator). JSON columns are
#: JSON text in Arrow.
EVENT_ARROW_SCHEMA = pa.schema(
    [
        pa.field("workspace_id", pa.string(), nullable=False),
        pa.field("message_id", pa.string(), nullable=False),
        pa.field("type", pa.string(), nullable=False),
        pa.field("event", pa.string(), nullable=False),
        pa.field("user_id", pa.string()),
        pa.field("anonymous_id", pa.string()),
        pa.field("person_id", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("session_id", pa.string()),
        pa.field("device_type", pa.string()),
        pa.field("os", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("country", pa.string()),
        pa.field("page_path", pa.string()),
        pa.field("revenue", pa.decimal128(18, 2)),
        pa.field("currency", pa.string()),
        pa.field("properties", pa.string()),
        pa.field("traits", pa.string()),
        pa.field("context", pa.string()),
        pa.field("source", pa.string(), nullable=False),
    ]
)

#: Names given to the non-track call types in the ``event`` column.
CALL_EVENT_NAMES = {
    "page": "$page",
    "screen": "$screen",
    "identify": "$identify",
    "alias": "$alias",
    "group": "$group",
}

DEVICE_TYPES = ("mobile", "tablet", "desktop")
CHANNELS = ("ads", "search", "social", "email", "whatsapp", "sms", "referral", "direct")
