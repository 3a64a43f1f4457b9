"""Structured (JSON-lines) logging that never carries personal data.

Every record passes a scrubber that masks anything shaped like a TC Kimlik No, a phone number or
an e-mail address — in the message and in `extra` fields — as a last line of defence; code is
still expected not to log such things in the first place.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_PII = [
    (re.compile(r"(?<!\d)[1-9]\d{10}(?!\d)"), "[tckn]"),  # a TCKN never starts with 0
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "[email]"),
    (re.compile(r"(?<![\w])\+?(?:90)?[\s-]?\(?0?5\d{2}\)?[\s-]?\d{3}[\s-]?\d{2}[\s-]?\d{2}(?!\d)"),
     "[phone]"),
]
_STANDARD = set(vars(logging.makeLogRecord({})))


def scrub(text: str) -> str:
    """Mask TCKN-, phone- and e-mail-shaped substrings."""
    for pattern, mask in _PII:
        text = pattern.sub(mask, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stderr as scrubbed JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # eventlet.wsgi and kombu are chatty at INFO and may echo request lines with codes in them
    logging.getLogger("eventlet.wsgi").setLevel(logging.WARNING)
    logging.getLogger("kombu").setLevel(logging.WARNING)
    # nameko logs RPC arguments and replies at DEBUG: one-time codes and phone numbers.
    logging.getLogger("nameko").setLevel(max(logging.INFO, root.level))
    # pymongo logs every command and reply whole at DEBUG: tracking codes, names, phones.
    logging.getLogger("pymongo").setLevel(max(logging.INFO, root.level))
    # urllib3 (under notify's SMS gateway) logs each request line at DEBUG: a gateway taking
    # its fields in the query would put the number, the text and its password there.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, root.level))
