"""Data in: the event model (Segment spec), normalisation, identity, importers, the sample store."""
