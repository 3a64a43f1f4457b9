"""Static checks of the deployment files in deploy/.

No Docker is needed: deploy/compose.yaml is parsed with PyYAML, deploy/nginx.conf
with regular expressions (prefix routing is resolved the way nginx does it:
an exact ``=`` match wins, otherwise the longest matching prefix, within the
HTTPS server), and deploy/Dockerfile line by line. The files compose mounts
(RabbitMQ's cluster settings, the replica set's init script, Prometheus's
and Grafana's configuration) are read as the containers would find them;
Prometheus's with ``promtool check config`` when it is installed.
"""

import ast
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

APP_SERVICES = ("intake", "routing", "sla", "notify", "tracking", "reporting", "console")
RABBIT_NODES = ("rabbitmq-1", "rabbitmq-2", "rabbitmq-3")
MONGO_MEMBERS = ("mongo-1", "mongo-2", "mongo-3")
INFRA_SERVICES = (*RABBIT_NODES, *MONGO_MEMBERS, "mongo-init", "postgres", "ferretdb",
                  "prometheus", "grafana")
# Environment keys holding a secret: never a literal in compose.yaml.
SECRET_KEY = re.compile(r"(PASSWORD|PASS|SECRET|TOKEN|PEPPER|COOKIE|_KEY)$")
SECRET_VARIABLES = ("STAFF_TOKEN_SECRET", "CODE_PEPPER", "LINK_SECRET", "CHANNEL_WEBHOOK_SECRET")
RESTART_POLICIES = {"always", "unless-stopped", "on-failure"}

# Public path prefix -> service that must answer it (the design's URL map).
ROUTES = (
    ("/api/v1/applications", "intake"),
    ("/api/v1/channels", "intake"),
    ("/api/v1/citizens", "intake"),
    ("/basvuru", "intake"),
    ("/api/v1/cases", "routing"),
    ("/api/v1/directory", "routing"),
    ("/api/v1/categories", "routing"),
    ("/api/v1/sla", "sla"),
    ("/api/v1/notifications", "notify"),
    ("/api/v1/track", "tracking"),
    ("/open311/v2", "tracking"),
    ("/t/", "tracking"),
    ("/takip", "tracking"),
    ("/", "tracking"),
    ("/api/v1/reports", "reporting"),
    ("/console", "console"),
)

REQUIRED_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):?\?[^}]*\}")
DEFAULTED_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-(?P<default>[^}]*)\}")

LOCATION = re.compile(
    r"\blocation\s+(?:(?P<modifier>=|\^~|~\*?)\s+)?(?P<path>[^\s{]+)\s*"
    r"\{(?P<body>[^{}]*)\}"
)
UPSTREAM = re.compile(r"\bupstream\s+(?P<name>[\w-]+)\s*\{(?P<body>[^{}]*)\}")
PROXY_PASS = re.compile(
    r"\bproxy_pass\s+http://(?P<upstream>[\w-]+)(?P<uri>/[^\s;]*)?\s*;"
)
UPSTREAM_SERVER = re.compile(r"\bserver\s+(?P<host>[\w.-]+):(?P<port>\d+)\b")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _environment(service: dict) -> dict:
    """A service's environment as a dict, whichever form compose.yaml uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {pair[0]: pair[1] if len(pair) > 1 else None for pair in pairs}
    return dict(env)


def _command(service: dict) -> list:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else list(command)


def _expand_defaults(value: str) -> str:
    """Replace ``${VAR:-default}`` by its default, as compose would unset."""
    return DEFAULTED_REFERENCE.sub(lambda m: m.group("default"), value)


def _is_pinned(image: str) -> bool:
    """True for ``name:tag`` with a non-latest tag holding a digit, or a digest."""
    image = _expand_defaults(image)
    if "$" in image:
        return False
    if "@" in image:
        return re.fullmatch(r"sha256:[0-9a-f]{64}", image.split("@", 1)[1]) is not None
    last_component = image.rsplit("/", 1)[-1]
    if ":" not in last_component:
        return False
    tag = last_component.rsplit(":", 1)[1]
    return tag != "latest" and any(char.isdigit() for char in tag)


def _healthcheck_command(service: dict) -> list:
    healthcheck = service.get("healthcheck") or {}
    if healthcheck.get("disable"):
        return []
    test = healthcheck.get("test") or []
    if isinstance(test, str):
        return [test] if test.strip() else []
    if not test or test[0] == "NONE":
        return []
    return (
        [part for part in test[1:] if part] if test[0] in ("CMD", "CMD-SHELL") else []
    )


def _restart_policy(service: dict):
    deploy_policy = (service.get("deploy") or {}).get("restart_policy") or {}
    return service.get("restart") or deploy_policy.get("condition")


def _interpolate(value: str, env: dict) -> str:
    """``value`` as compose would substitute it from ``env`` (unset: the default, or empty)."""

    def substitute(match: re.Match) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        found = env.get(name)
        if operator in (":-", "-") and not found:
            return argument
        assert found is not None or operator is None, f"{name} is required"
        return found or ""

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}", substitute, value)


def _one_shots(services: dict) -> set:
    """Services that run once and exit (the others wait for their success)."""
    return {
        name
        for name, service in services.items()
        if (service.get("labels") or {}).get("acikkapi.one-shot") == "true"
    }


def _mounts(service: dict) -> dict:
    """A service's short-form volumes as {target: source}."""
    pairs = (str(volume).split(":") for volume in service.get("volumes", []))
    return {pair[1]: pair[0] for pair in pairs}


