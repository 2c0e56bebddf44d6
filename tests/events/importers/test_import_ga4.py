"""GA4 BigQuery export rows → events, with identity linking after the load."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from importer_support import DATA, EVENT_VIEW, NOW, rows

from wayline.errors import InputError
from wayline.events.importers import detect_format, import_file
from wayline.storage.eventstore import EventStore

GA4 = DATA / "ga4_events.jsonl"


def test_ga4_export(store: EventStore) -> None:
    assert detect_format(GA4) == "ga4"
    result = import_file(store, GA4, now=NOW)
    assert result.events_loaded == 7
    got = {r["event"]: r for r in rows(store, EVENT_VIEW)}
    # Recommended e-commerce events keep their names.
    assert {"view_item", "add_to_cart", "begin_checkout", "add_payment_info", "purchase"} <= set(
        got
    )
    view = got["view_item"]
    assert view["ts"] == "2024-06-10T10:00:45.500000"  # µs since 1970
    assert view["anonymous_id"] == "1795211.1718013600"
    assert view["session_id"] == "1795211.1718013600:1718013600"
    assert (view["device_type"], view["os"], view["country"]) == ("mobile", "iOS", "Germany")
    assert (view["channel"], view["page_path"]) == ("email", "/products/ceramic-mug")
    props = json.loads(str(view["properties"]))
    assert props["value"] == 18.0 and props["engagement_time_msec"] == 5120
    assert props["items"][0]["item_id"] == "MUG-SAND" and props["items"][0]["quantity"] == 1
    purchase = got["purchase"]
    assert (purchase["revenue"], purchase["currency"]) == (Decimal("40.90"), "EUR")
    assert json.loads(str(purchase["properties"]))["transaction_id"] == "T-88121"
    assert got["page_view"]["channel"] == "search"
    # Identities resolved after the load: the visitor's anonymous browsing is the customer's.
    assert view["person_id"] == "cust-4711"
    assert got["page_view"]["person_id"] == "88213.1718099990"


def test_ga4_bad_timestamp(store: EventStore, tmp_path: Path) -> None:
    lines = GA4.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace('"1718013702000000"', '"2024-06-10"')
    bad = tmp_path / "ga4.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="microseconds") as err:
        import_file(store, bad, now=NOW)
    assert (err.value.source, err.value.row, err.value.field) == ("ga4.jsonl", 3, "event_timestamp")
    assert store.count() == 0


def test_ga4_json_syntax_error(store: EventStore, tmp_path: Path) -> None:
    lines = GA4.read_text(encoding="utf-8").splitlines()
    lines[5] = lines[5][:-1]  # drop the closing brace
    bad = tmp_path / "ga4.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="invalid JSON") as err:
        import_file(store, bad, now=NOW, format="ga4")
    assert err.value.row == 6
    assert store.count() == 0


def test_ga4_repeated_param_key_keeps_the_first(store: EventStore, tmp_path: Path) -> None:
    row = json.loads(GA4.read_text(encoding="utf-8").splitlines()[0])
    row["event_params"].append({"key": "source", "value": {"string_value": "again"}})
    f = tmp_path / "ga4.jsonl"
    f.write_text(json.dumps(row) + "\n", encoding="utf-8")
    import_file(store, f, now=NOW, format="ga4")
    got = rows(store, EVENT_VIEW)
    assert json.loads(str(got[0]["properties"]))["source"] == "newsletter"


def test_ga4_bad_revenue(store: EventStore, tmp_path: Path) -> None:
    text = GA4.read_text(encoding="utf-8").replace(
        '"purchase_revenue":40.9', '"purchase_revenue":"n/a"'
    )
    bad = tmp_path / "ga4.jsonl"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="not an amount") as err:
        import_file(store, bad, now=NOW, format="ga4")
    assert (err.value.row, err.value.field) == (6, "ecommerce.purchase_revenue")
    assert store.count() == 0
