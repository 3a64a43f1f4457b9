"""SLA: policies, calendars, one timer set per open case and its escalation level (design §3)."""
