"""Order exports (Shopify, WooCommerce) → order events and customer profiles, in SQL.

A store's order export has one row per line item; the order's own fields (totals, status,
customer) sit on its first row, and sometimes on every row. Each platform module says which of
its columns holds which *order field* (:class:`OrderColumns`); this module does the rest:

- every order (but a cancelled/voided/failed one) → one ``Order Completed`` event at the order's
  creation time, with the Segment e-commerce properties: ``order_id``, ``total``, ``subtotal``,
  ``shipping``, ``tax``, ``discount``, ``coupon``, ``currency``, ``status`` and ``products`` (the
  line items: ``name``, ``sku``, ``price``, ``quantity``); its revenue is the order total.
- a refund (a refunded amount, or a refunded status) → one ``Order Refunded`` event with
  ``total`` = the amount refunded and a *negative* revenue, so summing revenue nets refunds out.
  Exports carry no refund date: it is the cancellation (or modification) date when there is one,
  else the order's date.
- every customer → one ``$identify`` row (type ``identify``) whose traits (email, name,
  first_name, last_name, phone, country, accepts_marketing) come from their latest order, so
  they become profiles.

The customer is the lower-cased email (the key a store shares with its other tools), else the
phone; an order with neither is its own anonymous customer. Message ids are built from the
platform and the order number, so re-importing an export — or one that overlaps it — skips the
orders already stored.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from wayline.events.importers.base import (
    Built,
    Check,
    Context,
    blank_to_null,
    events_select,
    lit,
    money_check,
    q,
    text_timestamp_sql,
)


@dataclass(frozen=True)
class OrderColumns:
    """Which column of an export holds each order field (None: the export has no such column)."""

    order_id: str
    created: str
    total: str
    email: str | None = None
    phone: str | None = None
    customer_id: str | None = None
    full_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    country: str | None = None
    currency: str | None = None
    subtotal: str | None = None
    shipping: str | None = None
    tax: str | None = None
    discount_code: str | None = None
    discount_amount: str | None = None
    status: str | None = None
    refunded: str | None = None
    refunded_at: str | None = None
    cancelled_at: str | None = None
    accepts_marketing: str | None = None
    item_name: str | None = None
    item_sku: str | None = None
    item_quantity: str | None = None
    item_price: str | None = None


_MONEY = ("total", "subtotal", "shipping", "tax", "discount_amount", "refunded", "item_price")
_TIMES = ("created", "refunded_at", "cancelled_at")
# Order-level fields: the first non-empty value among an order's rows.
_ORDER_LEVEL = tuple(
    f.name
    for f in fields(OrderColumns)
    if f.name not in ("order_id", "item_name", "item_sku", "item_quantity", "item_price")
)


def _raw(cols: OrderColumns, name: str) -> str:
    column = getattr(cols, name)
    return blank_to_null(q(column)) if column else "NULL"


def order_checks(cols: OrderColumns) -> list[Check]:
    """What can be wrong with an export row, checked in this order on the first bad row."""
    checks = [
        Check(cols.order_id, "the order number is empty", f"{_raw(cols, 'order_id')} IS NULL")
    ]
    for name in ("created", "total"):
        column = getattr(cols, name)
        # Only the first row of an order must carry its order fields.
        checks.append(
            Check(
                column,
                f"the order has no {'date' if name == 'created' else 'total'}",
                f"NOT bool_or({_raw(cols, name)} IS NOT NULL) "
                f"OVER (PARTITION BY {_raw(cols, 'order_id')})",
            )
        )
    for name in _TIMES:
        column = getattr(cols, name)
        if column:
            raw = _raw(cols, name)
            checks.append(
                Check(
                    column,
                    "not a date-time (expected e.g. 2024-05-01 12:30:00 +0200)",
                    f"{raw} IS NOT NULL AND {text_timestamp_sql(raw)} IS NULL",
                    raw,
                )
            )
    for name in _MONEY:
        column = getattr(cols, name)
        if column:
            checks.append(money_check(column, q(column)))
    if cols.item_quantity:
        raw = _raw(cols, "item_quantity")
        checks.append(
            Check(
                cols.item_quantity,
                "not a whole quantity",
                f"{raw} IS NOT NULL AND TRY_CAST({raw} AS BIGINT) IS NULL",
                raw,
            )
        )
    return checks


def build_order_events(
    ctx: Context,
    platform: str,
    source: str,
    cols: OrderColumns,
    *,
    not_completed: tuple[str, ...],
) -> Built:
    """The events ``SELECT`` (orders, refunds, customers) of a staged order export.

    ``not_completed``: statuses (lower case) of orders that never completed (cancelled…).
    """
    line_fields = ",\n        ".join(
        f"{_raw(cols, f.name)} AS {f.name}" for f in fields(OrderColumns)
    )
    firsts = ",\n        ".join(
        f"arg_min({name}, _row) FILTER (WHERE {name} IS NOT NULL) AS {name}"
        for name in _ORDER_LEVEL
    )

    def money(name: str) -> str:
        return f"CAST({name} AS DECIMAL(18,2))"

    not_done = ", ".join(lit(s) for s in not_completed) or "NULL"
    prefix = lit(platform + ":")
    name_sql = "COALESCE(full_name, nullif(concat_ws(' ', first_name, last_name), ''))"
    customer = "COALESCE(lower(email), regexp_replace(phone, '[^0-9+]', '', 'g'))"
    with_sql = f"""
