"""Static checks of the deployment files in deploy/.

No Docker is needed: deploy/compose.yaml is parsed with PyYAML, deploy/nginx.conf
with regular expressions (prefix routing is resolved the way nginx does it:
an exact ``=`` match wins, otherwise the longest matching prefix), and
deploy/Dockerfile line by line.
"""

import ast
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

APP_SERVICES = ("intake", "routing", "sla", "notify", "tracking", "reporting", "console")
INFRA_SERVICES = ("rabbitmq", "mongo")
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
    return [match.groupdict() for match in LOCATION.finditer(_nginx_text())]


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


def test_stack_has_the_six_services_the_broker_the_database_and_a_proxy(
    services, proxy_name
):
    for name in APP_SERVICES + INFRA_SERVICES:
        assert name in services, f"compose.yaml lacks the {name} service"
    assert proxy_name not in APP_SERVICES + INFRA_SERVICES


def test_every_service_has_a_healthcheck_and_restart_policy(services):
    for name, service in services.items():
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
        assert env["AMQP_URI"].startswith("amqp://")
        assert "@rabbitmq:5672" in env["AMQP_URI"]
        assert env["MONGO_URI"].startswith("mongodb://mongo:27017")
        assert "replicaSet=rs0" in env["MONGO_URI"]


def test_each_app_service_uses_its_own_database(services):
    databases = [_environment(services[name])["MONGO_DB"] for name in APP_SERVICES]
    assert len(set(databases)) == len(APP_SERVICES), databases
    for name, database in zip(APP_SERVICES, databases, strict=True):
        assert database == f"acikkapi_{name}"


def test_app_services_start_only_after_rabbitmq_and_mongo_are_healthy(services):
    for name in APP_SERVICES:
        depends_on = services[name].get("depends_on")
        assert isinstance(depends_on, dict), f"{name} needs long-form depends_on"
        for dependency in INFRA_SERVICES:
            assert dependency in depends_on, f"{name} does not wait for {dependency}"
            condition = depends_on[dependency].get("condition")
            assert condition == "service_healthy", f"{name} -> {dependency}"


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
        if "AMQP_URI" in env:
            credentials = env["AMQP_URI"].split("://", 1)[1].rsplit("@", 1)[0]
            reference = REQUIRED_REFERENCE.pattern
            assert re.fullmatch(
                f"{reference}:{reference}".replace("?P<name>", ""), credentials
            ), f"{name}.AMQP_URI embeds a literal credential: {credentials}"
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


def test_mongo_runs_as_a_single_node_replica_set_it_initiates_itself(services):
    mongo = services["mongo"]
    command = _command(mongo)
    assert "--replSet" in command
    assert command[command.index("--replSet") + 1] == "rs0"
    probe = " ".join(_healthcheck_command(mongo))
    assert "mongosh" in probe
    assert "rs.initiate" in probe
    assert "host:'mongo:27017'" in probe


def test_rabbitmq_healthcheck_pings_the_broker(services):
    probe = _healthcheck_command(services["rabbitmq"])
    assert probe[:3] == ["rabbitmq-diagnostics", "-q", "ping"]


def test_broker_and_database_data_live_on_named_volumes(compose, services):
    named = set(compose.get("volumes") or {})
    expected_targets = {"mongo": "/data/db", "rabbitmq": "/var/lib/rabbitmq"}
    for name, target in expected_targets.items():
        mounts = [str(volume).split(":") for volume in services[name]["volumes"]]
        sources = [mount[0] for mount in mounts if mount[1] == target]
        assert sources and sources[0] in named, f"{name} {target} is not a named volume"


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


def test_proxy_publishes_port_8080_with_the_nginx_conf_mounted(services, proxy_name):
    proxy = services[proxy_name]
    ports = [_expand_defaults(str(port)) for port in proxy.get("ports", [])]
    assert any(port.split(":")[-2:] == ["8080", "8080"] for port in ports), ports
    mounts = [str(volume).split(":") for volume in proxy.get("volumes", [])]
    assert any(
        mount[0] == "./nginx.conf" and mount[1] == "/etc/nginx/nginx.conf"
        for mount in mounts
    ), mounts
    assert "/healthz" in " ".join(_healthcheck_command(proxy))


# ---------------------------------------------------------------------------
# nginx.conf
# ---------------------------------------------------------------------------


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


def test_dockerfile_has_a_healthcheck_against_health():
    checks = [args for key, args in _dockerfile_instructions() if key == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "urllib" in checks[0] and "/health" in checks[0]
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
