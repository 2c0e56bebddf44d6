"""The numeric event frame → Arrow rows of ``EVENT_ARROW_SCHEMA``, with JSON text built vectorised.

Text that depends only on a product, an order, a customer or a (device, traffic source,
country) combination is built once per such thing, then gathered per row with ``take``; the
per-row JSON is concatenated with Arrow's ``binary_join_element_wise``. The frame is turned into
rows in chunks so that at most one chunk's temporary strings exist at a time.

The rows are what :func:`wayline.events.normalize.normalize` gives for the equivalent Segment
message (``person_id`` before identity resolution: the ``userId`` if the row has one, else the
``anonymousId``); a test checks this on samples.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from wayline.events.schema import EVENT_ARROW_SCHEMA
from wayline.events.simulator.behaviour import PAYMENT_METHODS, Customers, Orders
from wayline.events.simulator.catalogue import (
    CATEGORIES,
    COUNTRIES,
    CURRENCY,
    PAGES,
    PERSONAS,
    PLATFORMS,
    SHOP_URL,
    TRAFFIC,
    Catalogue,
    IntArray,
)
from wayline.events.simulator.timeline import (
    CODE,
    EVENT_KINDS,
    SUPPORT_TOPICS,
    SUPPORT_VIA,
    EventFrame,
)

SOURCE = "simulator"
CHUNK_ROWS = 500_000
SERVER_CONTEXT = '{"library":{"name":"shop-backend","version":"2.4.1"}}'
_LOCALES = {
    "DE": "de-DE",
    "FR": "fr-FR",
    "NL": "nl-NL",
    "ES": "es-ES",
    "IT": "it-IT",
    "BE": "nl-BE",
    "AT": "de-AT",
    "IE": "en-IE",
    "PT": "pt-PT",
    "FI": "fi-FI",
}
_FIRST_NAMES = (
    "anna",
    "ben",
    "clara",
    "david",
    "elena",
    "felix",
    "greta",
    "hugo",
    "ines",
    "jonas",
    "lea",
    "marco",
    "nora",
    "oscar",
    "paula",
    "quentin",
    "rosa",
    "sven",
    "tara",
    "yusuf",
)
_REFUND_REASONS = ("damaged", "not_as_described", "changed_mind")
_CHECKOUT_ERRORS = ("session_expired", "invalid_postcode")
_PAYMENT_ERRORS = ("card_declined", "gateway_timeout")
# A fixed bijection i → a 12-digit number, so anonymous ids look random but never collide.
_ANON_MODULUS = 10**12
_ANON_MULTIPLIER = 387_420_489  # 3**18: coprime to 10**12; i * it fits in int64
_ANON_OFFSET = 271_828_182_845


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _join(*parts: Any) -> pa.Array:
    """Concatenate strings and string arrays element-wise."""
    return pc.binary_join_element_wise(*parts, "")


def _text(values: Any) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def _money(cents: IntArray) -> pa.Array:
    """Cents as a JSON number with two decimals (exact: built from integers, never floats)."""
    cents = np.asarray(cents, dtype=np.int64)
    return _join(_text(cents // 100), ".", pc.utf8_lpad(_text(cents % 100), 2, "0"))


def _padded(prefix: str, numbers: IntArray, width: int = 7) -> pa.Array:
    return _join(prefix, pc.utf8_lpad(_text(numbers), width, "0"))


def _take(table: pa.Array, index: IntArray) -> pa.Array:
    return table.take(pa.array(np.asarray(index, dtype=np.int64)))


def anonymous_numbers(index: IntArray) -> IntArray:
    return np.asarray(
        (np.asarray(index, dtype=np.int64) * _ANON_MULTIPLIER + _ANON_OFFSET) % _ANON_MODULUS,
        dtype=np.int64,
    )


class Texts:
    """Text per product, order, customer and browser context, built once per store."""

    def __init__(self, catalogue: Catalogue, customers: Customers, orders: Orders) -> None:
        self.catalogue = catalogue
        n = len(customers.persona)
        idx = np.arange(n)
        self.user_id = _padded("cus_", idx + 1)
        self.customers = n
        # The first device's anonymous ids, then the second device's.
        self.anonymous_ids = _padded("anon-", anonymous_numbers(np.arange(2 * n)), 12)
        first = pa.array(_FIRST_NAMES).take(pa.array(idx % len(_FIRST_NAMES)))
        persona = pa.array([p.name for p in PERSONAS]).take(pa.array(customers.persona))
        country = pa.array([c for c, _ in COUNTRIES]).take(pa.array(customers.country))
        self.traits = _join(
            '{"email":"',
            first,
            ".",
            _text(idx + 1),
            '@example.com","first_name":"',
            pc.utf8_capitalize(first),
            '","persona":"',
            persona,
            '","country":"',
            country,
            '"}',
        )
        self.country = country
        # Products: their fields as a JSON fragment (no braces), and their page.
        fragments = []
        items = []
        for i in range(len(catalogue)):
            price = int(catalogue.price_cents[i])
            head = {
                "product_id": catalogue.product_id[i],
                "sku": catalogue.sku[i],
                "name": catalogue.name[i],
                "category": CATEGORIES[int(catalogue.category[i])][0],
            }
            money = f"{price // 100}.{price % 100:02d}"
            reviews = bool(catalogue.has_reviews[i])
            rating = f"{int(catalogue.rating_tenths[i]) / 10:.1f}" if reviews else "null"
            fragments.append(
                _dumps(head)[1:-1]
                + f',"price":{money},"currency":"{CURRENCY}"'
                + f',"has_reviews":{"true" if reviews else "false"}'
                + f',"review_count":{int(catalogue.review_count[i])},"rating":{rating}'
                + f',"description_length":{int(catalogue.description_length[i])}'
            )
            items.append("{" + _dumps(head)[1:-1] + f',"price":{money}')
        self.product_fragment = pa.array(fragments)
        # Pages: the static pages, then one per product.
        paths = [p for p, _ in PAGES] + [f"/products/{h}" for h in catalogue.handle]
        titles = [t for _, t in PAGES] + list(catalogue.name)
        self.page_path = pa.array(paths)
        self.page_properties = pa.array(
            [
                _dumps({"path": p, "url": SHOP_URL + p, "title": t})
                for p, t in zip(paths, titles, strict=True)
            ]
        )
        # Orders: ids, value, and the list of products.
        o = orders
        count = len(o)
        oidx = np.arange(count)
        self.order_id = _padded("ord_", oidx + 1)
        self.checkout_id = _padded("chk_", oidx + 1)
        self.order_value = _money(o.value_cents)
        item_text = _join(
            pa.array(items).take(pa.array(o.item_product)),
            ',"quantity":',
            _text(o.item_quantity),
            "}",
        )
        lists = pa.ListArray.from_arrays(pa.array(o.item_offsets.astype(np.int32)), item_text)
        self.order_products = _join("[", pc.binary_join(lists, ","), "]")
        self.payment_method = pa.array(PAYMENT_METHODS).take(pa.array(o.payment_method))
        self.orders = o
        # Browser contexts: one per (platform, traffic, country), without the closing brace.
        contexts = []
        for plat in PLATFORMS:
            for traffic in TRAFFIC:
                for country_code, _ in COUNTRIES:
                    ctx: dict[str, Any] = {
                        "userAgent": plat.user_agent,
                        "device": {"type": plat.device_type},
                        "os": {"name": plat.os},
                        "locale": _LOCALES[country_code],
                        "location": {"country": country_code},
                    }
                    campaign = {
                        k: v
                        for k, v in (
                            ("source", traffic.source),
                            ("medium", traffic.medium),
                            ("name", traffic.campaign),
                        )
                        if v is not None
                    }
                    if campaign:
                        ctx["campaign"] = campaign
                    if traffic.referrer:
                        ctx["page"] = {"referrer": traffic.referrer}
                    contexts.append(_dumps(ctx)[:-1])
        contexts.append(SERVER_CONTEXT[:-1])  # last: server-side rows
        self.context_prefix = pa.array(contexts)
        self.customer_country = customers.country


def _properties(texts: Texts, code: int, f: EventFrame) -> pa.Array:
    """The ``properties`` JSON of rows that all have event code ``code``."""
    n = len(f)
    name = EVENT_KINDS[code][0]
    order = np.maximum(f.order, 0)
    if name == "$page":
        return _take(texts.page_properties, _page_index(texts, f))
    if name == "$identify":
        return pa.array(["{}"] * n, pa.string())

    def ids() -> pa.Array:
        """``"checkout_id":"…","order_id":"…"`` of each row's order."""
        checkout_id = _take(texts.checkout_id, order)
        return _join(
            '"checkout_id":"', checkout_id, '","order_id":"', _take(texts.order_id, order), '"'
        )

    if name == "Product Viewed":
        return _join("{", _take(texts.product_fragment, f.product), "}")
    if name == "Product Added":
        return _join(
            "{",
            _take(texts.product_fragment, f.product),
            ',"quantity":',
            _text(f.aux),
            ',"cart_id":"cart_',
            _text(f.sess),
            '"}',
        )
    if name == "Cart Viewed":
        return _join('{"cart_id":"cart_', _text(f.sess), '"}')
    if name == "Checkout Started":
        return _join(
            "{",
            ids(),
            ',"value":',
            _take(texts.order_value, order),
            f',"currency":"{CURRENCY}","products":',
            _take(texts.order_products, order),
            "}",
        )
    if name == "Checkout Error":
        error = pa.array(_CHECKOUT_ERRORS).take(pa.array(f.aux))
        return _join("{", ids(), ',"step":"shipping","error":"', error, '"}')
    if name in ("Payment Info Entered", "Payment Failed"):
        method = _take(texts.payment_method, order)
        if name == "Payment Info Entered":
            return _join("{", ids(), ',"step":3,"payment_method":"', method, '"}')
        error = pa.array(_PAYMENT_ERRORS).take(pa.array(f.aux))
        return _join("{", ids(), ',"step":3,"payment_method":"', method, '","error":"', error, '"}')
    if name == "Order Completed":
        return _join(
            "{",
            ids(),
            ',"revenue":',
            _take(texts.order_value, order),
            f',"currency":"{CURRENCY}","payment_method":"',
            _take(texts.payment_method, order),
            '","products":',
            _take(texts.order_products, order),
            "}",
        )
    if name == "Support Contacted":
        topic = pa.array(SUPPORT_TOPICS).take(pa.array(f.aux // 3))
        via = pa.array(SUPPORT_VIA).take(pa.array(f.aux % 3))
        head = _join('{"topic":"', topic, '","via":"', via, '"')
        return pc.if_else(pa.array(f.order >= 0), _join(head, ",", ids(), "}"), _join(head, "}"))
    o = texts.orders
    if name == "Order Delivered":
        late = o.late[order]
        return _join(
            "{",
            ids(),
            ',"carrier":"DHL","delivery_days":',
            _text(o.delivery_days[order] + o.days_late[order]),
            ',"late":',
            pc.if_else(pa.array(late), "true", "false"),
            ',"days_late":',
            _text(o.days_late[order]),
            "}",
        )
    if name == "Order Refunded":
        reason = pa.array(_REFUND_REASONS).take(pa.array(o.refund_reason[order]))
        return _join(
            "{",
            ids(),
            ',"value":',
            _take(texts.order_value, order),
            f',"currency":"{CURRENCY}","reason":"',
            reason,
            '"}',
        )
    if name == "Product Reviewed":
        return _join(
            '{"product_id":"',
            pa.array(texts.catalogue.product_id).take(pa.array(f.product)),
            '","order_id":"',
            _take(texts.order_id, order),
            '","rating":',
            _text(o.review_rating[order]),
            "}",
        )
    constant = {
        "Email Opened": {"campaign_id": "weekly_picks", "email_subject": "New in this week"},
        "Email Link Clicked": {"campaign_id": "weekly_picks", "link_url": SHOP_URL + "/"},
        "WhatsApp Message Read": {"campaign_id": "back_in_stock", "template": "back_in_stock"},
        "WhatsApp Link Clicked": {"campaign_id": "back_in_stock", "link_url": SHOP_URL + "/"},
    }[name]
    return pa.array([_dumps(constant)] * n, pa.string())


def _page_index(texts: Texts, f: EventFrame) -> IntArray:
    return np.asarray(np.where(f.aux >= 0, f.aux, len(PAGES) + f.product), dtype=np.int64)


def _by_code(texts: Texts, f: EventFrame) -> pa.Array:
    """``properties`` for mixed rows: built per event code, then put back in row order."""
    parts = []
    for code in np.unique(f.code):
        rows = np.flatnonzero(f.code == code)
        parts.append((rows, _properties(texts, int(code), f.take(rows))))
    return _scatter(len(f), parts)


def _decimal_cents(cents: IntArray, valid: np.ndarray[Any, Any]) -> pa.Array:
    """Cents → DECIMAL(18, 2) without floats: the decimal's unscaled value *is* the cents."""
    n = len(cents)
    words = np.zeros((n, 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = np.where(cents < 0, -1, 0)  # sign extension to 128 bits
    validity = None if valid.all() else pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(pa.decimal128(18, 2), n, [validity, pa.py_buffer(words.tobytes())])


def _masked(values: IntArray, valid: np.ndarray[Any, Any]) -> pa.Array:
    """Indices for ``take``: null (so the result is null) where not ``valid``."""
    return pa.array(np.where(valid, values, 0).astype(np.int64), mask=~valid)


def _with_validity(strings: pa.Array, valid: np.ndarray[Any, Any]) -> pa.Array:
    """The same strings, null where not ``valid`` (no copy of the text)."""
    if valid.all():
        return strings
    buffers = strings.buffers()
    bitmap = pa.array(valid).buffers()[1]
    return pa.StringArray.from_buffers(len(strings), buffers[1], buffers[2], bitmap)


def _scatter(n: int, parts: list[tuple[IntArray, pa.Array]]) -> pa.Array:
    """A string array of ``n`` rows assembled from parts given with their row positions."""
    parts = [(rows, values) for rows, values in parts if len(rows)]
    combined = pa.concat_arrays([values.cast(pa.string()) for _, values in parts])
    inverse = np.argsort(np.concatenate([rows for rows, _ in parts]), kind="stable")
    assert len(inverse) == n
    return combined.take(pa.array(inverse))


def materialize_chunk(
    texts: Texts, f: EventFrame, workspace_id: str, prefix: str, first: int
) -> pa.Table:
    """Rows ``first…first+len(f)`` of the store as an Arrow table."""
    f = f.widen()
    n = len(f)
    names = pa.array([name for name, _ in EVENT_KINDS])
    types = pa.array([t for _, t in EVENT_KINDS])
    code = pa.array(f.code)
    user = texts.user_id.take(_masked(f.cust, f.ident.astype(bool)))
    anon = texts.anonymous_ids.take(_masked(f.cust + texts.customers * f.anon, f.anon >= 0))
    browser = f.platform >= 0
    plat = _masked(f.platform, browser)
    device = pa.array([p.device_type for p in PLATFORMS]).take(plat)
    os_name = pa.array([p.os for p in PLATFORMS]).take(plat)
    channels = pa.array([t.channel for t in TRAFFIC] + ["direct"])
    # Server-side rows have no campaign or referrer: what the tracking API calls "direct".
    channel = channels.take(pa.array(np.where(browser, f.traffic, len(TRAFFIC))))
    country_idx = texts.customer_country[f.cust]
    country = pa.array([c for c, _ in COUNTRIES]).take(_masked(country_idx, browser))
    in_session = f.sess >= 0
    session_text = _join("ses_", _text(np.maximum(f.sess, 0)))
    session_id = _with_validity(session_text, in_session)
    # Context = the (device, traffic, country) prefix, or the server's, then the visit's id.
    combo = np.where(
        browser,
        (f.platform * len(TRAFFIC) + f.traffic) * len(COUNTRIES) + country_idx,
        len(texts.context_prefix) - 1,
    )
    suffix = pc.if_else(
        pa.array(in_session), _join(',"sessionId":"', session_text, '"}'), pa.scalar("}")
    )
    context = _join(_take(texts.context_prefix, combo), suffix)
    is_page = f.code == CODE["$page"]
    page_path = texts.page_path.take(_masked(_page_index(texts, f), is_page))
    completed = f.code == CODE["Order Completed"]
    cents = texts.orders.value_cents[np.maximum(f.order, 0)] if len(texts.orders) else 0
    revenue = _decimal_cents(np.where(completed, cents, 0), completed)
    identify_rows = np.flatnonzero(f.code == CODE["$identify"])
    other_rows = np.flatnonzero(f.code != CODE["$identify"])
    traits = _scatter(
        n,
        [
            (identify_rows, _take(texts.traits, f.cust[identify_rows])),
            (other_rows, pa.repeat(pa.scalar("{}"), len(other_rows))),
        ],
    )
    columns = {
        "workspace_id": pa.repeat(pa.scalar(workspace_id), n),
        "message_id": _join(prefix, _text(np.arange(first, first + n))),
        "type": types.take(code),
        "event": names.take(code),
        "user_id": user,
        "anonymous_id": anon,
        "person_id": pc.coalesce(user, anon),
        "timestamp": pa.array(f.ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "received_at": pa.array(f.received, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
        "session_id": session_id,
        "device_type": device,
        "os": os_name,
        "channel": channel,
        "country": country,
        "page_path": page_path,
        "revenue": revenue,
        "currency": pa.array([CURRENCY]).take(_masked(np.zeros(n, np.int64), completed)),
        "properties": _by_code(texts, f),
        "traits": traits,
        "context": context,
        "source": pa.repeat(pa.scalar(SOURCE), n),
    }
    return pa.Table.from_pydict(
        {k: v.cast(EVENT_ARROW_SCHEMA.field(k).type) for k, v in columns.items()},
        schema=EVENT_ARROW_SCHEMA,
    )


def materialize_chunks(
    texts: Texts, frame: EventFrame, workspace_id: str, seed: int, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pa.Table]:
    """The frame as Arrow tables of at most ``chunk_rows`` rows, in order.

    Chunks are independent, and Arrow's kernels release the GIL: the next chunk is built on a
    second thread while the caller consumes this one (at most two chunks exist at a time).
    """
    prefix = f"sim-{seed}-"
    starts = range(0, len(frame), chunk_rows)

    def build(first: int) -> pa.Table:
        part = frame.slice(first, min(first + chunk_rows, len(frame)))
        return materialize_chunk(texts, part, workspace_id, prefix, first)

    with ThreadPoolExecutor(max_workers=2) as pool:
        pending: deque[Future[pa.Table]] = deque()
        for first in starts:
            pending.append(pool.submit(build, first))
            if len(pending) == 2:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def materialize(
    texts: Texts, frame: EventFrame, workspace_id: str, seed: int, chunk_rows: int = CHUNK_ROWS
) -> pa.Table:
    """The whole frame as one Arrow table (one record batch per chunk)."""
    batches = [
        batch
        for table in materialize_chunks(texts, frame, workspace_id, seed, chunk_rows)
        for batch in table.to_batches()
    ]
    return pa.Table.from_batches(batches, schema=EVENT_ARROW_SCHEMA)
