"""Logs never carry personal data, even when code passes it by mistake."""
import json
import logging

from services.common.logs import JsonFormatter, scrub


def test_tckn_phone_and_email_shapes_are_masked():
    text = scrub("tckn 10000000146, tel +90 555 111 22 33 / 0555 111 2233, mail ali@example.com")
    assert "10000000146" not in text
    assert "555 111 22 33" not in text and "0555 111 2233" not in text
    assert "ali@example.com" not in text
    assert text.count("[phone]") == 2


def test_json_log_lines_mask_extra_fields_too():
    record = logging.makeLogRecord({"msg": "citizen %s", "args": ("10000000146",),
                                    "levelname": "INFO", "phone": "05551112233"})
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "citizen [tckn]"
    assert line["phone"] == "[phone]"


def test_drivers_that_log_whole_messages_stay_quiet_even_at_debug():
    import logging

    from services.common.logs import configure_logging

    configure_logging("DEBUG")
    try:
        # pymongo logs every command and reply whole, nameko every RPC's arguments.
        for name in ("pymongo", "pymongo.command", "nameko", "nameko.rpc"):
            assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    finally:
        configure_logging("INFO")
