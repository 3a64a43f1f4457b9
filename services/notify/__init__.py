"""Notify: templates, channel preferences and opt-outs, the outbound message log (design §3)."""
