"""The tracking API in-process: Segment's calls, auth, limits, and every kind of bad input."""

from __future__ import annotations

import asyncio
import base64
import gzip
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select

from wayline.api import create_app
from wayline.api.tracking import MAX_BATCH_BYTES, decompress, derived_message_id, messages_of
from wayline.config import Settings
from wayline.errors import PayloadTooLarge
from wayline.storage.db import Database
from wayline.storage.eventstore import EventStore
from wayline.storage.models import InboxRequest
from wayline.storage.mover import Mover

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


class Api:
    """A synchronous face on an in-process ASGI client (no server, no lifespan needed)."""

    def __init__(self, db: Database, key: str) -> None:
        self.db = db
        self.key = key
        self.app = create_app(Settings(), database=db, clock=lambda: NOW)

    def post(
        self, path: str, body: Any = None, *, raw: bytes | None = None, **kw: Any
    ) -> httpx.Response:
        headers = kw.pop("headers", None)
        if headers is None:
            headers = {"Authorization": _basic(self.key)}
        content = raw if raw is not None else orjson.dumps(body)

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.post(path, content=content, headers=headers, **kw)

        return asyncio.run(go())

    def stored(self) -> list[dict[str, Any]]:
        """The messages in the inbox, every copy received."""
        with self.db.read() as conn:
            payloads = conn.scalars(select(InboxRequest.payload).order_by(InboxRequest.id)).all()
        return [m for p in payloads if p for m in orjson.loads(p)]

    def moved_ids(self) -> list[str]:
        """The message ids in the event store once the inbox is moved (one copy each)."""
        with EventStore(Settings().resolved_analytics_path) as store:
            Mover(self.db, store).drain()
            rows = store.con.execute("SELECT message_id FROM events ORDER BY 1").fetchall()
        return [r[0] for r in rows]


def _basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, home: Path) -> Iterator[Api]:
    if request.param == "sqlite":
        db = Database.open(Settings())
    else:
        db = Database(request.getfixturevalue("postgres_url"))
    with db:
        _, key, _ = db.ensure_default_workspace()
        yield Api(db, key)


def _track(i: int, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Viewed", "userId": "u1", "messageId": f"m{i}", **extra}


@pytest.mark.parametrize("call", ["track", "identify", "page", "screen", "alias", "group"])
def test_single_calls(api: Api, call: str) -> None:
    body = {"userId": "u1", "messageId": f"x-{call}", "event": "Viewed", "previousId": "a"}
    r = api.post(f"/v1/{call}", body)
    assert r.status_code == 200 and r.json() == {"success": True}
    assert [m["type"] for m in api.stored()] == [call]


def test_batch_merges_top_level_context_under_each_message(api: Api) -> None:
    body = {
        "batch": [_track(1, context={"ip": "9.9.9.9"}), _track(2)],
        "context": {"ip": "1.1.1.1", "library": {"name": "x"}},
    }
    assert api.post("/v1/batch", body).json() == {"success": True}
    first, second = api.stored()
    assert first["context"] == {"ip": "9.9.9.9", "library": {"name": "x"}}
    assert second["context"] == {"ip": "1.1.1.1", "library": {"name": "x"}}


def test_import_is_batch(api: Api) -> None:
    assert api.post("/v1/import", {"batch": [_track(1)]}).status_code == 200
    assert len(api.stored()) == 1


def test_retry_is_stored_once(api: Api) -> None:
    body = {"batch": [_track(i) for i in range(10)]}
    assert api.post("/v1/batch", body).status_code == 200
    assert api.post("/v1/batch", body).status_code == 200
    assert len(api.stored()) == 20  # the inbox keeps what it received…
    assert api.moved_ids() == sorted(f"m{i}" for i in range(10))  # …analytics one copy


def test_a_message_repeated_in_one_batch_is_kept_once(api: Api) -> None:
    body = {"batch": [_track(1), _track(2), _track(1, event="Again")]}
    assert api.post("/v1/batch", body).status_code == 200
    assert [(m["messageId"], m["event"]) for m in api.stored()] == [
        ("m1", "Viewed"),
        ("m2", "Viewed"),
    ]


def test_missing_message_id_is_derived_deterministically(api: Api) -> None:
    body = {"batch": [{"type": "track", "event": "E", "userId": "u"}]}
    api.post("/v1/batch", body)
    api.post("/v1/batch", body)  # the same body again: a retry
    stored = api.stored()
    assert stored[0] == stored[1] and stored[0]["messageId"].startswith("wl-")
    assert api.moved_ids() == [stored[0]["messageId"]]
    assert derived_message_id({"a": 1, "b": 2}) == derived_message_id({"b": 2, "a": 1})


def test_write_key_in_body(api: Api) -> None:
    r = api.post("/v1/track", {**_track(1), "writeKey": api.key}, headers={})
    assert r.status_code == 200
    assert "writeKey" not in api.stored()[0]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": _basic("wk_nope")}, {"Authorization": "Basic !!!"}],
    ids=["missing", "unknown", "malformed"],
)
def test_bad_write_key_is_401(api: Api, headers: dict[str, str]) -> None:
    r = api.post("/v1/batch", {"batch": [_track(1)]}, headers=headers)
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized" and r.json()["success"] is False
    assert api.stored() == []


