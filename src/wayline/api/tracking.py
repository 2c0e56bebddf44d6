"""The tracking API: Segment's HTTP Tracking API, so any Segment-compatible SDK can send here.

    POST /v1/track | identify | page | screen | alias | group     one message
    POST /v1/batch  (and /v1/import, its alias)                   {"batch": [...], "context": …}

The write key comes as the HTTP basic-auth user name (password empty), as Segment's SDKs send it,
or as ``writeKey`` in the body. Bodies may be gzip-compressed (``Content-Encoding: gzip``).

A request is all or nothing: every message is validated (with
:func:`wayline.events.normalize.validate`, where the event rules live) before any is stored, and
one bad message refuses the whole request with a 400 naming its index and field. Nothing is
half-stored. ``{"success": true}`` is answered only after the transaction holding the messages
has committed, so an acknowledged event is durable; a client that retries (it did not see the
answer) sends the same ``messageId`` again, and it is stored once (the request is kept whole in
the inbox, and the mover keeps the first copy of each ``messageId``; see
:mod:`wayline.storage.db`).

Limits, as Segment's: 32 KB per message and per single call, 500 KB per batch, measured on the
decompressed body; decompression stops at the limit, so a small gzip bomb cannot expand in memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import threading
import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from wayline.errors import AuthError, InputError, NotFound, PayloadTooLarge
from wayline.events.normalize import validate
from wayline.storage.db import Database, first_copies

MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
SINGLE_CALLS = ("track", "identify", "page", "screen", "alias", "group")
BATCH_CALLS = ("batch", "import")
#: The short paths Segment's browser client (analytics.js / analytics-next) posts to.
SHORT_CALLS = {
    "t": "track",
    "i": "identify",
    "p": "page",
    "s": "screen",
    "a": "alias",
    "g": "group",
    "b": "batch",
}

_OK = b'{"success":true}'
# Browsers post from the store's own site: the tracking API answers any origin (write keys are
# public by design; they only let one add events to a workspace).
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}

router = APIRouter(tags=["tracking"])


# -- the pure part: bytes in, validated messages out -----------------------------------------


def decompress(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """The request body, gunzipped if need be, refused past ``limit`` decompressed bytes."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        body = raw
    elif enc in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            # max_length bounds the output: a bomb stops expanding one byte past the limit.
            body = inflater.decompress(raw, limit + 1)
        except zlib.error as exc:
            raise InputError(f"body is not valid gzip: {exc}", field="Content-Encoding") from None
        if len(body) <= limit and not inflater.eof:
            raise InputError("gzip body is truncated", field="Content-Encoding")
    else:
        raise InputError(
            f"unsupported Content-Encoding {encoding!r}; send gzip or nothing",
            field="Content-Encoding",
        )
    if len(body) > limit:
        raise PayloadTooLarge(f"body is over the {limit // 1024} KB limit (decompressed)")
    return body


def write_key_of(authorization: str | None, doc: Mapping[str, Any]) -> str | None:
    """The write key: basic-auth user name, else the body's ``writeKey``."""
    if authorization and authorization[:6].lower() == "basic ":
        try:
            user = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError("malformed basic Authorization header") from None
        key = user.partition(":")[0]
        if key:
            return key
    body_key = doc.get("writeKey")
    return body_key if isinstance(body_key, str) and body_key else None


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InputError("the body must be a JSON object")
    return doc


