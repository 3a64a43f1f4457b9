"""The all-in-one process's console calls the services it serves itself, on its own port."""
from services.common.config import load_config
from services.common.runner import served_here


def test_the_console_calls_this_process_on_its_port_unless_told_otherwise():
    config = load_config(env={}, HTTP_PORT="47001")
    here = served_here(config, ["intake", "routing", "console"], {
        "CONSOLE_ROUTING_URL": "http://routing:8000"})
    assert here["CONSOLE_INTAKE_URL"] == "http://127.0.0.1:47001"
    assert here["CONSOLE_ROUTING_URL"] == config["CONSOLE_ROUTING_URL"]  # the environment's
    assert here["CONSOLE_SLA_URL"] == config["CONSOLE_SLA_URL"]  # not served here


def test_a_process_without_the_console_keeps_its_config():
    config = load_config(env={}, HTTP_PORT="47001")
    assert served_here(config, ["intake", "routing"], {}) == config
