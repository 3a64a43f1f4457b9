"""Configuration: the local run works with defaults; a database off this machine demands real
secrets."""
import pytest

from services.common.config import DEFAULTS, is_local, load_config

REAL = "mongodb://db.example:27017/"
SECRETS = {"STAFF_TOKEN_SECRET": "s1" * 20, "CODE_PEPPER": "s2" * 20, "LINK_SECRET": "s3" * 20,
           "CHANNEL_WEBHOOK_SECRET": "s4" * 20}


def test_the_local_run_uses_the_embedded_server_on_loopback_with_the_defaults():
    config = load_config(env={})
    assert config["MONGO_URI"] == "mongodb://127.0.0.1:27018/"
    assert config["CHANNEL_WEBHOOK_SECRET"] == ""  # the local run's webhooks are open


@pytest.mark.parametrize("uri", [
    "mongodb://127.0.0.1:27018/", "mongodb://localhost/", "mongodb://u:p@[::1]:27017/x",
    "mongodb://127.0.0.1:27017,localhost:27018/?replicaSet=rs0"])
def test_a_database_on_loopback_counts_as_the_local_run(uri):
    assert is_local(uri)
    load_config(env={"MONGO_URI": uri})  # no refusal


@pytest.mark.parametrize("uri", [
    REAL, "mongodb://127.0.0.1:27017,mongo-2:27017/?replicaSet=rs0",
    "mongodb+srv://cluster.example/", "mongodb://127.0.0.1.evil.example/"])
def test_any_host_off_this_machine_is_not_local(uri):
    assert not is_local(uri)


def test_a_real_database_refuses_every_development_secret_by_name():
    with pytest.raises(SystemExit) as refused:
        load_config(env={"MONGO_URI": REAL})
    for key in SECRETS:
        assert key in str(refused.value)


def test_a_real_database_needs_a_webhook_secret_for_the_channel_gateways():
    without = dict(SECRETS, CHANNEL_WEBHOOK_SECRET="")
    with pytest.raises(SystemExit, match="CHANNEL_WEBHOOK_SECRET"):
        load_config(env=dict(without, MONGO_URI=REAL))
    assert load_config(env=dict(SECRETS, MONGO_URI=REAL))["MONGO_URI"] == REAL


def test_every_setting_the_services_read_can_be_set_from_the_environment():
    """`load_config` takes from the environment only the settings `DEFAULTS` lists: one read
    anywhere else would be silently fixed in production (TRACK_CLIENT_LIMIT was)."""
    import re
    from pathlib import Path

    read = set()
    for path in Path("services").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        read |= set(re.findall(r'config(?:\.get\(|\[)"([A-Z][A-Z0-9_]+)"', text))
        read |= set(re.findall(r'_int\(config, "([A-Z][A-Z0-9_]+)"', text))
    # MONGO_DB_<SERVICE> are read by prefix; ACIKKAPI is Flask's slot for the whole dict
    per_service = {key for key in read if key.startswith("MONGO_DB")} | {"ACIKKAPI"}
    assert read - per_service - set(DEFAULTS) == set()
    env = dict.fromkeys(read - per_service - {"MONGO_URI"}, "7")  # the local server stays
    assert {key: load_config(env=env)[key] for key in env} == env


def test_a_setting_can_come_from_a_secret_file_without_its_trailing_newline(tmp_path):
    secret = tmp_path / "staff_token_secret"
    secret.write_text("from-a-mounted-secret-file-0123456789\n", encoding="utf-8")
    config = load_config({"STAFF_TOKEN_SECRET_FILE": str(secret)})
    assert config["STAFF_TOKEN_SECRET"] == "from-a-mounted-secret-file-0123456789"
    assert config["CODE_PEPPER"] == DEFAULTS["CODE_PEPPER"]


def test_a_secret_file_that_cannot_be_read_or_a_value_set_twice_stops_the_start(tmp_path):
    with pytest.raises(SystemExit, match="LINK_SECRET_FILE"):
        load_config({"LINK_SECRET_FILE": str(tmp_path / "missing")})
    (tmp_path / "pepper").write_text("x" * 40, encoding="utf-8")
    with pytest.raises(SystemExit, match="CODE_PEPPER or CODE_PEPPER_FILE"):
        load_config({"CODE_PEPPER": "y" * 40, "CODE_PEPPER_FILE": str(tmp_path / "pepper")})