def _server_blocks() -> list:
    """The ``server { … }`` blocks of nginx.conf (braces matched), as text."""
    text = _nginx_text()
    blocks = []
    for match in re.finditer(r"\bserver\s*\{", text):
        depth, index = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
        blocks.append(text[match.end():index - 1])
    return blocks


def _tls_server() -> str:
    servers = [block for block in _server_blocks() if re.search(r"listen\s+\S+\s+ssl", block)]
    assert len(servers) == 1, "expected exactly one TLS server in nginx.conf"
    return servers[0]


def _plain_server() -> str:
    servers = [block for block in _server_blocks() if not re.search(r"\bssl\b", block)]
    assert len(servers) == 1, "expected exactly one plain-HTTP server in nginx.conf"
    return servers[0]


def _strings(node):
    """Every string value in a parsed YAML document."""
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def _nginx_text() -> str:
    """nginx.conf without comments, quoted strings blanked (they may hold braces)."""
    text = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^\s*#.*$|\s#.*$", "", text)
    return re.sub(r"'[^']*'|\"[^\"]*\"", '""', text)


def _dockerfile_instructions() -> list:
    """(INSTRUCTION, arguments) pairs with line continuations joined."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    with open(DEPLOY / "compose.yaml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def proxy_name(services) -> str:
    names = [
        name
        for name, service in services.items()
        if "nginx" in str(service.get("image", ""))
    ]
    assert len(names) == 1, f"expected exactly one nginx proxy, found {names}"
    return names[0]


@pytest.fixture(scope="module")
def locations() -> list:
    """The HTTPS server's locations: the public site (plain HTTP only redirects)."""
    return [match.groupdict() for match in LOCATION.finditer(_tls_server())]


@pytest.fixture(scope="module")
def upstreams() -> dict:
    return {
        match.group("name"): match.group("body")
        for match in UPSTREAM.finditer(_nginx_text())
    }


def _matching_location(locations: list, uri: str) -> dict:
    """The location nginx picks for ``uri`` (exact match, else longest prefix)."""
    assert not any(loc["modifier"] in ("~", "~*") for loc in locations), (
        "regex locations are not modelled by this test; keep to prefix routing"
    )
    for location in locations:
        if location["modifier"] == "=" and location["path"] == uri:
            return location
    candidates = [
        location
        for location in locations
        if location["modifier"] != "=" and uri.startswith(location["path"])
    ]
    assert candidates, f"no nginx location matches {uri}"
    return max(candidates, key=lambda location: len(location["path"]))


# ---------------------------------------------------------------------------
# compose.yaml
# ---------------------------------------------------------------------------


def test_stack_has_the_services_the_broker_the_stores_monitoring_and_a_proxy(
    services, proxy_name
):
    for name in APP_SERVICES + INFRA_SERVICES:
        assert name in services, f"compose.yaml lacks the {name} service"
    assert proxy_name not in APP_SERVICES + INFRA_SERVICES


def test_every_service_has_a_healthcheck_and_restart_policy(services):
    one_shots = _one_shots(services)
    assert one_shots == {"mongo-init"}
    for name, service in services.items():
        if name in one_shots:
            # it exits when done: what others wait for is its success, and a failure
            # is retried
            assert service.get("restart") == "on-failure"
            continue
        assert _healthcheck_command(service), f"{name} has no healthcheck test"
        assert _restart_policy(service) in RESTART_POLICIES, (
            f"{name} has no restart policy"
        )


def test_every_image_is_pinned_to_a_version_or_digest(services):
    for name, service in services.items():
        image = service.get("image")
        if image is None:
            assert "build" in service, f"{name} has neither image nor build"
            continue
        assert _is_pinned(str(image)), f"{name} uses an unpinned image: {image}"


