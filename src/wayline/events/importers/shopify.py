"""Shopify's admin "Export orders" CSV → orders, refunds and customers.

The export (Orders → Export, "Plain CSV file") has one row per line item. Its header, as Shopify
writes it: ``Name`` (the order number, ``#1001``), ``Email``, ``Financial Status``, ``Paid at``,
``Fulfillment Status``, ``Fulfilled at``, ``Accepts Marketing``, ``Currency``, ``Subtotal``,
``Shipping``, ``Taxes``, ``Total``, ``Discount Code``, ``Discount Amount``, ``Shipping Method``,
``Created at``, ``Lineitem quantity``, ``Lineitem name``, ``Lineitem price``,
``Lineitem compare at price``, ``Lineitem sku``, …, ``Billing Name``, ``Billing Street``, …,
``Billing Country``, ``Billing Phone``, ``Shipping Name``, …, ``Notes``, ``Note Attributes``,
``Cancelled at``, ``Payment Method``, ``Payment Reference``, ``Refunded Amount``, ``Vendor``,
``Outstanding Balance``, ``Employee``, ``Location``, ``Device ID``, ``Id``, ``Tags``,
``Risk Level``, ``Source``, ``Lineitem discount``, ``Tax 1 Name``, ``Tax 1 Value``, …, ``Phone``,
``Receipt Number``, … Order-level fields are filled on the first row of an order only; times look
like ``2024-05-01 10:15:32 -0400``. What becomes of it: :mod:`wayline.events.importers.orders`.
"""

from __future__ import annotations

from wayline.errors import InputError
from wayline.events.importers.base import Context, Plan, columns_found
from wayline.events.importers.orders import OrderColumns, build_order_events
from wayline.events.importers.tabular import (
    csv_header,
    csv_row_of,
    read_csv_sql,
    sniff_delimiter,
)

#: Columns that only a Shopify order export has together (used to detect the format).
SHOPIFY_SIGNATURE = frozenset({"Name", "Financial Status", "Lineitem name"})

# Order field → Shopify's column names, the preferred first.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "order_id": ("Name",),
    "created": ("Created at",),
    "total": ("Total",),
    "email": ("Email",),
    "phone": ("Phone", "Billing Phone", "Shipping Phone"),
    "full_name": ("Billing Name", "Shipping Name"),
    "country": ("Billing Country", "Shipping Country"),
    "currency": ("Currency",),
    "subtotal": ("Subtotal",),
    "shipping": ("Shipping",),
    "tax": ("Taxes",),
    "discount_code": ("Discount Code",),
    "discount_amount": ("Discount Amount",),
    "status": ("Financial Status",),
    "refunded": ("Refunded Amount",),
    "cancelled_at": ("Cancelled at",),
    "accepts_marketing": ("Accepts Marketing", "Accepts Email Marketing"),
    "item_name": ("Lineitem name",),
    "item_sku": ("Lineitem sku",),
    "item_quantity": ("Lineitem quantity",),
    "item_price": ("Lineitem price",),
}
_REQUIRED = ("order_id", "created", "total")


def match_columns(
    header: list[str], wanted: dict[str, tuple[str, ...]], *, file: str, platform: str
) -> dict[str, str]:
    """Order field → the header's column (names compared ignoring case), requiring the keys."""
    by_lower = {h.lower(): h for h in header}
    chosen: dict[str, str] = {}
    for field_name, names in wanted.items():
        for name in names:
            if name.lower() in by_lower:
                chosen[field_name] = by_lower[name.lower()]
                break
    for field_name in _REQUIRED:
        if field_name not in chosen:
            expected = " or ".join(repr(n) for n in wanted[field_name])
            raise InputError(
                f"not a {platform} order export: no {expected} column; "
                f"columns found: {columns_found(header)}",
                source=file,
                row=1,
                field=wanted[field_name][0],
            )
    return chosen


def plan_shopify(ctx: Context) -> Plan:
    delimiter = sniff_delimiter(ctx)
    header = csv_header(ctx, delimiter)
    chosen = match_columns(header, _COLUMNS, file=ctx.file, platform="Shopify")
    cols = OrderColumns(**chosen)
    stage = "CREATE OR REPLACE TEMP TABLE _wl_raw AS SELECT * FROM " + read_csv_sql(
        ctx, header, delimiter
    )
    source = "(SELECT rowid + 2 AS _row, * FROM _wl_raw) AS s"
    return Plan(
        format="shopify",
        stage=[("reading Shopify orders", stage)],
        source=source,
        build=lambda con: build_order_events(
            ctx, "shopify", source, cols, not_completed=("voided",)
        ),
        temp_tables=["_wl_raw"],
        user_row=csv_row_of(ctx, delimiter),
    )
