"""Product pages that convert worse because of their content: no reviews, thin descriptions.

The detector reads the product properties the store's product-view events carry — whichever of
them exist; none is required:

- a **review flag** (a boolean property whose name mentions reviews, e.g. ``has_reviews``):
  products where it is false;
- a **review count** (a number whose name mentions reviews, e.g. ``review_count``): products
  with zero;
- a **description length** (a number whose name mentions a description): products in the
  bottom quarter of the catalogue (thin descriptions).

The unit is a product viewed in a visit (distinct visit × product); it converts when the visit
adds *that product* to the cart (matched on the product key: ``product_id``, ``sku`` or ``id``,
whichever the events carry). Each signal's products are compared with the other products; as
with segments, the strongest signal's products are then set aside and the others re-tested, so a
thin-description signal that only echoes missing reviews is not reported twice. Revenue at
stake: adds lost against the other products' rate × the store's add-to-purchase rate × average
order value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from wayline.analytics.filters import json_text_sql
from wayline.analytics.query import CompiledQuery, Params
from wayline.analytics.sessions import sessionize_sql
from wayline.journeymap.detectors.base import SAFE_KEY, Evidence, Finding, StoreView, in_list
from wayline.journeymap.detectors.segment_step import money, to_purchase
from wayline.journeymap.detectors.stats import Comparison, critical_z, is_finding
from wayline.journeymap.detectors.visits import RANK, cube

KIND = "product_content"
PRODUCT_KEYS = ("product_id", "productId", "sku", "id", "item_id")
SAMPLE = 5000


@dataclass(frozen=True)
class ContentKeys:
    product: str
    review_flags: tuple[str, ...] = ()
    review_counts: tuple[str, ...] = ()
    description_lengths: tuple[str, ...] = ()

    @property
    def content(self) -> tuple[str, ...]:
        return self.review_flags + self.review_counts + self.description_lengths


def content_keys(samples: Sequence[Any]) -> ContentKeys | None:
    """Pure: which product key and content properties sampled product-view properties carry."""
    seen: dict[str, list[Any]] = {}
    parsed = 0
    for text in samples:
        try:
            obj = orjson.loads(text) if isinstance(text, str | bytes) else text
        except orjson.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        parsed += 1
        for k, v in obj.items():
            if SAFE_KEY.match(str(k)):
                seen.setdefault(str(k), []).append(v)
    if not parsed:
        return None
    product = next((k for k in PRODUCT_KEYS if len(seen.get(k, ())) >= 0.8 * parsed), None)
    if product is None:
        return None
    flags, counts, lengths = [], [], []
    for key, values in seen.items():
        low = key.lower()
        present = [v for v in values if v is not None]
        if len(present) < 0.5 * parsed:
            continue
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in present)
        if "review" in low and all(isinstance(v, bool) for v in present):
            flags.append(key)
        elif "review" in low and numeric and ("count" in low or "num" in low or low.endswith("s")):
            counts.append(key)
        elif "desc" in low and numeric:
            lengths.append(key)
    return ContentKeys(product, tuple(sorted(flags)), tuple(sorted(counts)), tuple(sorted(lengths)))


def sample_query(view: StoreView) -> CompiledQuery:
    p = Params()
    views = in_list(p, "event", view.profile.names("product_view"))
    return p.compile(
        f"SELECT CAST(properties AS VARCHAR) FROM events WHERE {view.where(p)} AND {views} "
        f"AND properties IS NOT NULL LIMIT {SAMPLE}"
    )


def _properties_sql(keys: Sequence[str], dialect: str) -> tuple[str, list[str]]:
    """An expression to select as ``_j`` and the text of each of ``keys`` in ``properties``
    read from it. On DuckDB ``_j`` is one ``json_extract_string`` with a list of paths, which
    parses each document once for all of them (a call per key parsed it once per key: most of
    the query's time on 10 M events); elsewhere it is unused and each key is read directly."""
    if dialect != "duckdb":
        return "NULL", [json_text_sql("properties", (k,), dialect) for k in keys]
    paths = ", ".join("'$.\"" + k + "\"'" for k in keys)
    return f"json_extract_string(properties, [{paths}])", [f"_j[{i + 1}]" for i in range(len(keys))]


def products_query(view: StoreView, keys: ContentKeys) -> CompiledQuery:
    """Per product: its content properties (the largest value seen on its views), distinct
    visits viewing it, how many of those added it, and how many customers viewed it."""
    p = Params()
    prof = view.profile
    views = in_list(p, "event", prof.names("product_view"))
    adds = in_list(p, "event", prof.names("add_to_cart"))
    parsed, extracted = _properties_sql([keys.product, *keys.content], view.dialect)
    props = "".join(f", {e} AS c{i}" for i, e in enumerate(extracted[1:]))
    source = (
        f"(SELECT person_id, session_id, timestamp, {views} AS is_view, properties, "
        f"{parsed} AS _j FROM events WHERE {view.where(p)} AND ({views} OR {adds}))"
    )
    # A visit is (person, session key); on DuckDB one 64-bit hash of the two (see
    # visits._visit_key) and the person's hash, which sort and group much faster than text.
    if view.dialect == "duckdb":
        unit = "hash(person_id, session_key) AS vk, hash(person_id) AS who"
        key = ["vk"]
    else:
        unit = "session_key, person_id AS who"
        key = ["who", "session_key"]
    cols = ", ".join(key)
    viewer = ", ".join(dict.fromkeys([*key, "who"]))
    on = " AND ".join(f"a.{k} = v.{k}" for k in key)
    n = len(keys.content)
    content = "".join(f", max(c{i}) AS c{i}" for i in range(n))
    sql = f"""
        WITH e AS (SELECT {unit}, is_view, {extracted[0]} AS pid{props}
                   FROM ({sessionize_sql(source)}) AS _s),
             c AS (SELECT pid{content} FROM e WHERE is_view AND pid IS NOT NULL GROUP BY pid),
             v AS (SELECT DISTINCT {viewer}, pid FROM e WHERE is_view AND pid IS NOT NULL),
             a AS (SELECT DISTINCT {cols}, pid FROM e WHERE NOT is_view AND pid IS NOT NULL),
             n AS (SELECT v.pid, count(*) AS viewed, count(a.pid) AS added,
                          count(DISTINCT v.who) AS persons
                   FROM v LEFT JOIN a ON {on} AND a.pid = v.pid
                   GROUP BY v.pid)
        SELECT n.pid{"".join(f", c.c{i}" for i in range(n))}, n.viewed, n.added, n.persons
        FROM n JOIN c ON c.pid = n.pid"""
    return p.compile(sql)


#: Above this many flagged products, customers are summed per product (an upper bound) instead of
#: counted exactly with the products as query parameters.
MAX_EXACT_PRODUCTS = 5000


def viewers_query(view: StoreView, keys: ContentKeys, products: Sequence[str]) -> CompiledQuery:
    """Distinct customers who viewed one of ``products``."""
    p = Params()
    views = in_list(p, "event", view.profile.names("product_view"))
    pid = json_text_sql("properties", (keys.product,), view.dialect)
    sql = (
        f"SELECT count(DISTINCT person_id) FROM events WHERE {view.where(p)} AND {views} "
        f"AND {in_list(p, pid, sorted(products))}"
    )
    return p.compile(sql)


@dataclass(frozen=True)
class Product:
    key: str
    content: dict[str, str | None]
    viewed: int
    added: int
    persons: int


@dataclass(frozen=True)
class Signal:
    key: str
    value: str
    """The segment value, as it reads: ``false``, ``0``, ``< 120``."""
    label: str
    flagged: frozenset[str]


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def signals(keys: ContentKeys, products: Sequence[Product]) -> list[Signal]:
    """Pure: the product groups to test (each a set of product keys)."""
    out = []
    for k in keys.review_flags:
        flagged = frozenset(p.key for p in products if (p.content.get(k) or "").lower() == "false")
        out.append(Signal(f"properties.{k}", "false", "products without reviews", flagged))
    for k in keys.review_counts:
        flagged = frozenset(p.key for p in products if _number(p.content.get(k)) == 0)
        out.append(Signal(f"properties.{k}", "0", "products with no reviews", flagged))
    for k in keys.description_lengths:
        lengths = sorted(x for p in products if (x := _number(p.content.get(k))) is not None)
        if len(lengths) < 8:
            continue
        cut = lengths[len(lengths) // 4]
        flagged = frozenset(
            p.key for p in products if (x := _number(p.content.get(k))) is not None and x < cut
        )
        out.append(
            Signal(f"properties.{k}", f"< {cut:g}", "products with thin descriptions", flagged)
        )
    return [s for s in out if s.flagged and len(s.flagged) < len(products)]


@dataclass(frozen=True)
class ContentHit:
    signal: Signal
    comparison: Comparison
    persons: int


def decide(
    sigs: Sequence[Signal], products: Sequence[Product], view_thresholds: Any
) -> list[ContentHit]:
    """Pure: the signals whose products are added to the cart significantly less often."""
    z_crit = critical_z(view_thresholds.alpha, max(1, len(sigs)) * max(1, len(sigs)))
    remaining = list(products)
    left = list(sigs)
    hits: list[ContentHit] = []
    while left:
        best: ContentHit | None = None
        for s in left:
            inside = [p for p in remaining if p.key in s.flagged]
            rest = [p for p in remaining if p.key not in s.flagged]
            cmp = Comparison(
                sum(p.added for p in inside),
                sum(p.viewed for p in inside),
                sum(p.added for p in rest),
                sum(p.viewed for p in rest),
            )
            if is_finding(cmp, z_crit, "lower", view_thresholds) and (
                best is None or cmp.z < best.comparison.z
            ):
                best = ContentHit(s, cmp, sum(p.persons for p in inside))
        if best is None:
            break
        hits.append(best)
        left.remove(best.signal)
        remaining = [p for p in remaining if p.key not in best.signal.flagged]
    return hits


def detect(view: StoreView) -> list[Finding]:
    prof = view.profile
    if not (prof.has("product_view") and prof.has("add_to_cart")):
        return []
    keys = content_keys([r[0] for r in view.fetch(sample_query(view))])
    if keys is None or not keys.content:
        return []
    products = [
        Product(
            str(row[0]),
            {
                k: (None if v is None else str(v))
                for k, v in zip(keys.content, row[1:], strict=False)
            },
            int(row[-3]),
            int(row[-2]),
            int(row[-1]),
        )
        for row in view.fetch(products_query(view, keys))
    ]
    c = view.context
    a, b = prof.main_name("product_view"), prof.main_name("add_to_cart")
    found = []
    cells = cube(view)
    for hit in decide(signals(keys, products), products, view.thresholds):
        cmp = hit.comparison
        lost = cmp.excess("lower") * to_purchase(cells, RANK["add_to_cart"])
        viewers = hit.persons
        if len(hit.signal.flagged) <= MAX_EXACT_PRODUCTS:
            rows = view.fetch(viewers_query(view, keys, sorted(hit.signal.flagged)))
            viewers = int(rows[0][0]) if rows else 0
        found.append(
            Finding(
                kind=KIND,
                title=f"{hit.signal.label.capitalize()} are rarely added to the cart",
                stage="consideration",
                step=f"{a} → {b}",
                step_events=(a, b),
                effect=1 - cmp.ratio if not math.isinf(cmp.ratio) else 1.0,
                evidence=Evidence(
                    metric=f"share of products viewed in a visit that the visit adds ({b})",
                    value=cmp.rate,
                    baseline=cmp.baseline,
                    unit="viewed products",
                    affected_customers=viewers,
                    revenue_at_stake=money(lost, prof.average_order_value),
                    since=c.since,
                    until=c.until,
                    segment={hit.signal.key: hit.signal.value},
                    detail=(
                        f"{len(hit.signal.flagged)} {hit.signal.label} "
                        f"({hit.signal.key.removeprefix('properties.')} {hit.signal.value}) "
                        f"were viewed {cmp.n_a} times and added {cmp.k_a} times "
                        f"({cmp.rate:.1%}), against {cmp.baseline:.1%} for the other products."
                    ),
                    z_score=cmp.z,
                    sample_size=cmp.n_a,
                ),
            )
        )
    return found