def test_image_pin_check_rejects_latest_and_untagged_images():
    assert _is_pinned("mongo:7.0.16")
    assert _is_pinned("acikkapi/app:${ACIKKAPI_IMAGE_TAG:-0.1.0}")
    assert _is_pinned("nginx@sha256:" + "a" * 64)
    assert not _is_pinned("mongo")
    assert not _is_pinned("mongo:latest")
    assert not _is_pinned("registry.local:5000/mongo")
    assert not _is_pinned("nginx:alpine")
    assert not _is_pinned("acikkapi/app:${TAG}")


def test_app_services_are_built_from_the_shared_dockerfile(services):
    for name in APP_SERVICES:
        build = services[name].get("build")
        assert isinstance(build, dict), f"{name} is not built from source"
        assert build.get("context") == ".."
        assert build.get("dockerfile") == "deploy/Dockerfile"


def test_each_app_service_runs_its_own_module(services):
    for name in APP_SERVICES:
        command = _command(services[name])
        assert "-m" in command, f"{name} command does not use python -m"
        module = command[command.index("-m") + 1]
        assert module == f"services.{name}", f"{name} runs {module}"


def test_each_app_service_gets_bus_database_and_port_settings(services):
    for name in APP_SERVICES:
        env = _environment(services[name])
        for key in ("AMQP_URI", "MONGO_URI", "MONGO_DB", "HTTP_PORT"):
            assert env.get(key), f"{name} lacks {key}"
        assert str(env["HTTP_PORT"]) == "8000"
        assert env.get("HTTP_HOST") == "0.0.0.0", f"{name} listens on loopback only"
        # one address per cluster node, kombu's failover list
        addresses = env["AMQP_URI"].split(";")
        assert all(address.startswith("amqp://") for address in addresses)
        assert [a.rsplit("@", 1)[1] for a in addresses] == [
            f"{node}:5672/" for node in RABBIT_NODES]
        assert env.get("AMQP_QUEUE_TYPE") == "quorum", f"{name} declares classic queues"
        uri = _interpolate(env["MONGO_URI"], {"MONGO_APP_USER": "u", "MONGO_APP_PASSWORD": "p"})
        assert uri == ("mongodb://u:p@mongo-1:27017,mongo-2:27017,mongo-3:27017/"
                       "?replicaSet=rs0&authSource=admin")


def test_each_app_service_uses_its_own_database(services):
    databases = [_environment(services[name])["MONGO_DB"] for name in APP_SERVICES]
    assert len(set(databases)) == len(APP_SERVICES), databases
    for name, database in zip(APP_SERVICES, databases, strict=True):
        assert database == f"acikkapi_{name}"


def test_app_services_start_only_after_the_broker_and_the_store_are_ready(services):
    for name in APP_SERVICES:
        depends_on = services[name].get("depends_on")
        assert isinstance(depends_on, dict), f"{name} needs long-form depends_on"
        for node in RABBIT_NODES:
            assert depends_on[node].get("condition") == "service_healthy", f"{name} -> {node}"
        # the replica set once initiated, or FerretDB: whichever the profile runs
        assert depends_on["mongo-init"] == {
            "condition": "service_completed_successfully", "required": False}
        assert depends_on["ferretdb"] == {"condition": "service_healthy", "required": False}


def test_secrets_are_required_variable_references_not_literals(services):
    secret_keys = (*SECRET_VARIABLES, "RABBITMQ_DEFAULT_PASS")
    seen = set()
    for name, service in services.items():
        env = _environment(service)
        for key in secret_keys:
            if key in env:
                seen.add(key)
                value = str(env[key] or "")
                assert REQUIRED_REFERENCE.fullmatch(value), (
                    f"{name}.{key} must be a ${{VAR:?...}} reference, not {value!r}"
                )
        reference = REQUIRED_REFERENCE.pattern.replace("?P<name>", "")
        for uri in env.get("AMQP_URI", "").split(";") if "AMQP_URI" in env else []:
            credentials = uri.split("://", 1)[1].rsplit("@", 1)[0]
            assert re.fullmatch(f"{reference}:{reference}", credentials), (
                f"{name}.AMQP_URI embeds a literal credential: {credentials}")
        if "MONGO_URI" in env:
            credentials = env["MONGO_URI"].split("://", 1)[1].split("}@", 1)[0] + "}"
            assert re.fullmatch(f"{reference}:{reference}", credentials), (
                f"{name}.MONGO_URI embeds a literal credential: {credentials}")
    assert seen >= set(SECRET_VARIABLES), f"secrets never passed: {seen}"


def test_every_app_service_gets_every_secret_from_the_environment(services):
    # services.common.config refuses to start against a real database while any
    # secret is left at its development default (or, for the webhook secret, empty),
    # so every service needs them all, each a required reference to its variable.
    for name in APP_SERVICES:
        env = _environment(services[name])
        for key in SECRET_VARIABLES:
            assert key in env, f"{name} lacks {key}"
            match = REQUIRED_REFERENCE.fullmatch(str(env[key]))
            assert match and match.group("name") == key, f"{name}.{key}"


