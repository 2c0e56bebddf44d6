"""What a template can refer to: the declared context, how it is built, and sample data.

Every template sees:

- ``customer``  ``id``, ``email``, ``phone``, ``first_name``, ``last_name``, ``properties``
  (the profile's free-form traits: anything below it is allowed);
- ``store``     ``name``, ``url``, ``logo_url``, ``address``, ``support_email``, ``currency``;
- ``journey``   ``id``, ``name``;
- ``event``     the triggering event: ``name``, ``timestamp``, ``properties`` (free-form);
- ``params``    the template's declared parameters (defaults in the template, overridden per
  journey step: a discount percentage, a survey link);
- ``unsubscribe_url`` and the helpers ``first_name(fallback)``, ``discount_code(prefix)``,
  ``product_url(item)``, ``link(url)`` and the ``money`` filter.

and, by the template's ``trigger``, one of ``product`` (viewed, back in stock, cheaper),
``cart`` (with ``items``) or ``order`` (with ``items``), lifted from the triggering event's
Segment e-commerce properties (``product_id``, ``name``, ``price``, ``products[]`` …).

Links made by ``product_url``/``link`` carry ``utm_source=wayline`` and ``utm_medium=<channel>``,
so a visit they bring back is attributed to the channel by :mod:`wayline.events.normalize`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

from wayline.channels.templates.sandbox import ANY, Shape, helper
from wayline.errors import InputError
from wayline.events.normalize import parse_money

PRODUCT: dict[str, Shape] = {
    "id": str,
    "name": str,
    "url": str,
    "image_url": str,
    "price": Decimal,
    "compare_at_price": Decimal,
    "currency": str,
    "brand": str,
    "category": str,
}
LINE_ITEM: dict[str, Shape] = {**PRODUCT, "quantity": int}
CART: dict[str, Shape] = {
    "id": str,
    "url": str,
    "total": Decimal,
    "currency": str,
    "item_count": int,
    "items": [LINE_ITEM],
}
ORDER: dict[str, Shape] = {**CART, "placed_at": str}

BASE: dict[str, Shape] = {
    "customer": {
        "id": str,
        "email": str,
        "phone": str,
        "first_name": str,
        "last_name": str,
        "properties": ANY,
    },
    "store": {
        "name": str,
        "url": str,
        "logo_url": str,
        "address": str,
        "support_email": str,
        "currency": str,
    },
    "journey": {"id": str, "name": str},
    "event": {"name": str, "timestamp": str, "properties": ANY},
    "unsubscribe_url": str,
    "first_name": helper,
    "discount_code": helper,
    "product_url": helper,
    "link": helper,
}

#: The extra context each trigger kind brings.
TRIGGERS: dict[str, dict[str, Shape]] = {
    "none": {},
    "product": {"product": PRODUCT},
    "cart": {"cart": CART},
    "order": {"order": ORDER},
}


def declared_context(trigger: str, params: Mapping[str, Any]) -> dict[str, Shape]:
    """The shape of the context of a template with this trigger and these parameters."""
    if trigger not in TRIGGERS:
        raise InputError(f"unknown trigger {trigger!r}; expected one of {sorted(TRIGGERS)}")
    return {**BASE, **TRIGGERS[trigger], "params": {k: ANY for k in params}}


def _s(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _money(value: Any, field: str) -> Decimal | None:
    return parse_money(value, field=field)


def product_from(props: Mapping[str, Any], currency: str | None = None) -> dict[str, Any]:
    """A product of the context from Segment product properties."""
    return {
        "id": _s(props.get("product_id") or props.get("id") or props.get("sku")),
        "name": _s(props.get("name")),
        "url": _s(props.get("url")),
        "image_url": _s(props.get("image_url")),
        "price": _money(props.get("price"), "price"),
        "compare_at_price": _money(props.get("compare_at_price"), "compare_at_price"),
        "currency": _s(props.get("currency")) or currency,
        "brand": _s(props.get("brand")),
        "category": _s(props.get("category")),
    }


def _items(props: Mapping[str, Any], currency: str | None) -> list[dict[str, Any]]:
    products = props.get("products")
    if products is None:
        # A single-product event (Segment's Product Added) stands for a one-item cart.
        has_product = props.get("product_id") or props.get("name")
        products = [props] if has_product else []
    if not isinstance(products, list):
        raise InputError("must be a list of products", field="properties.products")
    items = []
    for p in products:
        if isinstance(p, Mapping):
            item = product_from(p, currency)
            item["quantity"] = int(p.get("quantity") or 1)
            items.append(item)
    return items


def cart_from(props: Mapping[str, Any], *, order: bool = False) -> dict[str, Any]:
    """A cart (or an order) from Segment cart/checkout/order properties."""
    currency = _s(props.get("currency"))
    items = _items(props, currency)
    total = _money(props.get("total") or props.get("value") or props.get("revenue"), "total")
    if total is None and items:
        total = sum(
            ((i["price"] or Decimal(0)) * i["quantity"] for i in items), start=Decimal(0)
        ).quantize(Decimal("0.01"))
    ident = props.get("order_id") if order else props.get("cart_id") or props.get("checkout_id")
    result = {
        "id": _s(ident),
        "url": _s(props.get("checkout_url") or props.get("cart_url") or props.get("url")),
        "total": total,
        "currency": currency,
        "item_count": sum(i["quantity"] for i in items),
        "items": items,
    }
    if order:
        result["placed_at"] = _s(props.get("timestamp") or props.get("placed_at"))
    return result


def with_utm(url: str, *, medium: str, campaign: str | None) -> str:
    """``url`` with Wayline's UTM parameters added (existing ones kept)."""
    parsed = urlparse(url)
    query = dict(parse_qsl(parsed.query, keep_blank_values=True))
    query.setdefault("utm_source", "wayline")
    query.setdefault("utm_medium", medium)
    if campaign:
        query.setdefault("utm_campaign", campaign)
    return urlunparse(parsed._replace(query=urlencode(query)))


