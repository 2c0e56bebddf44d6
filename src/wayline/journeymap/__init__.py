"""The customer journey map: stages, touchpoints, drop-offs, pain points and solutions, built
from a store's own events (see ``docs/journey-map.md``)."""