def test_malformed_json_is_400(api: Api) -> None:
    for raw in (b"{not json", b"[1, 2]", b""):
        r = api.post("/v1/batch", raw=raw)
        assert r.status_code == 400, raw
        assert r.json()["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"userId": None, "anonymousId": None}, "userId"),
        ({"timestamp": "yesterday-ish"}, "timestamp"),
        ({"event": ""}, "event"),
        ({"type": "purchase"}, "type"),
        ({"properties": [1, 2]}, "properties"),
        ({"properties": {"revenue": "lots"}}, "properties.revenue"),
    ],
)
def test_bad_message_refuses_the_whole_batch(api: Api, bad: dict[str, Any], field: str) -> None:
    batch = [_track(0), _track(1), {**_track(2), **bad}, _track(3)]
    r = api.post("/v1/batch", {"batch": batch})
    assert r.status_code == 400
    assert r.json()["index"] == 2 and r.json()["field"] == field
    assert api.stored() == []  # nothing half-stored


def test_batch_must_hold_an_array_of_objects(api: Api) -> None:
    assert api.post("/v1/batch", {"batch": {"a": 1}}).json()["field"] == "batch"
    r = api.post("/v1/batch", {"batch": [_track(1), "x"]})
    assert r.status_code == 400 and r.json()["index"] == 1


def test_oversize_event_in_batch_names_its_index(api: Api) -> None:
    big = _track(1, properties={"blob": "x" * 33_000})
    r = api.post("/v1/batch", {"batch": [_track(0), big]})
    assert r.status_code == 400
    assert r.json()["code"] == "payload_too_large" and r.json()["index"] == 1
    assert api.stored() == []


def test_oversize_single_call_and_batch(api: Api) -> None:
    r = api.post("/v1/track", _track(1, properties={"blob": "x" * 33_000}))
    assert r.status_code == 400 and r.json()["code"] == "payload_too_large"
    many = [_track(i, properties={"blob": "x" * 20_000}) for i in range(30)]  # ~600 KB
    r = api.post("/v1/batch", {"batch": many})
    assert r.status_code == 400 and r.json()["code"] == "payload_too_large"
    assert api.stored() == []


def test_gzip_body(api: Api) -> None:
    raw = gzip.compress(orjson.dumps({"batch": [_track(i) for i in range(3)]}))
    headers = {"Authorization": _basic(api.key), "Content-Encoding": "gzip"}
    assert api.post("/v1/batch", raw=raw, headers=headers).status_code == 200
    assert len(api.stored()) == 3


def test_gzip_bomb_is_refused_without_inflating_it(api: Api) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * 20_000_000 + b"]}", compresslevel=9)
    assert len(bomb) < 100_000  # small on the wire, 20 MB inflated
    headers = {"Authorization": _basic(api.key), "Content-Encoding": "gzip"}
    r = api.post("/v1/batch", raw=bomb, headers=headers)
    assert r.status_code == 400 and r.json()["code"] == "payload_too_large"


def test_decompress_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"a" * 50_000_000)
    with pytest.raises(PayloadTooLarge):
        decompress(bomb, "gzip", MAX_BATCH_BYTES)
    assert decompress(gzip.compress(b"{}"), "gzip", 10) == b"{}"
    with pytest.raises(Exception, match="gzip"):
        decompress(b"not gzip at all", "gzip", 100)
    with pytest.raises(Exception, match="truncated"):
        decompress(gzip.compress(b"x" * 1000)[:20], "gzip", 10_000)
    with pytest.raises(Exception, match="Content-Encoding"):
        decompress(zlib.compress(b"{}"), "br", 100)


def test_unknown_call_is_404(api: Api) -> None:
    assert api.post("/v1/purchase", _track(1)).status_code == 404


def test_messages_of_sets_the_type_from_the_endpoint() -> None:
    assert messages_of("page", {"type": "track", "writeKey": "k"}) == [{"type": "page"}]


def test_browsers_may_call_from_any_origin(api: Api) -> None:
    r = api.post("/v1/track", _track(1))
    assert r.headers["access-control-allow-origin"] == "*"
    assert api.post("/v1/track", {}, headers={}).headers["access-control-allow-origin"] == "*"

    async def preflight() -> httpx.Response:
        transport = httpx.ASGITransport(app=api.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.options("/v1/batch")

    r = asyncio.run(preflight())
    assert r.status_code == 204 and "POST" in r.headers["access-control-allow-methods"]
