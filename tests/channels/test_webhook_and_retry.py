"""The store webhook over real HTTP on 127.0.0.1, and the retry policy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import orjson
import pytest
import uvicorn
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wayline.channels import (
    ChannelKind,
    InMemoryAttemptLog,
    OutboundMessage,
    Outcome,
    RetryPolicy,
    WebhookChannel,
    WebhookContent,
    WebhookSettings,
    send_with_retries,
)
from wayline.channels.webhook import SIGNATURE_HEADER, sign, verify
from wayline.errors import AuthError, InputError

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECRET = "whsec_test"


def message(url: str) -> OutboundMessage:
    return OutboundMessage(
        message_id="msg_1",
        workspace_id="ws",
        customer_id="cus_1",
        channel=ChannelKind.WEBHOOK,
        to=url,
        content=WebhookContent({"tag": "vip", "amount": Decimal("12.50")}),
        journey_id="jrn_1",
        step_id="tag",
    )


class Store:
    """A store's endpoint: checks our signature, fails the first ``fail`` requests with 503."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.seen: list[tuple[str, dict[str, object]]] = []
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            verify(body, request.headers.get(SIGNATURE_HEADER), secret=SECRET, now=NOW)
        except AuthError:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        self.seen.append((request.headers["idempotency-key"], orjson.loads(body)))
        if len(self.seen) <= self.fail:
            return Response(status_code=503, headers={"Retry-After": "0"})
        return JSONResponse({"ok": True})


async def serve_and(store: Store, fn):  # type: ignore[no-untyped-def]
    server = uvicorn.Server(
        uvicorn.Config(store.app, host="127.0.0.1", port=0, log_level="error", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        return await fn(f"http://127.0.0.1:{port}/hook")
    finally:
        server.should_exit = True
        await task


def test_webhook_is_signed_retried_with_backoff_and_delivered_once() -> None:
    store = Store(fail=2)
    log = InMemoryAttemptLog()
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async def go(url: str):  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient() as client:
            channel = WebhookChannel(
                WebhookSettings(SECRET), client=client, log=log, clock=lambda: NOW
            )
            policy = RetryPolicy(max_attempts=5, base=timedelta(seconds=1))
            return await send_with_retries(
                channel,
                message(url),
                idempotency_key="k-1",
                policy=policy,
                sleep=fake_sleep,
                rand=lambda: 1.0,
            )

    result = asyncio.run(serve_and(store, go))
    assert result.outcome is Outcome.DELIVERED
    assert [a.status_code for a in result.attempts] == [503, 503, 200]
    assert sleeps == [1.0, 2.0]
    assert {key for key, _ in store.seen} == {"k-1"}
    body = store.seen[0][1]
    assert body == {
        "id": "msg_1",
        "type": "journey.webhook",
        "workspace_id": "ws",
        "customer_id": "cus_1",
        "journey_id": "jrn_1",
        "step_id": "tag",
        "data": {"tag": "vip", "amount": "12.50"},
    }


def test_a_store_rejects_a_forged_or_stale_signature() -> None:
    body = b'{"id":"x"}'
    ts = int(NOW.timestamp())
    verify(body, sign(body, secret=SECRET, timestamp=ts), secret=SECRET, now=NOW)
    with pytest.raises(AuthError, match="does not match"):
        verify(body, sign(body, secret="guess", timestamp=ts), secret=SECRET, now=NOW)
    with pytest.raises(AuthError, match="does not match"):
        verify(b'{"id":"y"}', sign(body, secret=SECRET, timestamp=ts), secret=SECRET, now=NOW)
    with pytest.raises(AuthError, match="tolerance"):
        old = sign(body, secret=SECRET, timestamp=ts - 3600)
        verify(body, old, secret=SECRET, now=NOW)
    with pytest.raises(AuthError, match="malformed"):
        verify(body, "v1=abc", secret=SECRET, now=NOW)


def test_permanent_failures_stop_at_once_and_attempts_run_out() -> None:
    calls: list[int] = []

    def answer(status: int):  # type: ignore[no-untyped-def]
        def handler(request: httpx.Request) -> httpx.Response:
            calls.append(status)
            return httpx.Response(status)

        return handler

    async def go(status: int, key: str):  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer(status))) as client:
            channel = WebhookChannel(
                WebhookSettings(SECRET), client=client, log=InMemoryAttemptLog(), clock=lambda: NOW
            )

            async def no_sleep(_: float) -> None:
                return None

            return await send_with_retries(
                channel,
                message("https://store.example/hook"),
                idempotency_key=key,
                policy=RetryPolicy(max_attempts=3),
                sleep=no_sleep,
            )

    gone = asyncio.run(go(410, "a"))
    assert gone.outcome is Outcome.PERMANENT and len(gone.attempts) == 1
    down = asyncio.run(go(502, "b"))
    assert down.outcome is Outcome.RETRYABLE and len(down.attempts) == 3
    assert calls == [410, 502, 502, 502]


def test_only_http_urls_are_posted_to() -> None:
    async def go() -> None:
        async with httpx.AsyncClient() as client:
            channel = WebhookChannel(
                WebhookSettings(SECRET), client=client, log=InMemoryAttemptLog(), clock=lambda: NOW
            )
            await channel.send(message("file:///etc/passwd"), idempotency_key="k")

    with pytest.raises(InputError):
        asyncio.run(go())


@given(
    attempt=st.integers(1, 30),
    rand=st.floats(0, 1),
    retry_after=st.none() | st.floats(0, 10_000).map(lambda s: timedelta(seconds=s)),
)
def test_backoff_is_bounded_by_the_cap_and_honours_retry_after(
    attempt: int, rand: float, retry_after: timedelta | None
) -> None:
    policy = RetryPolicy(max_attempts=10, base=timedelta(seconds=2), cap=timedelta(minutes=10))
    wait = policy.delay(attempt, retry_after=retry_after, rand=rand)
    if attempt >= 10:
        assert wait is None
        return
    assert wait is not None
    assert timedelta(0) <= wait <= policy.cap
    if retry_after is not None:
        assert wait >= min(retry_after, policy.cap)
    # The bound grows with each attempt until the cap.
    upper, following = policy.delay(attempt, rand=1.0), policy.delay(attempt + 1, rand=1.0)
    assert upper is not None and (following is None or upper <= following)
