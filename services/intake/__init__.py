"""Intake: citizens, applications as submitted, tracking and security codes (design §3)."""