WITH lines AS (
    SELECT _row,
        {line_fields}
    FROM {source}
), orders AS (
    SELECT order_id, min(_row) AS _row,
        {firsts},
        list(struct_pack(
            name := item_name, sku := item_sku,
            price := {money("item_price")}, quantity := CAST(item_quantity AS BIGINT)
        ) ORDER BY _row) FILTER (WHERE item_name IS NOT NULL OR item_sku IS NOT NULL) AS products
    FROM lines GROUP BY order_id
), typed AS (
    SELECT *,
        {text_timestamp_sql("created")} AS ts,
        COALESCE({text_timestamp_sql("refunded_at")}, {text_timestamp_sql("cancelled_at")},
                 {text_timestamp_sql("created")}) AS refund_ts,
        lower(regexp_replace(COALESCE(status, ''), '^wc-', '')) AS state,
        {customer} AS customer,
        {money("total")} AS total_amount,
        upper(currency) AS cur,
        {name_sql} AS display_name
    FROM orders
), refunds AS (
    SELECT *, CASE
        WHEN {money("refunded")} > 0 THEN {money("refunded")}
        WHEN state IN ('refunded', 'fully_refunded') THEN total_amount
    END AS refund_amount
    FROM typed
), customers AS (
    SELECT customer, min(ts) AS since,
        arg_max(struct_pack(
            email := lower(email), name := display_name,
            first_name := COALESCE(first_name, nullif(split_part(full_name, ' ', 1), '')),
            last_name := COALESCE(last_name, nullif(
                trim(substr(full_name, length(split_part(full_name, ' ', 1)) + 1)), '')),
            phone := phone, country := country,
            accepts_marketing := CASE lower(accepts_marketing)
                WHEN 'yes' THEN true WHEN 'true' THEN true WHEN '1' THEN true
                WHEN 'no' THEN false WHEN 'false' THEN false WHEN '0' THEN false END
        ), (ts, _row)) AS traits,
        arg_max(order_id, (ts, _row)) AS last_order
    FROM typed WHERE customer IS NOT NULL GROUP BY customer
)"""
    who = {
        "user_id": "customer",
        "anonymous_id": f"CASE WHEN customer IS NULL THEN {prefix} || 'order:' || order_id END",
        "person_id": f"COALESCE(customer, {prefix} || 'order:' || order_id)",
    }
    base = ctx.common_columns()
    completed = events_select(
        base
        | who
        | {
            "message_id": f"{prefix} || 'order:' || order_id",
            "type": "'track'",
            "event": "'Order Completed'",
            "timestamp": "ts",
            "country": "country",
            "revenue": "total_amount",
            "currency": "cur",
            "properties": f"""json_merge_patch('{{}}', to_json(struct_pack(
                order_id := order_id, total := total_amount, subtotal := {money("subtotal")},
                shipping := {money("shipping")}, tax := {money("tax")},
                discount := {money("discount_amount")}, coupon := discount_code,
                currency := cur, status := nullif(state, ''), products := products)))""",
        },
        "typed",
        f"state NOT IN ({not_done}) AND cancelled_at IS NULL",
    )
    refunded = events_select(
        base
        | who
        | {
            "message_id": f"{prefix} || 'refund:' || order_id",
            "type": "'track'",
            "event": "'Order Refunded'",
            "timestamp": "refund_ts",
            "country": "country",
            "revenue": "-refund_amount",
            "currency": "cur",
            "properties": """json_merge_patch('{}', to_json(struct_pack(
                order_id := order_id, total := refund_amount, currency := cur)))""",
        },
        "refunds",
        "refund_amount > 0",
    )
    identified = events_select(
        base
        | {
            "message_id": f"{prefix} || 'identify:' || customer || ':' || last_order",
            "type": "'identify'",
            "event": "'$identify'",
            "user_id": "customer",
            "person_id": "customer",
            "timestamp": "since",
            "country": "traits.country",
            "properties": "'{}'",
            "traits": "json_merge_patch('{}', to_json(traits))",
        },
        "customers",
    )
    sql = f"{with_sql}\n{completed}\nUNION ALL\n{refunded}\nUNION ALL\n{identified}"
    return Built(sql, order_checks(cols), duplicates="skip")
