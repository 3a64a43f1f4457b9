"""Configuration from the environment, read once by the runner (never at import time).

The same dict is nameko's container config and each Flask app's `ACIKKAPI` config, so both sides
of a service see the same store, broker and secrets. Defaults suit the one-command local run.

Any setting may instead name a file holding its value, `<NAME>_FILE` (Docker and Kubernetes
secrets mounted as files): the secret then never sits in the process's environment, where
`docker inspect` and /proc/<pid>/environ would show it. Setting both is refused.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The local run's marker value; refused with a real database.
DEV_SECRET = "dev-only-not-secret-local-run-only!"  # noqa: S105

DEFAULTS: dict[str, str] = {
    "AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/",
    # The embedded server of `make run` and the tests (scripts/ensure-ferretdb.sh).
    "MONGO_URI": "mongodb://127.0.0.1:27018/",
    "HTTP_HOST": "127.0.0.1",
    "HTTP_PORT": "8000",
    "STAFF_TOKEN_SECRET": DEV_SECRET,
    "CODE_PEPPER": DEV_SECRET,
    "LINK_SECRET": DEV_SECRET,
    "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
    # "quorum" on a RabbitMQ cluster: the durable queues are replicated and dead-letter
    # at-least-once (services/common/topology.py; any other value stops the start there).
    # Changing it needs the old queues deleted.
    "AMQP_QUEUE_TYPE": "classic",
    # How long the readiness probe waits for the broker (seconds).
    "READY_TIMEOUT_SECONDS": "3",
    "EVENT_MAX_ATTEMPTS": "5",
    "EVENT_RETRY_DELAY_MS": "1000",
    # Batched handlers (reporting): events per batch at most, how long a quiet bus waits for
    # more after the first, and how many unacked messages each of their queues may hold.
    "EVENT_BATCH_SIZE": "20000",
    "EVENT_BATCH_LINGER_MS": "50",
    "EVENT_BATCH_PREFETCH": "20000",
    "OUTBOX_SWEEP_SECONDS": "5",
    "OUTBOX_GRACE_SECONDS": "2",
    "ORGANISATION_PATH": str(ROOT / "data" / "sample" / "organisation.yaml"),
    "CATALOGUE_PATH": str(ROOT / "data" / "sample" / "categories.yaml"),
    # How often intake and tracking look for catalogue changes another replica stored.
    "CATALOGUE_CHECK_SECONDS": "2",
    "SMS_PROVIDER": "dev",
    "EMAIL_PROVIDER": "dev",
    # How long notify gives a provider call, and then the recording of its outcome (the send
    # claim's lease is both plus a margin: services/notify/domain.py `SendTiming`).
    "NOTIFY_PROVIDER_TIMEOUT_SECONDS": "10",
    "NOTIFY_RECORD_SECONDS": "30",
    # Istanbul time; a citizen's step notices wait for its end ("off": nothing waits)
    "NOTIFY_QUIET_HOURS": "22:00-08:00",
    "MAIL_FROM": "Açık Kapı <acikkapi@example.gov.tr>",
    # SMS_PROVIDER=http: an HTTP SMS gateway, its request shape configured (README,
    # services/notify/providers.py `HttpSmsGateway`). Empty body: the default JSON body.
    "SMS_GATEWAY_URL": "",
    "SMS_GATEWAY_METHOD": "POST",
    "SMS_GATEWAY_FORMAT": "json",
    "SMS_GATEWAY_BODY": "",
    "SMS_GATEWAY_AUTH": "body",
    "SMS_GATEWAY_USERNAME": "",
    "SMS_GATEWAY_PASSWORD": "",
    "SMS_GATEWAY_TOKEN": "",
    "SMS_GATEWAY_SENDER": "",
    "SMS_GATEWAY_IDEMPOTENCY_HEADER": "Idempotency-Key",
    "SMS_GATEWAY_NUMBER_FORMAT": "e164",
    "SMS_GATEWAY_ID_FIELD": "message_id",
    "SMS_GATEWAY_TIMEOUT": "10",
    # EMAIL_PROVIDER=smtp. An empty port is the security mode's own: 587, 465 or 25.
    "SMTP_HOST": "",
    "SMTP_PORT": "",
    "SMTP_SECURITY": "starttls",
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_TIMEOUT": "10",
    "SMTP_VERIFY": "true",
    "SMTP_CA_FILE": "",
    "MUHTARS_PATH": str(ROOT / "data" / "sample" / "muhtars.yaml"),
    "DEFAULT_PROVINCE": "Mersin",
    "DUPLICATE_WINDOW_HOURS": "72",
    "DUPLICATE_DISTANCE_METRES": "50",
    "ATTACHMENT_MAX_BYTES": str(10 * 1024 * 1024),
    "CODE_DELIVERY_HOURS": "24",
    "IDEMPOTENCY_HOURS": "24",
    "CHANNEL_WEBHOOK_SECRET": "",
    "DEV_SINK_DIR": str(ROOT / "var" / "sink"),
    "LOG_LEVEL": "INFO",
    "MAX_WORKERS": "10",
    "REPORT_TIMEZONE": "Europe/Istanbul",
    "PROXY_HOPS": "0",
    # Open311 clients allowed to POST requests: comma-separated `client:key` (none by default).
    "OPEN311_API_KEYS": "",
    # The key citizens' TCKNs are hashed with (empty: CODE_PEPPER's).
    "CITIZEN_HASH_KEY": "",
    # Tracking's limits: lookups per client per 10 minutes, failures per client per 10 minutes,
    # failures per tracking code per 15 minutes, muhtar portal logins per client.
    "TRACK_CLIENT_LIMIT": "300",
    "TRACK_CLIENT_FAILURES": "30",
    "TRACK_CODE_FAILURES": "8",
    "PORTAL_CLIENT_LIMIT": "20",
    "OPEN311_CLIENT_LIMIT": "600",  # Open311 requests per client per minute
    "MAX_CONTENT_LENGTH": str(25 * 1024 * 1024),
    # How often routing looks for directory changes another replica stored.
    "DIRECTORY_CHECK_SECONDS": "2",
    # FerretDB: how often old version claims are purged, and the outbox relay's backstop sweep.
    "CLAIM_PURGE_SECONDS": "600",
    "OUTBOX_BACKSTOP_SECONDS": "300",
    # SLA: after how long a sweeper's claim on a wake-up bucket may be taken over (its
    # sweeper died); firing is idempotent, so a takeover never fires anything twice.
    "SLA_CLAIM_LEASE_SECONDS": "60",
    # The staff console (services/console): sessions end after this long without use, and
    # this long after login whatever happens; login failures per account and per client
    # address in 15 minutes before a lock.
    "CONSOLE_IDLE_MINUTES": "30",
    "CONSOLE_SESSION_HOURS": "8",
    "CONSOLE_LOGIN_FAILURES": "5",
    "CONSOLE_CLIENT_FAILURES": "20",
    # a password-reset link lives this long; requests for one per staff code and per client
    # address in the login throttle's 15-minute windows
    "CONSOLE_RESET_MINUTES": "30",
    "CONSOLE_RESET_REQUESTS": "3",
    "CONSOLE_RESET_CLIENT_REQUESTS": "10",
    # Where the console calls the services' staff APIs (the all-in-one run serves them all on
    # this port; `make run` and compose set each service's own).
    "CONSOLE_ROUTING_URL": "http://127.0.0.1:8000",
    "CONSOLE_SLA_URL": "http://127.0.0.1:8000",
    "CONSOLE_REPORTING_URL": "http://127.0.0.1:8000",
    "CONSOLE_INTAKE_URL": "http://127.0.0.1:8000",
    "CONSOLE_TRACKING_URL": "http://127.0.0.1:8000",
    "CONSOLE_NOTIFY_URL": "http://127.0.0.1:8000",
    # KVKK: the personal data of an application concluded this many days ago is anonymised
    # (intake, notify's log, reporting's call-back notes; services/common/retention.py).
    "KVKK_RETENTION_DAYS": "730",
    # "auto": the cookies are Secure except on this machine's loopback; "always"; "never".
    "CONSOLE_SECURE_COOKIES": "auto",
    # Local runs add the sample staff list (its passwords are public: README, "Staff console");
    # never with a database off this machine, and off in deploy/compose.yaml.
    "CONSOLE_SAMPLE_ACCOUNTS": "true",
    "CONSOLE_SAMPLE_ACCOUNTS_PATH": str(ROOT / "data" / "sample" / "staff_accounts.yaml"),
}


def load_config(env: dict[str, str] | None = None, **overrides: str) -> dict:
    """Build the config dict: defaults, then the environment, then explicit overrides."""
    env = os.environ if env is None else env
    config: dict = {key: _value(env, key, default) for key, default in DEFAULTS.items()}
    config.update({k: v for k, v in env.items() if k.startswith("MONGO_DB")})
    config.update(overrides)
    config["max_workers"] = int(config["MAX_WORKERS"])
    if not is_local(config["MONGO_URI"]):
        weak = [k for k in ("STAFF_TOKEN_SECRET", "CODE_PEPPER", "LINK_SECRET")
                if config[k] == DEV_SECRET]
        # The channel webhooks are public URLs: unsigned, anyone could post "SMS" in a
        # citizen's name and have our replies sent to any number.
        weak += [k for k in ("CHANNEL_WEBHOOK_SECRET",) if not config[k]]
        if weak:
            raise SystemExit(
                f"set real secrets for a database off this machine: {', '.join(weak)}")
    return config


def _value(env, key: str, default: str) -> str:
    """`key` from the environment, or from the file `<key>_FILE` names, else the default."""
    path = env.get(f"{key}_FILE")
    if not path:
        return env.get(key, default)
    if key in env:
        raise SystemExit(f"set {key} or {key}_FILE, not both")
    try:
        # a secret file written by an editor or `echo` ends in a newline that is not the secret's
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise SystemExit(f"{key}_FILE: cannot read {path}: {exc.strerror}") from None


def is_local(mongo_uri: str) -> bool:
    """Whether every host of `mongo_uri` is this machine's loopback (the local run's store).

    Only there may the development secrets and an unsigned webhook stand: anything a
    deployment reaches over a network needs real ones.
    """
    rest = mongo_uri.split("://", 1)[-1]
    hosts = rest.split("/", 1)[0].rpartition("@")[2]
    names = [h.rsplit(":", 1)[0] if not h.startswith("[") else h.split("]")[0] + "]"
             for h in hosts.split(",")]
    return bool(names) and all(n in ("127.0.0.1", "localhost", "[::1]") for n in names)
