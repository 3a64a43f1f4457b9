"""Reporting: aggregates built from events, and the reports managers read (design §3)."""
