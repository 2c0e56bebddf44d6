"""Google Analytics 4 BigQuery export (rows as JSON lines) → events.

The export schema (one row per event; BigQuery writes INT64 values as JSON strings):
``event_date``, ``event_timestamp`` (µs since 1970), ``event_name``, ``event_params`` (a list of
``{key, value: {string_value, int_value, float_value, double_value}}``), ``user_id``,
``user_pseudo_id`` (the browser's client id), ``device.{category, operating_system,
mobile_brand_name}``, ``geo.{country, region, city}``, ``traffic_source.{source, medium, name}``
(the user's first acquisition), ``collected_traffic_source.{manual_source, manual_medium,
manual_campaign_name}`` (this event's), ``ecommerce.{purchase_revenue, refund_value,
shipping_value, tax_value, transaction_id, …}``, ``items`` (``item_id``, ``item_name``, ``price``,
``quantity``, …), ``platform``.

How a row becomes an event: the name is kept (``view_item``, ``add_to_cart``,
``begin_checkout``, ``add_payment_info``, ``purchase``… — the journey map maps names onto stages
later). ``user_id`` stays the user id and ``user_pseudo_id`` becomes the anonymous id, so rows
with both link the visitor to the customer. The event parameters become the properties (typed:
text, integer or number), with ``items`` and ``transaction_id`` added; ``page_location``,
``page_referrer``, the campaign, device and place go into the Segment-style ``context`` too. The
session is ``user_pseudo_id:ga_session_id``; the channel comes from this event's collected
source/medium, else its ``source``/``medium`` parameters, else the user's first acquisition.
Revenue: ``purchase`` → ``ecommerce.purchase_revenue`` (else the ``value`` parameter), ``refund``
→ minus ``ecommerce.refund_value``.
"""

from __future__ import annotations

from wayline.events.importers.base import (
    Built,
    Check,
    Context,
    Plan,
    blank_to_null,
    channel_sql,
    device_type_sql,
    events_select,
    jsonl_line_of,
    lit,
    money_check,
    money_sql,
    require_content,
)

_VALUE = "STRUCT(string_value VARCHAR, int_value VARCHAR, float_value DOUBLE, double_value DOUBLE)"
#: The part of the export schema read. INT64 fields are read as text: BigQuery quotes them.
GA4_COLUMNS: dict[str, str] = {
    "event_timestamp": "VARCHAR",
    "event_name": "VARCHAR",
    "event_params": f"STRUCT(key VARCHAR, value {_VALUE})[]",
    "user_id": "VARCHAR",
    "user_pseudo_id": "VARCHAR",
    "device": "STRUCT(category VARCHAR, operating_system VARCHAR, mobile_brand_name VARCHAR)",
    "geo": "STRUCT(country VARCHAR, region VARCHAR, city VARCHAR)",
    "traffic_source": "STRUCT(name VARCHAR, medium VARCHAR, source VARCHAR)",
    "collected_traffic_source": (
        "STRUCT(manual_campaign_name VARCHAR, manual_source VARCHAR, manual_medium VARCHAR)"
    ),
    "ecommerce": (
        # Money as text, cast straight to DECIMAL: no detour through floating point.
        "STRUCT(purchase_revenue VARCHAR, refund_value VARCHAR, shipping_value VARCHAR, "
        "tax_value VARCHAR, total_item_quantity VARCHAR, transaction_id VARCHAR)"
    ),
    "items": (
        "STRUCT(item_id VARCHAR, item_name VARCHAR, item_brand VARCHAR, item_variant VARCHAR, "
        "item_category VARCHAR, price DOUBLE, quantity VARCHAR, coupon VARCHAR)[]"
    ),
    "platform": "VARCHAR",
}


def _param(key: str) -> str:
    """The value struct of one event parameter (NULL when absent)."""
    return f"list_filter(event_params, lambda p: p.key = {lit(key)})[1].value"


def _param_text(key: str) -> str:
    v = _param(key)
    return blank_to_null(
        f"COALESCE({v}.string_value, {v}.int_value, CAST({v}.double_value AS VARCHAR), "
        f"CAST({v}.float_value AS VARCHAR))"
    )


def _param_number(key: str) -> str:
    v = _param(key)
    return (
        f"COALESCE({v}.double_value, {v}.float_value, TRY_CAST({v}.int_value AS DOUBLE), "
        f"TRY_CAST({v}.string_value AS DOUBLE))"
    )


