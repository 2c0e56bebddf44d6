"""When to try a retryable send again: exponential backoff with full jitter, capped.

The policy is pure — ``delay(attempt_number, retry_after, rand)`` — so the durable runtime can
turn it into a timer ("try again at now + delay") and survive a restart between attempts. For
short waits inside one process (the store webhook, a burst of 429s) :func:`send_with_retries`
runs the loop itself with an injected ``sleep``.

Full jitter (a random wait between 0 and the exponential bound) spreads retries from many
workers so they do not hit a recovering provider in lockstep. A provider's ``Retry-After`` is a
floor: waiting less than it asked only earns another 429.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from wayline.channels.base import Channel, OutboundMessage, Outcome, SendResult


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(minutes=10)
    multiplier: float = 2.0

    def delay(
        self,
        attempt_number: int,
        *,
        retry_after: timedelta | None = None,
        rand: float = 1.0,
    ) -> timedelta | None:
        """How long to wait after attempt ``attempt_number`` (1-based) failed retryably.

        ``None`` when no attempt is left. ``rand`` in [0, 1] is the jitter draw (1.0: no jitter,
        the upper bound), passed in so that the policy stays a pure function.
        """
        if attempt_number >= self.max_attempts:
            return None
        bound = min(
            self.cap.total_seconds(),
            self.base.total_seconds() * self.multiplier ** (attempt_number - 1),
        )
        wait = bound * min(max(rand, 0.0), 1.0)
        if retry_after is not None:
            wait = max(wait, min(retry_after.total_seconds(), self.cap.total_seconds()))
        return timedelta(seconds=wait)


async def send_with_retries(
    channel: Channel,
    message: OutboundMessage,
    *,
    idempotency_key: str,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rand: Callable[[], float] = random.random,
) -> SendResult:
    """Send, retrying retryable failures after the policy's backoff, in this process.

    Returns the last result: delivered, permanent, or retryable once attempts run out. Attempts
    already recorded under the key count against ``max_attempts``.
    """
    while True:
        result = await channel.send(message, idempotency_key=idempotency_key)
        if result.outcome is not Outcome.RETRYABLE:
            return result
        wait = policy.delay(len(result.attempts), retry_after=result.retry_after, rand=rand())
        if wait is None:
            return result
        await sleep(wait.total_seconds())