def build_context(
    *,
    trigger: str,
    customer: Mapping[str, Any],
    store: Mapping[str, Any],
    channel: str,
    code_secret: str,
    event: Mapping[str, Any] | None = None,
    journey: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    unsubscribe_url: str | None = None,
) -> dict[str, Any]:
    """The render context for one customer.

    ``customer``: a profile (``id``, ``email``, ``phone``, ``first_name``, ``last_name``, other
    traits go to ``properties``); ``event``: the triggering event as a Segment track call
    (``event``, ``properties``, ``timestamp``); ``code_secret`` keys the discount codes.
    Declared fields the data lacks are ``None`` (printed as nothing), never missing.
    """
    known = ("id", "email", "phone", "first_name", "last_name")
    traits = customer.get("properties")
    props = dict(traits) if isinstance(traits, Mapping) else {}
    props.update({k: v for k, v in customer.items() if k not in (*known, "properties")})
    cust: dict[str, Any] = {k: _s(customer.get(k)) for k in known}
    cust["properties"] = props
    if not cust["first_name"] and isinstance(customer.get("name"), str):
        cust["first_name"] = customer["name"].split()[0] if customer["name"].split() else None
    ev = event or {}
    ev_props = ev.get("properties") or {}
    if not isinstance(ev_props, Mapping):
        raise InputError("must be a JSON object", field="event.properties")
    jr = {"id": _s((journey or {}).get("id")), "name": _s((journey or {}).get("name"))}
    st = {k: _s(store.get(k)) for k in BASE["store"]}  # type: ignore[union-attr]
    campaign = jr["id"] or jr["name"]

    @helper
    def first_name(fallback: str = "there") -> str:
        name = cust["first_name"]
        return name.strip().title() if name and name.strip() else fallback

    @helper
    def discount_code(prefix: str = "SAVE", length: int = 8) -> str:
        # Deterministic per customer and journey: a resend or a preview shows the same code,
        # and no table of issued codes is needed to check one.
        seed = f"{cust['id']}\x1f{campaign}\x1f{prefix}".encode()
        mac = hmac.new(code_secret.encode(), seed, hashlib.sha256).digest()
        body = base64.b32encode(mac).decode().rstrip("=")[: max(4, min(length, 16))]
        return f"{prefix.upper()}-{body}"

    @helper
    def link(url: str) -> str:
        return with_utm(str(url), medium=channel, campaign=campaign)

    @helper
    def product_url(item: Mapping[str, Any]) -> str:
        url = item.get("url") if isinstance(item, Mapping) else None
        return link(url) if url else link(st["url"] or "")

    context: dict[str, Any] = {
        "customer": cust,
        "store": st,
        "journey": jr,
        "event": {
            "name": _s(ev.get("event")),
            "timestamp": _s(ev.get("timestamp")),
            "properties": dict(ev_props),
        },
        "params": dict(params or {}),
        "unsubscribe_url": unsubscribe_url or "",
        "first_name": first_name,
        "discount_code": discount_code,
        "product_url": product_url,
        "link": link,
    }
    if trigger == "product":
        context["product"] = product_from(ev_props, _s(st.get("currency")))
    elif trigger == "cart":
        context["cart"] = cart_from(ev_props)
    elif trigger == "order":
        context["order"] = cart_from(ev_props, order=True)
    elif trigger != "none":
        raise InputError(f"unknown trigger {trigger!r}; expected one of {sorted(TRIGGERS)}")
    return context