def test_every_secret_anywhere_is_a_variable_reference_never_a_literal(services):
    # required secrets are `${VAR:?}`; optional ones (a gateway's credentials) `${VAR:-}`,
    # empty unless set in deploy/.env
    checked = 0
    for name, service in services.items():
        for key, value in _environment(service).items():
            if SECRET_KEY.search(key):
                checked += 1
                value = str(value or "")
                assert REQUIRED_REFERENCE.fullmatch(value) or re.fullmatch(
                    r"\$\{[A-Za-z_][A-Za-z0-9_]*:-\}", value
                ), f"{name}.{key} is not a variable reference: {value!r}"
    assert checked >= 30


def test_compose_file_contains_no_literal_secret_assignment():
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    for key in SECRET_VARIABLES:
        for match in re.finditer(rf"(?<!\{{)\b{key}\s*[:=]\s*(?P<value>\S+)", text):
            value = match.group("value").strip("\"'")
            assert value.startswith("${"), f"literal value for {key}: {value}"


def test_env_example_lists_every_required_variable(compose):
    required = {
        match.group("name")
        for value in _strings(compose)
        for match in REQUIRED_REFERENCE.finditer(value)
    }
    assert required >= set(SECRET_VARIABLES)
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    defined = set(re.findall(r"(?m)^([A-Za-z_][A-Za-z0-9_]*)=", example))
    assert required <= defined, f"missing from .env.example: {required - defined}"


def test_mongo_is_a_replica_set_of_three_members_with_a_key(services):
    for member in MONGO_MEMBERS:
        service = services[member]
        assert service.get("profiles") == ["mongodb"]
        assert service.get("hostname") == member
        command = _command(service)
        assert command[command.index("--replSet") + 1] == "rs0"
        key_file = command[command.index("--keyFile") + 1]
        # the key is written from the secret variable by the entrypoint, readable by the owner
        script = " ".join(service["entrypoint"])
        assert f"> {key_file}" in script and "umask 077" in script
        assert "exec docker-entrypoint.sh" in script
        env = _environment(service)
        match = REQUIRED_REFERENCE.fullmatch(env["ACIKKAPI_REPLICA_SET_KEY"])
        assert match and match.group("name") == "MONGO_REPLICA_SET_KEY"
        assert "mongosh" in _healthcheck_command(service)
    # only the member the set is initiated from creates the administrator: the others
    # must be empty to join
    assert "MONGO_INITDB_ROOT_PASSWORD" in _environment(services["mongo-1"])
    for member in MONGO_MEMBERS[1:]:
        assert "MONGO_INITDB_ROOT_PASSWORD" not in _environment(services[member])


def test_a_one_shot_initiates_the_replica_set_idempotently(services):
    init = services["mongo-init"]
    assert init.get("profiles") == ["mongodb"]
    for member in MONGO_MEMBERS:
        assert init["depends_on"][member]["condition"] == "service_healthy"
    command = _command(init)
    assert command[:2] == ["mongosh", "--nodb"]
    script_path = command[-1]
    source = _mounts(init)[script_path]
    script = (DEPLOY / source).read_text(encoding="utf-8")
    hosts = re.search(r"MEMBERS\s*=\s*\[([^\]]*)\]", script).group(1)
    assert re.findall(r'"([\w.-]+:\d+)"', hosts) == [f"{m}:27017" for m in MONGO_MEMBERS]
    assert 'SET = "rs0"' in script
    # initiated only when the set says it is not yet; the account created or updated
    assert "NotYetInitialized" in script and "replSetInitiate" in script
    assert "getUser" in script and "createUser" in script and "updateUser" in script
    # credentials from the environment, not the command line
    assert "process.env" in script and "@" not in " ".join(command)
    env = _environment(init)
    for key in ("MONGO_ROOT_USER", "MONGO_ROOT_PASSWORD", "MONGO_APP_USER",
                "MONGO_APP_PASSWORD"):
        match = REQUIRED_REFERENCE.fullmatch(env[key])
        assert match and match.group("name") == key


