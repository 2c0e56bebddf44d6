"""WooCommerce order export CSV → orders, refunds and customers.

WooCommerce exports orders through an extension, and the common ones name their columns
differently; the names of the built-in-style and popular exports are all recognised (compared
ignoring case): "Customer / Order / Coupon Export" (``Order ID``, ``Order Number``,
``Order Date``, ``Order Status``, ``Billing Email``, ``Billing First Name``, ``Billing Last Name``,
``Billing Country``, ``Order Total``, ``Order Currency``, ``Item Name``, ``Item SKU``,
``Item Quantity``, ``Item Total``…), "Advanced Order Export" (``Order Total Amount``,
``Customer Email``, ``Quantity``, ``Item Cost``, ``SKU``…) and the import/export suite's snake
case keys (``order_id``, ``order_date``, ``status``, ``customer_email``, ``billing_first_name``,
``order_total``, ``order_currency``…). One row per line item, order fields repeated or on the
first row only. Statuses may carry WooCommerce's ``wc-`` prefix. What becomes of it:
:mod:`wayline.events.importers.orders`.
"""

from __future__ import annotations

from wayline.events.importers.base import Context, Plan
from wayline.events.importers.orders import OrderColumns, build_order_events
from wayline.events.importers.shopify import match_columns
from wayline.events.importers.tabular import (
    csv_header,
    csv_row_of,
    read_csv_sql,
    sniff_delimiter,
)

# Order field → the column names the common WooCommerce exports use, the preferred first.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "order_id": ("Order Number", "Order ID", "order_number", "order_id", "Order #", "Order No"),
    "created": ("Order Date", "order_date", "Date Created", "date_created", "Date"),
    "total": ("Order Total", "Order Total Amount", "order_total", "Total"),
    "email": ("Billing Email", "Customer Email", "billing_email", "customer_email", "Email"),
    "phone": ("Billing Phone", "billing_phone", "Phone"),
    "customer_id": ("Customer ID", "customer_id", "Customer User ID", "customer_user"),
    "first_name": ("Billing First Name", "billing_first_name", "First Name (Billing)"),
    "last_name": ("Billing Last Name", "billing_last_name", "Last Name (Billing)"),
    "country": ("Billing Country", "billing_country", "Country Code (Billing)"),
    "currency": ("Order Currency", "order_currency", "Currency"),
    "subtotal": ("Order Subtotal", "Order Subtotal Amount", "order_subtotal", "Subtotal"),
    "shipping": ("Shipping Total", "Order Shipping Amount", "shipping_total", "Shipping"),
    "tax": ("Tax Total", "Order Total Tax Amount", "tax_total", "Order Tax", "Tax"),
    "discount_code": ("Coupon Code", "Coupons", "Coupon", "coupon_code", "coupon_items"),
    "discount_amount": ("Discount Total", "Cart Discount Amount", "discount_total", "Discount"),
    "status": ("Order Status", "status", "Status"),
    "refunded": ("Refund Amount", "Order Refund Amount", "Refunded", "refunded_total"),
    "refunded_at": ("Refund Date", "Date of Refund", "refund_date"),
    "cancelled_at": ("Cancelled Date", "date_cancelled"),
    "item_name": ("Item Name", "Product Name", "item_name", "Item"),
    "item_sku": ("SKU", "Item SKU", "item_sku"),
    "item_quantity": ("Quantity", "Item Quantity", "item_quantity", "Qty"),
    "item_price": ("Item Cost", "Item Price", "item_cost", "item_price", "Price"),
}

# Orders that never completed: unpaid, failed, cancelled, or not real orders yet.
_NOT_COMPLETED = ("pending", "failed", "cancelled", "checkout-draft", "draft", "trash")


def is_woocommerce_header(header: list[str]) -> bool:
    """Whether a CSV header looks like a WooCommerce order export."""
    lower = {h.lower() for h in header}

    def has(field_name: str) -> bool:
        return any(n.lower() in lower for n in _COLUMNS[field_name])

    return (
        any(n in lower for n in ("order id", "order number", "order_id", "order_number"))
        and has("created")
        and has("total")
    )


def plan_woocommerce(ctx: Context) -> Plan:
    delimiter = sniff_delimiter(ctx)
    header = csv_header(ctx, delimiter)
    chosen = match_columns(header, _COLUMNS, file=ctx.file, platform="WooCommerce")
    cols = OrderColumns(**chosen)
    stage = "CREATE OR REPLACE TEMP TABLE _wl_raw AS SELECT * FROM " + read_csv_sql(
        ctx, header, delimiter
    )
    source = "(SELECT rowid + 2 AS _row, * FROM _wl_raw) AS s"
    return Plan(
        format="woocommerce",
        stage=[("reading WooCommerce orders", stage)],
        source=source,
        build=lambda con: build_order_events(
            ctx, "woocommerce", source, cols, not_completed=_NOT_COMPLETED
        ),
        temp_tables=["_wl_raw"],
        user_row=csv_row_of(ctx, delimiter),
    )