def build_ga4(ctx: Context, source: str) -> Built:
    # A key repeated within one event (seen in hand-made exports) would make the map fail:
    # the first occurrence wins.
    unique_params = (
        "list_filter(COALESCE(event_params, []), lambda p, i: "
        "list_position(list_transform(event_params, lambda x: x.key), p.key) = i)"
    )
    params = (
        f"map_from_entries(list_transform({unique_params}, lambda p: struct_pack("
        "k := p.key, v := COALESCE(to_json(p.value.string_value), "
        "to_json(TRY_CAST(p.value.int_value AS BIGINT)), to_json(p.value.double_value), "
        "to_json(p.value.float_value)))))"
    )
    items = (
        "CASE WHEN len(items) > 0 THEN list_transform(items, lambda i: struct_pack("
        "item_id := i.item_id, item_name := i.item_name, item_brand := i.item_brand, "
        "item_variant := i.item_variant, item_category := i.item_category, price := i.price, "
        "quantity := TRY_CAST(i.quantity AS BIGINT), coupon := i.coupon)) END"
    )
    extras = (
        f"to_json(struct_pack(items := {items}, transaction_id := ecommerce.transaction_id, "
        f"shipping := {money_sql('ecommerce.shipping_value', strict=True)}, "
        f"tax := {money_sql('ecommerce.tax_value', strict=True)}))"
    )
    properties = f"json_merge_patch(json_merge_patch('{{}}', to_json({params})), {extras})"
    user = blank_to_null("user_id")
    anon = blank_to_null("user_pseudo_id")
    ts = "make_timestamp(TRY_CAST(trim(event_timestamp) AS BIGINT))::TIMESTAMPTZ"
    src = (
        f"COALESCE(collected_traffic_source.manual_source, {_param_text('source')}, "
        "traffic_source.source)"
    )
    medium = (
        f"COALESCE(collected_traffic_source.manual_medium, {_param_text('medium')}, "
        "traffic_source.medium)"
    )
    campaign = (
        f"COALESCE(collected_traffic_source.manual_campaign_name, {_param_text('campaign')}, "
        "traffic_source.name)"
    )
    location = _param_text("page_location")
    path = f"regexp_extract({location}, '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*([^?#]*)', 1)"
    session = _param_text("ga_session_id")
    value = f"CAST({_param_number('value')} AS DECIMAL(18,2))"
    revenue = (
        "CASE event_name "
        f"WHEN 'purchase' THEN COALESCE({money_sql('ecommerce.purchase_revenue', strict=True)}, "
        f"{value}) "
        f"WHEN 'refund' THEN -COALESCE({money_sql('ecommerce.refund_value', strict=True)}, "
        f"{value}) END"
    )
    context = (
        "json_merge_patch('{}', to_json(struct_pack("
        f"campaign := struct_pack(source := {src}, medium := {medium}, name := {campaign}), "
        f"page := struct_pack(url := {location}, path := {path}, "
        f"referrer := {_param_text('page_referrer')}, title := {_param_text('page_title')}), "
        "location := struct_pack(country := geo.country, region := geo.region, city := geo.city), "
        "device := struct_pack(type := device.category, brand := device.mobile_brand_name), "
        "os := struct_pack(name := device.operating_system), platform := platform)))"
    )
    columns = ctx.common_columns() | {
        "message_id": f"{lit(ctx.key + ':')} || CAST(_row AS VARCHAR)",
        "type": "'track'",
        "event": blank_to_null("event_name"),
        "user_id": user,
        "anonymous_id": anon,
        "person_id": f"COALESCE({user}, {anon})",
        "timestamp": ts,
        "session_id": f"CASE WHEN {session} IS NOT NULL THEN concat_ws(':', {anon}, {session}) END",
        "device_type": device_type_sql("device.category"),
        "os": blank_to_null("device.operating_system"),
        "channel": channel_sql(src, medium),
        "country": blank_to_null("geo.country"),
        "page_path": f"CASE WHEN {location} IS NOT NULL THEN COALESCE(nullif({path}, ''), '/') END",
        "revenue": revenue,
        "currency": f"CASE WHEN {revenue} IS NOT NULL THEN upper({_param_text('currency')}) END",
        "properties": properties,
        "context": context,
    }
    raw_ts = blank_to_null("event_timestamp")
    checks = [
        Check("event_name", "the event name is empty", f"{blank_to_null('event_name')} IS NULL"),
        Check(
            "user_pseudo_id",
            "needs a user_pseudo_id or a user_id",
            f"{user} IS NULL AND {anon} IS NULL",
        ),
        Check("event_timestamp", "the event timestamp is empty", f"{raw_ts} IS NULL"),
        Check(
            "event_timestamp",
            "not a timestamp in microseconds since 1970",
            f"{ts} IS NULL",
            raw_ts,
        ),
    ]
    checks += [
        money_check(f"ecommerce.{name}", f"ecommerce.{name}")
        for name in ("purchase_revenue", "refund_value", "shipping_value", "tax_value")
    ]
    return Built(events_select(columns, source), checks, duplicates="refuse")


def plan_ga4(ctx: Context) -> Plan:
    require_content(ctx.path)
    columns = "{" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in GA4_COLUMNS.items()) + "}"
    stage = (
        "CREATE OR REPLACE TEMP TABLE _wl_raw AS SELECT * FROM "
        f"read_json({lit(str(ctx.path))}, format = 'newline_delimited', "
        f"auto_detect = false, columns = {columns})"
    )
    source = "(SELECT rowid + 1 AS _row, * FROM _wl_raw) AS s"
    return Plan(
        format="ga4",
        stage=[("reading GA4 events", stage)],
        source=source,
        build=lambda con: build_ga4(ctx, source),
        id_prefix=ctx.key + ":",
        temp_tables=["_wl_raw"],
        user_row=jsonl_line_of(ctx.path),
    )
