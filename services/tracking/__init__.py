"""Tracking: the public read model and its lookup, citizen pages, the muhtar portal, Open311."""
