"""SLA: policies, calendars, and a clock per open case that fires warnings, breaches and
escalations (design §3)."""