def messages_of(call: str, doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The messages a request carries, each a fresh dict with its ``type`` set.

    In a batch, the top-level ``context`` is merged under each message's own (the message's
    keys win), as Segment does.
    """
    if call in SINGLE_CALLS:
        message = dict(doc)
        message.pop("writeKey", None)
        message["type"] = call  # the endpoint names the call, whatever the body says
        return [message]
    batch = doc.get("batch")
    if not isinstance(batch, list):
        raise InputError("a batch needs a 'batch' array of messages", field="batch")
    top_context = doc.get("context")
    messages = []
    for index, item in enumerate(batch):
        if not isinstance(item, dict):
            raise InputError("a message must be a JSON object", source="batch", row=index)
        # The parsed body is this request's own: its dicts are reused, not copied.
        message = item
        message.pop("writeKey", None)
        own = message.get("context")
        if isinstance(top_context, dict) and top_context and (own is None or isinstance(own, dict)):
            message["context"] = {**top_context, **(own or {})}
        messages.append(message)
    return messages


def derived_message_id(message: Mapping[str, Any]) -> str:
    """A ``messageId`` for a message sent without one: a hash of its content.

    Deterministic, so the retry of a body without ids is still stored once (two identical
    messages sent on purpose are, in turn, stored once too; SDKs always send ids).
    """
    digest = hashlib.sha256(orjson.dumps(message, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"wl-{digest[:32]}"


def prepare(
    messages: Sequence[dict[str, Any]],
    *,
    received_at: datetime,
    batch: bool,
    body_size: int,
) -> tuple[Sequence[str], bytes]:
    """Validate every message; return their distinct ``messageId``s and the messages (first
    copy of each id, same order) as one JSON array, or raise.

    Raises :class:`InputError` naming the message's index in the batch (``row``) and the field,
    before anything is stored. ``body_size`` is the decompressed body's: a message is no
    larger than the body that holds it (give or take its ``type`` or a derived ``messageId``),
    so messages are encoded one by one to be measured only when the body is over the
    per-message limit; otherwise the request is encoded in one call.
    """
    source = "batch" if batch else None
    ids = []
    for index, message in enumerate(messages):
        if message.get("messageId") in (None, ""):
            message["messageId"] = derived_message_id(message)
        try:
            validate(message, received_at=received_at)
        except InputError as exc:
            row = index if batch else None
            raise InputError(exc.message, source=source, row=row, field=exc.field) from None
        ids.append(str(message["messageId"]))
    distinct, firsts = first_copies(ids, messages)
    if body_size <= MAX_EVENT_BYTES:
        return distinct, orjson.dumps(firsts)
    payloads = [orjson.dumps(message) for message in messages]
    for index, payload in enumerate(payloads):
        if len(payload) > MAX_EVENT_BYTES:
            raise PayloadTooLarge(
                f"message is {len(payload)} bytes, over the {MAX_EVENT_BYTES // 1024} KB limit",
                source=source,
                row=index if batch else None,
            )
    if len(distinct) < len(ids):
        return distinct, orjson.dumps(firsts)
    return distinct, b"[" + b",".join(payloads) + b"]"


# -- the route: thin, I/O only ---------------------------------------------------------------


async def _read_capped(request: Request, limit: int) -> bytes:
    """The raw body, refused as soon as it exceeds ``limit`` (never read whole into memory)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is over the {limit // 1024} KB limit")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is over the {limit // 1024} KB limit")
        chunks.append(chunk)
    return b"".join(chunks)


class LoseResponses:
    """Test-only fault: answer 503 to every n-th request *after* committing it.

    That is what a client sees when the answer is lost on the way back: it retries a request
    already stored. Enabled by ``WAYLINE_TEST_LOSE_EVERY_NTH_RESPONSE``; off in production.
    """

    def __init__(self, every: int) -> None:
        self.every = every
        self._count = itertools.count(1)
        self._lock = threading.Lock()

    def lose_this_one(self) -> bool:
        with self._lock:
            return next(self._count) % self.every == 0


def read_request(
    call: str, raw: bytes, content_encoding: str | None, authorization: str | None
) -> tuple[str, dict[str, Any], int]:
    """Decode a request: ``(write key, JSON body, decompressed size)``; raises for a bad body
    or a missing key."""
    limit = MAX_BATCH_BYTES if call in BATCH_CALLS else MAX_EVENT_BYTES
    body = decompress(raw, content_encoding, limit)
    doc = parse_json(body)
    key = write_key_of(authorization, doc)
    if key is None:
        raise AuthError("missing write key: send it as the basic-auth user name or as 'writeKey'")
    return key, doc, len(body)


def ingest(
    db: Database,
    *,
    call: str,
    raw: bytes,
    content_encoding: str | None,
    authorization: str | None,
    received_at: datetime,
) -> int:
    """Decode, authenticate, validate and store one request; returns the stored count.

    The route does the same steps without blocking its event loop (see :func:`track`).
    """
    key, doc, size = read_request(call, raw, content_encoding, authorization)
    workspace_id = db.workspace_for_key(key)
    if workspace_id is None:
        raise AuthError("unknown or revoked write key")
    ids, payload = prepare(
        messages_of(call, doc), received_at=received_at, batch=call in BATCH_CALLS, body_size=size
    )
    return db.accept_encoded(workspace_id, ids, payload, received_at)


@router.post("/v1/{call}", summary="Segment-compatible tracking call or batch")
async def track(call: str, request: Request) -> Response:
    call = SHORT_CALLS.get(call, call)
    if call not in SINGLE_CALLS and call not in BATCH_CALLS:
        raise NotFound(f"no tracking call /v1/{call}")
    limit = MAX_BATCH_BYTES if call in BATCH_CALLS else MAX_EVENT_BYTES
    raw = await _read_capped(request, limit)
    state = request.app.state
    db: Database = state.db
    clock: Callable[[], datetime] = state.clock
    received_at = clock()
    # Decoding and validating is pure CPU work, done here on the event loop: a worker thread
    # would hold the GIL all the same, and the hop to it and back cost ~5 % of a request's CPU
    # (measured). Only I/O leaves the loop: a write key not yet cached is looked up in a
    # thread, and the commit is awaited, not waited for.
    key, doc, size = read_request(
        call, raw, request.headers.get("content-encoding"), request.headers.get("authorization")
    )
    workspace_id = db.cached_workspace_for_key(key)
    if workspace_id is None:
        workspace_id = await anyio.to_thread.run_sync(db.workspace_for_key, key)
        if workspace_id is None:
            raise AuthError("unknown or revoked write key")
    ids, payload = prepare(
        messages_of(call, doc), received_at=received_at, batch=call in BATCH_CALLS, body_size=size
    )
    await db.accept_encoded_async(workspace_id, ids, payload, received_at)
    faults: LoseResponses | None = state.lose_responses
    if faults is not None and faults.lose_this_one():
        return Response(b'{"success":false,"code":"test_fault","message":"lost"}', 503)
    return Response(_OK, media_type="application/json", headers=CORS_HEADERS)


@router.options("/v1/{call}", include_in_schema=False)
async def preflight(call: str) -> Response:
    """CORS preflight for browser SDKs (analytics.js posts from the shop's origin)."""
    return Response(status_code=204, headers=CORS_HEADERS)


def utcnow() -> datetime:
    return datetime.now(UTC)