def test_rabbitmq_is_a_cluster_of_three_nodes_sharing_a_secret_cookie(services):
    conf = (DEPLOY / "rabbitmq" / "cluster.conf").read_text(encoding="utf-8")
    settings = dict(
        (part.strip() for part in line.split("=", 1))
        for line in conf.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    assert settings["cluster_formation.peer_discovery_backend"] == "classic_config"
    listed = sorted(v for k, v in settings.items()
                    if k.startswith("cluster_formation.classic_config.nodes."))
    assert listed == [f"rabbit@{node}" for node in RABBIT_NODES]
    images = {services[node]["image"] for node in RABBIT_NODES}
    assert len(images) == 1 and _is_pinned(images.pop())
    for node in RABBIT_NODES:
        service = services[node]
        assert service.get("hostname") == node  # the node name is rabbit@<hostname>
        assert _mounts(service).get("/etc/rabbitmq/conf.d/20-cluster.conf") == (
            "./rabbitmq/cluster.conf")
        match = REQUIRED_REFERENCE.fullmatch(_environment(service)["ACIKKAPI_ERLANG_COOKIE"])
        assert match and match.group("name") == "RABBITMQ_ERLANG_COOKIE"
        script = " ".join(service["entrypoint"])
        assert "> /var/lib/rabbitmq/.erlang.cookie" in script and "umask 077" in script
        assert "exec docker-entrypoint.sh rabbitmq-server" in script


def test_rabbitmq_healthcheck_pings_each_node(services):
    for node in RABBIT_NODES:
        probe = _healthcheck_command(services[node])
        assert probe[:3] == ["rabbitmq-diagnostics", "-q", "ping"]


def test_broker_and_database_data_live_on_named_volumes(compose, services):
    named = set(compose.get("volumes") or {})
    expected = {**dict.fromkeys(RABBIT_NODES, "/var/lib/rabbitmq"),
                **dict.fromkeys(MONGO_MEMBERS, "/data/db"),
                "postgres": "/var/lib/postgresql/data"}
    sources = set()
    for name, target in expected.items():
        source = _mounts(services[name]).get(target)
        assert source in named, f"{name} {target} is not a named volume"
        sources.add(source)
    assert len(sources) == len(expected), "two nodes share a data volume"


def test_each_app_service_runs_replicas_set_by_one_variable(services):
    for name in APP_SERVICES:
        replicas = str((services[name].get("deploy") or {}).get("replicas"))
        assert replicas == "${ACIKKAPI_REPLICAS:-2}", f"{name}: {replicas}"
        assert _expand_defaults(replicas) == "2"


def test_app_healthchecks_ask_for_readiness(services):
    for name in APP_SERVICES:
        probe = " ".join(_healthcheck_command(services[name]))
        assert "/health/ready" in probe, name


def test_notify_passes_every_gateway_setting_through_with_the_code_defaults(services):
    from services.common.config import DEFAULTS

    env = _environment(services["notify"])
    keys = [key for key in DEFAULTS if key.startswith(("SMS_", "SMTP_"))] + [
        "EMAIL_PROVIDER", "MAIL_FROM"]
    assert len(keys) > 20
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for key in keys:
        assert str(env.get(key)) == f"${{{key}:-{DEFAULTS[key]}}}", f"notify.{key}"
        assert re.search(rf"(?m)^#? ?{key}=", example), f"{key} not in .env.example"
        assert f"`{key}`" in readme, f"{key} not in deploy/README.md"


def test_the_ferretdb_postgres_profile_replaces_mongodb(services):
    ferretdb, postgres = services["ferretdb"], services["postgres"]
    assert ferretdb["profiles"] == postgres["profiles"] == ["ferretdb-postgres"]
    assert re.fullmatch(r"ghcr\.io/ferretdb/ferretdb:1\.24\.\d+", ferretdb["image"])
    assert re.fullmatch(r"postgres:\d+\.\d+(-\w+)?", postgres["image"])
    url = _environment(ferretdb)["FERRETDB_POSTGRESQL_URL"]
    assert _interpolate(url, {"MONGO_APP_USER": "u", "MONGO_APP_PASSWORD": "p"}) == (
        "postgres://u:p@postgres:5432/ferretdb")
    assert ferretdb["depends_on"]["postgres"]["condition"] == "service_healthy"
    # the PostgreSQL role is the services' login, which FerretDB passes through
    env = _environment(postgres)
    assert "${MONGO_APP_USER:?" in env["POSTGRES_USER"]
    assert "${MONGO_APP_PASSWORD:?" in env["POSTGRES_PASSWORD"]
    # with the settings .env.example shows for the profile, the services reach FerretDB
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    shown = dict(re.findall(r"(?m)^# (MONGO_HOSTS|MONGO_URI_OPTIONS)=(\S+)$", example))
    assert shown == {"MONGO_HOSTS": "ferretdb:27017", "MONGO_URI_OPTIONS": "authMechanism=PLAIN"}
    uri = _interpolate(_environment(services["intake"])["MONGO_URI"],
                       {"MONGO_APP_USER": "u", "MONGO_APP_PASSWORD": "p", **shown})
    assert uri == "mongodb://u:p@ferretdb:27017/?authMechanism=PLAIN"
    # and the default profile is the replica set
    assert re.search(r"(?m)^COMPOSE_PROFILES=mongodb$", example)


def test_prometheus_scrapes_every_replica_of_every_service_and_loads_the_rules(services):
    prometheus = services["prometheus"]
    mounts = _mounts(prometheus)
    config_path = DEPLOY / mounts["/etc/prometheus/prometheus.yml"]
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    assert config["rule_files"] == ["/etc/prometheus/rules.yaml"]
    assert mounts["/etc/prometheus/rules.yaml"] == "./prometheus/rules.yaml"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name in APP_SERVICES:
        (discovery,) = jobs[name]["dns_sd_configs"]
        assert discovery == {"names": [name], "type": "A", "port": 8000,
                             "refresh_interval": "30s"}
        assert jobs[name].get("metrics_path", "/metrics") == "/metrics"
    targets = jobs["rabbitmq"]["static_configs"][0]["targets"]
    assert targets == [f"{node}:15692" for node in RABBIT_NODES]
    # the replica set's member health, which the "member down" alert reads
    assert jobs["mongodb"]["static_configs"][0]["targets"] == ["mongodb-exporter:9216"]
    exporter = services["mongodb-exporter"]
    assert "--collector.replicasetstatus" in exporter["command"]
    assert "replicaSet=rs0" in _environment(exporter)["MONGODB_URI"]
    rules = (DEPLOY / "prometheus" / "rules.yaml").read_text(encoding="utf-8")
    assert "mongodb_rs_members_health" in rules


def test_prometheus_config_passes_promtool(tmp_path):
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian: prometheus)")
    config = yaml.safe_load(
        (DEPLOY / "prometheus" / "compose-prometheus.yml").read_text(encoding="utf-8"))
    rules = DEPLOY / "prometheus" / "rules.yaml"
    # the rules file is checked with its own test; here only that the path resolves
    config["rule_files"] = [str(rules)] if rules.exists() else []
    checked = tmp_path / "prometheus.yml"
    checked.write_text(yaml.safe_dump(config), encoding="utf-8")
    done = subprocess.run(["promtool", "check", "config", str(checked)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(services):
    grafana = services["grafana"]
    mounts = _mounts(grafana)
    provisioning = DEPLOY / mounts["/etc/grafana/provisioning"]
    (datasource,) = yaml.safe_load(
        (provisioning / "datasources" / "prometheus.yaml").read_text(encoding="utf-8")
    )["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(
        (provisioning / "dashboards" / "acikkapi.yaml").read_text(encoding="utf-8")
    )["providers"]
    folder = provider["options"]["path"]
    assert mounts[f"{folder}/acikkapi.json"] == "./grafana/acikkapi.json"
    match = REQUIRED_REFERENCE.fullmatch(
        _environment(grafana)["GF_SECURITY_ADMIN_PASSWORD"])
    assert match and match.group("name") == "GRAFANA_ADMIN_PASSWORD"
    # neither is published beyond the host's loopback
    for name in ("prometheus", "grafana"):
        for port in services[name].get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"


def test_notify_keeps_its_dev_sink_on_a_volume(compose, services):
    notify = services["notify"]
    sink = _environment(notify)["DEV_SINK_DIR"]
    assert sink == "/var/lib/acikkapi/sink"
    mounts = [str(volume).split(":") for volume in notify.get("volumes", [])]
    assert any(mount[1] == sink and mount[0] in compose["volumes"] for mount in mounts)


def test_app_services_have_no_fixed_names_or_host_ports_so_they_scale(services):
    for name in APP_SERVICES:
        assert "container_name" not in services[name], name
        assert "ports" not in services[name], name


def test_proxy_publishes_http_and_https_with_the_nginx_conf_mounted(services, proxy_name):
    proxy = services[proxy_name]
    ports = [_expand_defaults(str(port)) for port in proxy.get("ports", [])]
    assert sorted(ports) == ["443:8443", "80:8080"], ports
    mounts = [str(volume).split(":") for volume in proxy.get("volumes", [])]
    assert any(
        mount[0] == "./nginx.conf" and mount[1] == "/etc/nginx/nginx.conf"
        for mount in mounts
    ), mounts
    assert "/healthz" in " ".join(_healthcheck_command(proxy))


def test_proxy_gets_the_certificate_and_key_as_secrets_from_files(compose, services,
                                                                  proxy_name):
    assert services[proxy_name].get("secrets") == ["tls_certificate", "tls_key"]
    for name in ("tls_certificate", "tls_key"):
        source = compose["secrets"][name]
        assert set(source) == {"file"}, f"{name} must come from a file"
        assert not str(source["file"]).startswith("/"), "a path the README names"
    tls = _tls_server()
    assert re.search(r"\bssl_certificate\s+/run/secrets/tls_certificate\s*;", tls)
    assert re.search(r"\bssl_certificate_key\s+/run/secrets/tls_key\s*;", tls)
    # and never committed
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "deploy/tls/" in ignored and "deploy/.env" in ignored


# ---------------------------------------------------------------------------
# nginx.conf
# ---------------------------------------------------------------------------


def test_nginx_redirects_plain_http_to_https_except_its_own_healthz():
    plain = [match.groupdict() for match in LOCATION.finditer(_plain_server())]
    assert re.search(r"\blisten\s+8080\s*;", _plain_server())
    catch_all = _matching_location(plain, "/api/v1/applications")
    assert re.search(r"\breturn\s+301\s+https://\$host\$request_uri\s*;", catch_all["body"])
    assert not any(PROXY_PASS.search(location["body"]) for location in plain)
    healthz = _matching_location(plain, "/healthz")
    assert re.search(r"\breturn\s+200\b", healthz["body"])


def test_nginx_serves_https_with_hsts_and_modern_protocols():
    tls = _tls_server()
    assert re.search(r"\blisten\s+8443\s+ssl\s*;", tls)
    # read from the file itself: _nginx_text blanks quoted strings
    raw = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    server_at = re.search(r"listen\s+8443\s+ssl", raw).start()
    hsts = re.search(r'add_header\s+Strict-Transport-Security\s+"([^"]*)"\s+always\s*;',
                     raw[server_at:])
    assert hsts and "max-age=31536000" in hsts.group(1)
    assert "add_header" not in "".join(
        match.group("body") for match in LOCATION.finditer(tls)
    ), "an add_header in a location would drop HSTS there (nginx does not merge them)"
    protocols = re.search(r"\bssl_protocols\s+([^;]*);", _nginx_text())
    assert protocols and set(protocols.group(1).split()) == {"TLSv1.2", "TLSv1.3"}



@pytest.mark.parametrize(("prefix", "service"), ROUTES)
def test_nginx_routes_each_prefix_to_its_service(locations, prefix, service):
    assert any(
        location["path"] == prefix and location["modifier"] in (None, "^~")
        for location in locations
    ), f"nginx.conf has no location block for {prefix}"
    for uri in (prefix, prefix + ("x" if prefix.endswith("/") else "/x")):
        location = _matching_location(locations, uri)
        proxy_pass = PROXY_PASS.search(location["body"])
        assert proxy_pass, f"{uri} is not proxied (location {location['path']})"
        assert proxy_pass.group("upstream") == service, f"{uri} goes elsewhere"
        assert proxy_pass.group("uri") is None, f"{uri} is rewritten"


def test_nginx_upstreams_point_at_each_service_on_port_8000(upstreams):
    for name in APP_SERVICES:
        assert name in upstreams, f"no upstream block for {name}"
        servers = UPSTREAM_SERVER.findall(upstreams[name])
        assert servers == [(name, "8000")], f"upstream {name}: {servers}"


def test_nginx_serves_each_openapi_document_under_its_service_name(locations):
    for name in APP_SERVICES:
        location = _matching_location(locations, f"/_/{name}/openapi.json")
        proxy_pass = PROXY_PASS.search(location["body"])
        assert proxy_pass, f"/_/{name}/openapi.json is not proxied"
        assert proxy_pass.group("upstream") == name
        assert proxy_pass.group("uri") == "/openapi.json"


@pytest.mark.parametrize("uri", ["/metrics", "/metrics/", "/_/metrics"])
def test_nginx_does_not_expose_metrics(locations, uri):
    location = _matching_location(locations, uri)
    assert not PROXY_PASS.search(location["body"]), f"{uri} reaches a service"
    assert re.search(r"\breturn\s+40[34]\b", location["body"])


def test_nginx_answers_its_own_healthz(locations):
    location = _matching_location(locations, "/healthz")
    assert location["modifier"] == "="
    assert re.search(r"\breturn\s+200\b", location["body"])


def test_nginx_accepts_photo_uploads_and_compresses_json():
    text = _nginx_text()
    assert re.search(r"\bclient_max_body_size\s+25m\s*;", text)
    assert re.search(r"\bgzip\s+on\s*;", text)
    gzip_types = re.search(r"\bgzip_types\s+([^;]*);", text)
    assert gzip_types and "application/json" in gzip_types.group(1).split()


def test_nginx_forwards_client_address_and_request_id():
    text = _nginx_text()
    assert re.search(
        r"proxy_set_header\s+X-Forwarded-For\s+\$proxy_add_x_forwarded_for\s*;", text
    )
    request_id = re.search(r"proxy_set_header\s+X-Request-Id\s+\$(\w+)\s*;", text)
    assert request_id, "X-Request-Id is not forwarded"
    variable = request_id.group(1)
    if variable != "request_id":
        mapping = re.search(
            rf"\bmap\s+\$http_x_request_id\s+\${variable}\s*\{{([^}}]*)\}}", text
        )
        assert mapping and "$request_id" in mapping.group(1)


# ---------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------


def test_dockerfile_base_image_is_a_pinned_python_311():
    bases = [
        args.split()[-1] for key, args in _dockerfile_instructions() if key == "FROM"
    ]
    assert bases, "Dockerfile has no FROM"
    assert all(_is_pinned(base) for base in bases), bases
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", bases[-1]), bases[-1]


def test_dockerfile_has_a_healthcheck_against_readiness():
    checks = [args for key, args in _dockerfile_instructions() if key == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "urllib" in checks[0] and "/health/ready" in checks[0]
    assert "HTTP_PORT" in checks[0]


def test_dockerfile_runs_as_a_non_root_user_with_unbuffered_output():
    instructions = _dockerfile_instructions()
    users = [args for key, args in instructions if key == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    env = " ".join(args for key, args in instructions if key == "ENV")
    assert re.search(r"\bPYTHONUNBUFFERED=1\b", env)


def test_dockerfile_installs_the_runtime_dependencies_pinned_and_copies_the_sources():
    instructions = _dockerfile_instructions()
    copied = {part for key, args in instructions if key == "COPY" for part in args.split()[:-1]}
    assert {"requirements.lock", "requirements-runtime.in", "services/", "data/"} <= copied
    runs = " ".join(args for key, args in instructions if key == "RUN")
    assert "pip install --no-cache-dir -c requirements.lock -r requirements-runtime.in" in runs
    cmd = [args for key, args in instructions if key == "CMD"]
    assert cmd and "services.all" in cmd[-1]


# ---------------------------------------------------------------------------
# consistency with the code
# ---------------------------------------------------------------------------


def _declared_prefixes(name: str):
    """``PREFIXES`` of services/<name>/web.py read without importing it, or None."""
    source = ROOT / "services" / name / "web.py"
    if not source.exists():
        return None
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [getattr(node, "target", None)]
        )
        if any(isinstance(t, ast.Name) and t.id == "PREFIXES" for t in targets):
            try:
                return tuple(ast.literal_eval(node.value))
            except ValueError:
                return None
    return None


@pytest.mark.parametrize("name", APP_SERVICES)
def test_nginx_routes_every_prefix_a_service_declares_to_that_service(locations, name):
    prefixes = _declared_prefixes(name)
    if prefixes is None:
        pytest.skip(f"services/{name}/web.py declares no literal PREFIXES yet")
    for prefix in prefixes:
        location = _matching_location(locations, prefix)
        proxy_pass = PROXY_PASS.search(location["body"])
        assert proxy_pass and proxy_pass.group("upstream") == name, (
            f"{prefix} (declared by {name}) is not routed to {name} by nginx.conf"
        )


# ---------------------------------------------------------------------------
# schema and syntax of what compose reads
# ---------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification(compose):
    """Against the Compose Specification's JSON schema (compose-spec/compose-spec,
    schema/compose-spec.json, Apache-2.0; kept in tests/deploy so nothing is downloaded),
    as written and with every variable substituted as compose would (required ones set,
    optional ones at their defaults)."""
    import json

    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parent / "compose-spec.json").read_text("utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    required = {
        match.group("name"): "x"
        for value in _strings(compose)
        for match in REQUIRED_REFERENCE.finditer(value)
    }

    def substitute(node):
        if isinstance(node, dict):
            return {key: substitute(value) for key, value in node.items()}
        if isinstance(node, list):
            return [substitute(value) for value in node]
        if isinstance(node, str):  # `$$` is compose's escaped `$`
            return _interpolate(node.replace("$$", "\0"), required).replace("\0", "$")
        return node

    substituted = substitute(compose)
    for document in (compose, substituted):
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(document)]
        assert not errors, errors[:5]
    assert str(substituted["services"]["intake"]["deploy"]["replicas"]) == "2"


def test_the_replica_set_script_is_valid_javascript():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    done = subprocess.run([node, "--check", str(DEPLOY / "mongo" / "replica-set.js")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_the_console_calls_each_staff_api_it_uses_on_that_service(services):
    """The console's pages call intake, routing, SLA, reporting, tracking and notify service
    to service (as `make run` and Kubernetes wire them), not through the proxy."""
    env = _environment(services["console"])
    for called in ("intake", "routing", "sla", "reporting", "tracking", "notify"):
        assert env[f"CONSOLE_{called.upper()}_URL"] == f"http://{called}:8000"
