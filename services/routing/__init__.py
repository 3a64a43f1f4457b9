"""Routing: the organisation directory, category catalogue, jurisdiction rules and case work."""
