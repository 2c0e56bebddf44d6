"""One HTTP call to a provider, with transport failures turned into retryable outcomes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from wayline.channels.base import Outcome, ProviderResponse


async def call_provider(
    request: Callable[[], Awaitable[httpx.Response]],
    interpret: Callable[[httpx.Response], ProviderResponse],
) -> ProviderResponse:
    """Run ``request``; a timeout or a connection failure is retryable, else ``interpret`` it."""
    try:
        response = await request()
    except httpx.TimeoutException as exc:
        return ProviderResponse(Outcome.RETRYABLE, error_code="timeout", detail=repr(exc))
    except httpx.TransportError as exc:
        return ProviderResponse(Outcome.RETRYABLE, error_code="transport", detail=repr(exc))
    return interpret(response)


def json_or_empty(response: httpx.Response) -> dict[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
