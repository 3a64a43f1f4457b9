"""Tracking: the public read model (status + timeline per tracking code) and its lookup API."""
