"""Wayline: customer journey maps from a store's own data, and journeys that act on them."""

__version__ = "0.1.0"
