"""The sample store's fixed world: products, personas, devices, countries, acquisition channels.

Everything here is either a constant table or drawn once from the seeded generator, before any
customer acts. Channels are described the way a browser SDK reports them — UTM source/medium in
``context.campaign`` or a referrer in ``context.page`` — and their channel label is computed with
:func:`wayline.events.normalize.classify_channel`, so the simulated ``channel`` column is exactly
what the tracking API would have filled in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from wayline.events.normalize import classify_channel

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

CURRENCY = "EUR"
SHOP_URL = "https://shop.example"

# (name, median price in cents, nouns)
CATEGORIES: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("apparel", 3900, ("T-Shirt", "Hoodie", "Linen Shirt", "Sweater", "Dress")),
    ("shoes", 8900, ("Sneakers", "Boots", "Sandals", "Loafers")),
    ("accessories", 2900, ("Tote Bag", "Scarf", "Wallet", "Sunglasses", "Belt")),
    ("home", 3500, ("Throw Blanket", "Cushion", "Vase", "Candle", "Lamp")),
    ("beauty", 1900, ("Face Serum", "Hand Cream", "Lip Balm", "Shampoo Bar")),
    ("kitchen", 4500, ("Chef Knife", "Coffee Grinder", "Teapot", "Cutting Board")),
    ("gifts", 2500, ("Gift Box", "Photo Frame", "Puzzle", "Card Set")),
    ("outdoor", 5500, ("Water Bottle", "Daypack", "Rain Jacket", "Camping Mug")),
)
GIFT_CATEGORY = 6
_ADJECTIVES = (
    "Classic",
    "Organic",
    "Everyday",
    "Premium",
    "Vintage",
    "Nordic",
    "Cozy",
    "Bold",
    "Minimal",
    "Handmade",
    "Recycled",
    "Travel",
)
PRODUCTS_PER_CATEGORY = 30


@dataclass(frozen=True)
class Persona:
    """How a kind of customer behaves. Personas change how often and how much people shop,
    never the per-step conversion rates (so they do not masquerade as a problem)."""

    name: str
    share: float
    returns: float
    """Probability of coming back after each visit."""
    gap_days: float
    """Mean days between visits."""
    browse: float
    """Extra (non-product) pages per visit, Poisson mean."""
    views: float
    """Extra products viewed per visit, Poisson mean."""
    extra_items: float
    """Extra items in a basket, Poisson mean."""
    price_bias: float
    """Exponent on price in product choice: negative prefers cheap products."""
    mobile_share: float | None = None
    """Overrides the device mix: the share of customers on mobile."""
    gift_bias: float = 1.0


PERSONAS: tuple[Persona, ...] = (
    Persona("bargain_hunter", 0.25, 0.72, 18, 1.5, 2.0, 0.3, -0.8),
    Persona("loyal_regular", 0.15, 0.88, 10, 1.0, 1.2, 0.8, 0.0),
    Persona("gift_buyer", 0.15, 0.5, 40, 1.2, 1.5, 0.5, 0.3, gift_bias=4.0),
    Persona("mobile_first_browser", 0.25, 0.68, 16, 2.0, 2.5, 0.2, 0.0, mobile_share=0.95),
    Persona("casual_visitor", 0.20, 0.35, 30, 1.0, 1.0, 0.1, 0.0),
)


@dataclass(frozen=True)
class Platform:
    device_type: str
    os: str
    user_agent: str
    share: float
    """Share within its device type."""


PLATFORMS: tuple[Platform, ...] = (
    Platform(
        "mobile",
        "iOS",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        0.55,
    ),
    Platform(
        "mobile",
        "Android",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
        0.45,
    ),
    Platform(
        "desktop",
        "Windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        0.6,
    ),
    Platform(
        "desktop",
        "macOS",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        0.35,
    ),
    Platform(
        "desktop",
        "Linux",
        "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
        0.05,
    ),
    Platform(
        "tablet",
        "iOS",
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        0.7,
    ),
    Platform(
        "tablet",
        "Android",
        "Mozilla/5.0 (Linux; Android 13; SM-X200) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/126.0 Safari/537.36",
        0.3,
    ),
)
#: Device mix of customers whose persona does not override it; with the mobile-first persona
#: the store's overall mobile share is about 60 %.
DEVICE_SHARES = {"mobile": 0.48, "desktop": 0.42, "tablet": 0.10}

COUNTRIES: tuple[tuple[str, float], ...] = (
    ("DE", 0.30),
    ("FR", 0.18),
    ("NL", 0.10),
    ("ES", 0.10),
    ("IT", 0.10),
    ("BE", 0.06),
    ("AT", 0.06),
    ("IE", 0.04),
    ("PT", 0.03),
    ("FI", 0.03),
)


@dataclass(frozen=True)
class Traffic:
    """One way visitors arrive, as the browser SDK reports it."""

    source: str | None
    medium: str | None
    campaign: str | None
    referrer: str | None
    acquisition: float
    """Share of new customers arriving this way."""

    @property
    def channel(self) -> str:
        return classify_channel(self.source, self.medium, self.referrer)


TRAFFIC: tuple[Traffic, ...] = (
    Traffic("google", "cpc", "brand_search", None, 0.13),
    Traffic("facebook", "paid_social", "retargeting", None, 0.09),
    Traffic(None, None, None, "https://www.google.com/", 0.19),
    Traffic(None, None, None, "https://www.bing.com/", 0.05),
    Traffic("instagram", "social", "spring_drop", None, 0.12),
    Traffic("tiktok", "social", "creator_collab", None, 0.08),
    Traffic("newsletter", "email", "weekly_picks", None, 0.04),
    Traffic("whatsapp", "message", "back_in_stock", None, 0.03),
    Traffic(None, None, None, None, 0.22),
    Traffic(None, None, None, "https://giftguide.example.org/best-gifts", 0.05),
)
TRAFFIC_EMAIL = 6
TRAFFIC_WHATSAPP = 7
TRAFFIC_DIRECT = 8
TRAFFIC_SEARCH = 2
SOCIAL_TRAFFIC = np.array([t.channel == "social" for t in TRAFFIC])

#: Static pages (index → path, title); collection pages follow, one per category.
STATIC_PAGES: tuple[tuple[str, str], ...] = (
    ("/", "Home"),
    ("/cart", "Cart"),
    ("/checkout", "Checkout"),
    ("/pages/shipping", "Shipping & returns"),
    ("/pages/faq", "FAQ"),
    ("/search", "Search"),
)
PAGE_HOME, PAGE_CART, PAGE_CHECKOUT, PAGE_SHIPPING, PAGE_FAQ, PAGE_SEARCH = range(6)
PAGE_COLLECTION0 = len(STATIC_PAGES)
PAGES: tuple[tuple[str, str], ...] = STATIC_PAGES + tuple(
    (f"/collections/{name}", name.capitalize()) for name, _, _ in CATEGORIES
)


@dataclass(frozen=True)
class Catalogue:
    """The products, as parallel arrays (index = product number)."""

    product_id: tuple[str, ...]
    sku: tuple[str, ...]
    name: tuple[str, ...]
    handle: tuple[str, ...]
    category: IntArray
    price_cents: IntArray
    has_reviews: BoolArray
    review_count: IntArray
    rating_tenths: IntArray
    description_length: IntArray
    popularity: FloatArray

    def __len__(self) -> int:
        return len(self.product_id)

    def choice_weights(self, persona: Persona) -> FloatArray:
        """Probability of each product being looked at by a customer of this persona."""
        w = self.popularity * (self.price_cents / 3000.0) ** persona.price_bias
        w = np.where(self.category == GIFT_CATEGORY, w * persona.gift_bias, w)
        return np.asarray(w / w.sum(), dtype=np.float64)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def make_catalogue(rng: np.random.Generator) -> Catalogue:
    """Draw the product catalogue: prices around each category's median, a quarter of the
    products without reviews, some with thin descriptions, a long-tailed popularity."""
    ids: list[str] = []
    skus: list[str] = []
    names: list[str] = []
    handles: list[str] = []
    categories: list[int] = []
    medians: list[int] = []
    for c, (cat, median, nouns) in enumerate(CATEGORIES):
        for i in range(PRODUCTS_PER_CATEGORY):
            n = len(ids) + 1
            noun = nouns[i % len(nouns)]
            adjective = _ADJECTIVES[(i // len(nouns) + 3 * c) % len(_ADJECTIVES)]
            name = f"{adjective} {noun}"
            if name in names:
                name = f"{name} {i // len(_ADJECTIVES) + 2}"
            ids.append(f"prd_{n:04d}")
            skus.append(f"{cat[:3].upper()}-{n:04d}")
            names.append(name)
            handles.append(f"{_slug(name)}-{n}")
            categories.append(c)
            medians.append(median)
    count = len(ids)
    # Prices end in .90 or .99 like a real shop's.
    raw = np.asarray(medians) * rng.lognormal(0.0, 0.35, count)
    price = np.maximum(raw // 100, 3).astype(np.int64) * 100 + rng.choice([90, 99], count)
    has_reviews = rng.random(count) >= 0.25
    review_count = np.where(has_reviews, 1 + rng.lognormal(2.5, 1.0, count).astype(np.int64), 0)
    rating = np.where(has_reviews, rng.integers(32, 50, count, endpoint=True), 0)
    thin = rng.random(count) < 0.18
    description = np.where(
        thin,
        rng.integers(20, 120, count),
        rng.integers(350, 1600, count),
    ).astype(np.int64)
    rank = rng.permutation(count) + 1
    popularity = 1.0 / rank**0.8
    return Catalogue(
        product_id=tuple(ids),
        sku=tuple(skus),
        name=tuple(names),
        handle=tuple(handles),
        category=np.asarray(categories, dtype=np.int64),
        price_cents=price.astype(np.int64),
        has_reviews=has_reviews,
        review_count=review_count.astype(np.int64),
        rating_tenths=rating.astype(np.int64),
        description_length=description,
        popularity=popularity.astype(np.float64),
    )
