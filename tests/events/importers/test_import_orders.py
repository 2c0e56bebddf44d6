"""Shopify and WooCommerce order exports → orders, refunds and customer profiles."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from importer_support import DATA, EVENT_VIEW, NOW, rows

from wayline.errors import InputError
from wayline.events.importers import detect_format, import_file
from wayline.storage.eventstore import EventStore

SHOPIFY = DATA / "shopify_orders.csv"
WOO = DATA / "woocommerce_orders.csv"


def by_id(store: EventStore) -> dict[str, dict[str, object]]:
    return {str(r["message_id"]): r for r in rows(store, EVENT_VIEW)}


def test_formats_are_detected() -> None:
    assert detect_format(SHOPIFY) == "shopify"
    assert detect_format(WOO) == "woocommerce"


def test_shopify_orders_refunds_and_customers(store: EventStore) -> None:
    result = import_file(store, SHOPIFY, now=NOW)
    assert result.rows_read == 6
    assert result.events_by_name == {"Order Completed": 3, "Order Refunded": 2, "$identify": 3}
    ev = by_id(store)
    first = ev["shopify:order:#1001"]
    assert first["user_id"] == "anna.meyer@example.com"  # the email, lower-cased
    assert first["ts"] == "2024-03-04T08:12:40.000000"  # "+0100" → UTC
    assert (first["revenue"], first["currency"], first["country"]) == (
        Decimal("58.90"),
        "EUR",
        "DE",
    )
    props = json.loads(str(first["properties"]))
    assert props["coupon"] == "SPRING10" and props["discount"] == 6.0 and props["total"] == 58.9
    assert props["products"] == [
        {"name": "Ceramic Mug - Sand", "sku": "MUG-SAND", "price": 18.0, "quantity": 2},
        {"name": "Linen Napkins (Set of 4)", "sku": "NAP-LIN-4", "price": 24.0, "quantity": 1},
    ]
    # A full refund and a partial one; revenue is negative so sums net refunds out.
    assert ev["shopify:refund:#1002"]["revenue"] == Decimal("-36.90")
    assert ev["shopify:refund:#1003"]["revenue"] == Decimal("-18.00")
    assert json.loads(str(ev["shopify:refund:#1003"]["properties"]))["total"] == 18.0
    # The voided order is no completed order, but its customer (phone only) is a profile.
    assert "shopify:order:#1004" not in ev
    anna = ev["shopify:identify:anna.meyer@example.com:#1003"]
    assert anna["type"] == "identify" and anna["event"] == "$identify"
    assert anna["ts"] == "2024-03-04T08:12:40.000000"  # known since the first order
    traits = json.loads(str(anna["traits"]))
    assert traits == {  # from the latest order: the phone changed
        "email": "anna.meyer@example.com",
        "name": "Anna Meyer",
        "first_name": "Anna",
        "last_name": "Meyer",
        "phone": "+49 30 7654321",
        "country": "DE",
        "accepts_marketing": True,
    }
    chris = ev["shopify:identify:+33612345678:#1004"]
    assert json.loads(str(chris["traits"]))["name"] == "Chris Doe"


def test_woocommerce_orders(store: EventStore) -> None:
    result = import_file(store, WOO, now=NOW)
    assert result.events_by_name == {"Order Completed": 3, "Order Refunded": 1, "$identify": 4}
    ev = by_id(store)
    order = ev["woocommerce:order:2041"]
    assert order["revenue"] == Decimal("45.00") and order["user_id"] == "carla@example.com"
    props = json.loads(str(order["properties"]))
    assert props["status"] == "completed" and props["coupon"] == "WELCOME5"
    assert [p["sku"] for p in props["products"]] == ["OIL-500", "VIN-250"]
    assert ev["woocommerce:refund:2043"]["revenue"] == Decimal("-20.00")
    # Cancelled and pending orders never completed.
    assert "woocommerce:order:2044" not in ev and "woocommerce:order:2045" not in ev
    traits = json.loads(str(ev["woocommerce:identify:carla@example.com:2043"]["traits"]))
    assert (traits["first_name"], traits["last_name"], traits["country"]) == (
        "Carla",
        "Rossi",
        "IT",
    )


def test_reimport_skips_orders_already_stored(store: EventStore, tmp_path: Path) -> None:
    import_file(store, SHOPIFY, now=NOW)
    again = import_file(store, SHOPIFY, now=NOW)
    assert (again.events_loaded, again.skipped) == (0, 8)
    # A later export overlapping the first adds only the new order (and its customer row).
    newer = tmp_path / "orders_export_2.csv"
    text = SHOPIFY.read_text(encoding="utf-8")
    extra = text.splitlines()[3].replace("#1002", "#1005").replace("2024-03-06", "2024-05-01")
    newer.write_text(text + extra + "\n", encoding="utf-8")
    later = import_file(store, newer, now=NOW)
    assert later.events_by_name == {"Order Completed": 1, "Order Refunded": 1, "$identify": 1}
    assert store.count() == 11


def test_bad_amount_names_row_and_column(store: EventStore, tmp_path: Path) -> None:
    lines = SHOPIFY.read_text(encoding="utf-8").splitlines()
    lines[4] = lines[4].replace(",72.00,,0.00,Free shipping", ",72.00 EUR,,0.00,Free shipping")
    bad = tmp_path / "orders.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        import_file(store, bad, now=NOW, format="shopify")
    assert (err.value.source, err.value.row, err.value.field) == ("orders.csv", 5, "Total")
    assert store.count() == 0


def test_bad_date(store: EventStore, tmp_path: Path) -> None:
    text = WOO.read_text(encoding="utf-8").replace("2024-05-03 16:45:00", "03/05/2024 4:45pm")
    bad = tmp_path / "woo.csv"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="not a date-time") as err:
        import_file(store, bad, now=NOW)
    assert (err.value.row, err.value.field) == (4, "Order Date")
    assert store.count() == 0


def test_missing_required_column(store: EventStore, tmp_path: Path) -> None:
    text = SHOPIFY.read_text(encoding="utf-8").replace(",Total,", ",Grand Total,", 1)
    bad = tmp_path / "orders.csv"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="no 'Total' column; columns found: 'Name'") as err:
        import_file(store, bad, now=NOW, format="shopify")
    assert err.value.field == "Total"