# --- sample data (previews, validation) ------------------------------------------------------

SAMPLE_STORE: dict[str, Any] = {
    "name": "Casa Verde",
    "url": "https://casaverde.example",
    "logo_url": "https://casaverde.example/logo.png",
    "address": "Rua das Flores 12, 1200-195 Lisboa, Portugal",
    "support_email": "help@casaverde.example",
    "currency": "EUR",
}
SAMPLE_CUSTOMER: dict[str, Any] = {
    "id": "cus_sample",
    "email": "ana@example.com",
    "phone": "+351912345678",
    "first_name": "Ana",
    "last_name": "Souza",
    "properties": {"city": "Lisboa", "orders_count": 2},
}
SAMPLE_JOURNEY: dict[str, Any] = {"id": "jrn_sample", "name": "Sample journey"}
_SHIRT = {
    "product_id": "p_linen",
    "name": "Linen shirt",
    "price": "49.00",
    "compare_at_price": "59.00",
    "url": "https://casaverde.example/p/linen-shirt",
    "image_url": "https://casaverde.example/img/linen-shirt.jpg",
    "brand": "Casa Verde",
    "category": "Shirts",
    "currency": "EUR",
}
_MUG = {
    "product_id": "p_mug",
    "name": "Stoneware mug",
    "price": "14.50",
    "quantity": 2,
    "url": "https://casaverde.example/p/stoneware-mug",
    "image_url": "https://casaverde.example/img/mug.jpg",
}
SAMPLE_EVENTS: dict[str, dict[str, Any]] = {
    "none": {"event": "Signed Up", "properties": {}, "timestamp": "2026-11-20T10:00:00Z"},
    "product": {
        "event": "Product Viewed",
        "properties": _SHIRT,
        "timestamp": "2026-11-20T10:00:00Z",
    },
    "cart": {
        "event": "Checkout Started",
        "properties": {
            "cart_id": "cart_123",
            "checkout_url": "https://casaverde.example/cart",
            "currency": "EUR",
            "products": [{**_SHIRT, "quantity": 1}, _MUG],
        },
        "timestamp": "2026-11-20T10:00:00Z",
    },
    "order": {
        "event": "Order Completed",
        "properties": {
            "order_id": "1042",
            "total": "78.00",
            "currency": "EUR",
            "url": "https://casaverde.example/orders/1042",
            "products": [{**_SHIRT, "quantity": 1}, _MUG],
        },
        "timestamp": "2026-11-20T10:00:00Z",
    },
}
