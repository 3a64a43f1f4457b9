"""The Kubernetes manifests in deploy/k8s/: rendered, schema-validated and held to the rules.

Each overlay (and production with the optional components) is rendered by k8s_render (a
small offline kustomize; compared with `kubectl kustomize` where kubectl exists). Every built-in
resource is validated against the Kubernetes API schema (kubernetes-validate, strict: unknown
fields fail; the schemas ship in the package, nothing is downloaded). The operators' custom
resources (RabbitmqCluster, MongoDBCommunity, ScaledObject, PrometheusRule, ...) have no
schema there, so their required fields are checked by hand. Then the project's rules: probes,
resources, the non-root security context, secrets by reference only, pinned images, a
PodDisruptionBudget and an autoscaler per Deployment, and the same commands, databases and
public routes as deploy/compose.yaml and deploy/nginx.conf.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from k8s_render import render

from services.common.topology import SUBSCRIPTIONS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "production")
APP_SERVICES = ("intake", "routing", "sla", "notify", "tracking", "reporting", "console")
APP_SECRETS = ("STAFF_TOKEN_SECRET", "CODE_PEPPER", "LINK_SECRET", "CHANNEL_WEBHOOK_SECRET")
# The newest Kubernetes minor kubernetes-validate ships schemas for is checked, and an older
# one still in wide use, so a field too new for common clusters is caught as well.
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
CUSTOM_KINDS = {"RabbitmqCluster", "MongoDBCommunity", "ScaledObject", "TriggerAuthentication",
                "PodMonitor", "PrometheusRule"}
OPTIONAL_COMPONENTS = ("keda", "monitoring")
SECRETISH = re.compile(r"SECRET|PASSWORD|PEPPER|TOKEN|PASSWD|CREDENTIAL|PRIVATE", re.I)
PINNED = re.compile(r"^[\w./-]+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$")


def _render_optional(tmp_path: Path) -> list[dict[str, Any]]:
    """production with the optional components (keda, monitoring), as README tells an operator
    to add them (in the production overlay, so its namespace applies to them too)."""
    production = yaml.safe_load((K8S / "overlays" / "production" / "kustomization.yaml")
                                .read_text(encoding="utf-8"))
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "namespace": production["namespace"],
        "resources": [os.path.relpath(K8S / "overlays" / "production", tmp_path)],
        "components": [os.path.relpath(K8S / "components" / name, tmp_path)
                       for name in OPTIONAL_COMPONENTS],
    }))
    return render(tmp_path)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, list[dict[str, Any]]]:
    out = {name: render(K8S / "overlays" / name) for name in OVERLAYS}
    out["production+optional"] = _render_optional(tmp_path_factory.mktemp("optional"))
    return out


VARIANTS = (*OVERLAYS, "production+optional")


def _of(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [resource for resource in resources if resource["kind"] == kind]


def _one(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [r for r in _of(resources, kind) if r["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


# --- rendering and schemas --------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_builtin_resource_passes_the_kubernetes_schema(rendered, variant):
    builtin = [r for r in rendered[variant] if r["kind"] not in CUSTOM_KINDS]
    assert len(builtin) >= 4 * len(APP_SERVICES)
    for resource in builtin:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{resource['kind']}/{resource['metadata']['name']} "
                            f"(Kubernetes {version}): {error.message} at {error.path}")


def test_the_schema_check_rejects_a_broken_deployment(rendered):
    # the validation above is real: a wrong type and an unknown field both fail
    deployment = _one(rendered["production"], "Deployment", "intake")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)
    unknown = yaml.safe_load(yaml.safe_dump(deployment))
    unknown["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown, K8S_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("variant", VARIANTS)
def test_names_are_unique_and_everything_is_in_the_overlay_namespace(rendered, variant):
    resources = rendered[variant]
    keys = [(r["kind"], r["metadata"]["name"]) for r in resources]
    assert len(keys) == len(set(keys)), keys
    namespaces = {r["metadata"]["name"] for r in _of(resources, "Namespace")}
    assert len(namespaces) == 1
    for resource in resources:
        if resource["kind"] != "Namespace":
            assert resource["metadata"].get("namespace") in namespaces, resource["metadata"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_renderer_agrees_with_kubectl_kustomize(rendered, overlay):
    done = subprocess.run(["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
                          capture_output=True, text=True, timeout=120, check=True)
    theirs = list(yaml.safe_load_all(done.stdout))

    def key(resource):
        return (resource["kind"], resource["metadata"]["name"])
    assert sorted(theirs, key=key) == sorted(rendered[overlay], key=key)


# --- the operators' resources (no schema in kubernetes-validate) ------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_rabbitmq_comes_from_the_cluster_operator(rendered, variant):
    clusters = _of(rendered[variant], "RabbitmqCluster")
    assert len(clusters) == 1
    cluster = clusters[0]
    assert cluster["apiVersion"] == "rabbitmq.com/v1beta1"
    assert cluster["metadata"]["name"] == "acikkapi-rabbitmq"
    spec = cluster["spec"]
    assert isinstance(spec["replicas"], int) and spec["replicas"] >= 1
    assert PINNED.match(spec["image"]) and ":" in spec["image"]
    assert "latest" not in spec["image"]
    assert spec["resources"]["limits"]["memory"]
    # the metrics the alert rules read (rabbitmq_queue_messages_ready) come from this plugin
    assert "rabbitmq_prometheus" in spec["rabbitmq"]["additionalPlugins"]
    if variant.startswith("production"):
        assert spec["replicas"] == 3


@pytest.mark.parametrize("variant", VARIANTS)
def test_mongodb_comes_from_the_community_operator(rendered, variant):
    sets = _of(rendered[variant], "MongoDBCommunity")
    assert len(sets) == 1
    mongo = sets[0]
    assert mongo["apiVersion"] == "mongodbcommunity.mongodb.com/v1"
    spec = mongo["spec"]
    # the CRD's required fields: members, type, version, security.authentication.modes, users
    assert spec["type"] == "ReplicaSet"
    assert isinstance(spec["members"], int) and spec["members"] >= 1
    assert re.fullmatch(r"\d+\.\d+\.\d+", spec["version"])
    assert set(spec["security"]["authentication"]["modes"]) <= {"SCRAM", "SCRAM-SHA-1",
                                                                "SCRAM-SHA-256", "X509"}
    assert spec["users"]
    for user in spec["users"]:
        for field in ("name", "db", "scramCredentialsSecretName"):
            assert user[field], f"MongoDBCommunity user lacks {field}"
        assert user["passwordSecretRef"]["name"]
        assert all(role["name"] and role["db"] for role in user["roles"])
    if variant.startswith("production"):
        assert spec["members"] == 3


def test_the_services_read_the_secrets_the_operators_write(rendered):
    mongo = _of(rendered["production"], "MongoDBCommunity")[0]
    user = mongo["spec"]["users"][0]
    # the MongoDB Community Operator names it <resource>-<user's db>-<user>
    connection_secret = f"{mongo['metadata']['name']}-{user['db']}-{user['name']}"
    rabbit_secret = f"{_of(rendered['production'], 'RabbitmqCluster')[0]['metadata']['name']}" \
                    "-default-user"
    for deployment in _of(rendered["production"], "Deployment"):
        env = {e["name"]: e for e in _pod(deployment)["containers"][0]["env"]}
        ref = env["MONGO_URI"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == (connection_secret, "connectionString.standard")
        for name, key in (("RABBITMQ_USER", "username"), ("RABBITMQ_PASSWORD", "password")):
            ref = env[name]["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == (rabbit_secret, key)
        assert env["AMQP_URI"]["value"] == (
            "amqp://$(RABBITMQ_USER):$(RABBITMQ_PASSWORD)@acikkapi-rabbitmq:5672/")


def test_keda_scales_the_consumers_on_their_own_queues(rendered):
    resources = rendered["production+optional"]
    scaled = _of(resources, "ScaledObject")
    assert scaled, "no ScaledObject in the KEDA component"
    auths = {r["metadata"]["name"]: r for r in _of(resources, "TriggerAuthentication")}
    deployments = {r["metadata"]["name"] for r in _of(resources, "Deployment")}
    queues = [sub.queue_name for sub in SUBSCRIPTIONS]
    for item in scaled:
        assert item["apiVersion"] == "keda.sh/v1alpha1"
        spec = item["spec"]
        target = spec["scaleTargetRef"]["name"]
        assert target in deployments
        assert spec["minReplicaCount"] <= spec["maxReplicaCount"]
        types = {trigger["type"] for trigger in spec["triggers"]}
        assert {"rabbitmq", "cpu"} <= types
        for trigger in spec["triggers"]:
            if trigger["type"] != "rabbitmq":
                continue
            meta = trigger["metadata"]
            assert meta["mode"] == "QueueLength" and int(meta["value"]) > 0
            mine = [q for q in queues if re.fullmatch(meta["queueName"], q)]
            theirs = [q for q in queues if q.split("--")[1].split(".")[0] == target]
            assert mine == theirs and mine, f"{target}: queueName matches {mine}"
            auth = auths[trigger["authenticationRef"]["name"]]
            for ref in auth["spec"]["secretTargetRef"]:
                assert ref["parameter"] and ref["name"] and ref["key"]
    # KEDA makes its own HorizontalPodAutoscaler: two on one Deployment would fight
    hpa_targets = {h["spec"]["scaleTargetRef"]["name"]
                   for h in _of(resources, "HorizontalPodAutoscaler")}
    assert not hpa_targets & {s["spec"]["scaleTargetRef"]["name"] for s in scaled}


def test_keda_and_the_monitors_are_optional(rendered):
    for overlay in OVERLAYS:
        for kind in ("ScaledObject", "TriggerAuthentication", "PodMonitor", "PrometheusRule"):
            assert not _of(rendered[overlay], kind)


def test_the_prometheus_operator_gets_the_same_alert_rules_and_scrapes_every_service(rendered):
    resources = rendered["production+optional"]
    rule = _one(resources, "PrometheusRule", "acikkapi")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    source = yaml.safe_load((DEPLOY / "prometheus" / "rules.yaml").read_text(encoding="utf-8"))
    assert rule["spec"]["groups"] == source["groups"], (
        "components/monitoring/prometheusrule.yaml differs from deploy/prometheus/rules.yaml: "
        "run .venv/bin/python scripts/sync_prometheusrule.py")
    monitor = _one(resources, "PodMonitor", "acikkapi")
    selector = monitor["spec"]["selector"]["matchLabels"]
    endpoints = monitor["spec"]["podMetricsEndpoints"]
    assert [(e["port"], e["path"]) for e in endpoints] == [("http", "/metrics")]
    for deployment in _of(resources, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), deployment["metadata"]["name"]


# --- the project's rules for every Deployment -------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_service_runs_its_module_like_compose_does(rendered, variant):
    compose = _compose()["services"]
    deployments = {d["metadata"]["name"]: d for d in _of(rendered[variant], "Deployment")}
    assert set(deployments) == set(APP_SERVICES)
    for name in APP_SERVICES:
        container = _pod(deployments[name])["containers"][0]
        assert container["command"] == compose[name]["command"]
        env = {e["name"]: e for e in container.get("env", [])}
        assert env["MONGO_DB"]["value"] == compose[name]["environment"]["MONGO_DB"]
        assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_service_gets_every_setting_compose_gives_it(rendered, variant):
    compose = _compose()["services"]
    config = _one(rendered[variant], "ConfigMap", "acikkapi-config")["data"]
    for deployment in _of(rendered[variant], "Deployment"):
        name = deployment["metadata"]["name"]
        container = _pod(deployment)["containers"][0]
        assert {"configMapRef": {"name": "acikkapi-config"}} in container["envFrom"]
        given = set(config) | {e["name"] for e in container["env"]}
        missing = set(compose[name]["environment"]) - given
        assert not missing, f"{name} lacks {sorted(missing)}"
    console = {e["name"]: e for e in
               _pod(_one(rendered[variant], "Deployment", "console"))["containers"][0]["env"]}
    # services/console/domain.py knows auto, always and never; TLS at the ingress: always
    assert console["CONSOLE_SECURE_COOKIES"]["value"] == "always"
    for called in ("intake", "routing", "sla", "reporting", "tracking", "notify"):  # CONSOLE_CALLS
        assert console[f"CONSOLE_{called.upper()}_URL"]["value"] == f"http://{called}:8000"


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_deployment_has_both_probes_on_the_health_endpoints(rendered, variant):
    for deployment in _of(rendered[variant], "Deployment"):
        for container in _pod(deployment)["containers"]:
            live = container["livenessProbe"]["httpGet"]
            ready = container["readinessProbe"]["httpGet"]
            assert live["path"] == "/health/live", deployment["metadata"]["name"]
            assert ready["path"] == "/health/ready", deployment["metadata"]["name"]
            assert live["port"] in ("http", 8000) and ready["port"] in ("http", 8000)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_deployment_has_resources(rendered, variant):
    for deployment in _of(rendered[variant], "Deployment"):
        for container in _pod(deployment)["containers"]:
            resources = container["resources"]
            assert resources["requests"]["cpu"] and resources["requests"]["memory"]
            assert resources["limits"]["memory"], deployment["metadata"]["name"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_deployment_runs_non_root_and_locked_down(rendered, variant):
    for deployment in _of(rendered[variant], "Deployment"):
        name = deployment["metadata"]["name"]
        pod = _pod(deployment)
        pod_context = pod["securityContext"]
        assert pod_context["runAsNonRoot"] is True, name
        assert pod_context["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context.get("runAsNonRoot", pod_context["runAsNonRoot"]) is True
            assert context.get("runAsUser", pod_context.get("runAsUser")) not in (None, 0)
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context.get("privileged") is not True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert not context["capabilities"].get("add"), name
            # a read-only root still needs a writable /tmp
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, name


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_deployment_has_a_pdb_and_an_autoscaler(rendered, variant):
    resources = rendered[variant]
    for deployment in _of(resources, "Deployment"):
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        pdbs = [p for p in _of(resources, "PodDisruptionBudget")
                if p["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(pdbs) == 1, f"{name}: {len(pdbs)} PodDisruptionBudgets"
        hpas = [h for h in _of(resources, "HorizontalPodAutoscaler")
                if h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1",
                                                   "kind": "Deployment", "name": name}]
        keda = [s for s in _of(resources, "ScaledObject")
                if s["spec"]["scaleTargetRef"]["name"] == name]
        assert len(hpas) + len(keda) == 1, f"{name}: {len(hpas)} HPAs, {len(keda)} KEDA"
        for hpa in hpas:
            metrics = hpa["spec"]["metrics"]
            assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu"
                       for m in metrics), name
            assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        # the autoscaler owns the count: a fixed replicas would be reset on every apply
        assert "replicas" not in deployment["spec"], name
        service = _one(resources, "Service", name)
        assert service["spec"]["selector"].items() <= labels.items()


# --- secrets, images ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_secrets_come_only_by_reference(rendered, variant):
    resources = rendered[variant]
    assert not _of(resources, "Secret"), "a Secret with values is part of the manifests"
    for config in _of(resources, "ConfigMap"):
        for key in config.get("data", {}):
            assert not SECRETISH.search(key), f"ConfigMap key {key} looks like a secret"
    for deployment in _of(resources, "Deployment"):
        name = deployment["metadata"]["name"]
        env = {e["name"]: e for e in _pod(deployment)["containers"][0]["env"]}
        for key in APP_SECRETS:
            ref = env[key]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": "acikkapi-app-secrets", "key": key}, f"{name}.{key}"
        for key, entry in env.items():
            value = entry.get("value", "")
            if SECRETISH.search(key) or "://" in value:
                # a literal may only compose other variables, never carry a credential
                userinfo = value.split("://", 1)[-1].rpartition("@")[0]
                assert "value" not in entry or SECRETISH.search(key) is None, f"{name}.{key}"
                assert not userinfo or re.fullmatch(r"\$\(\w+\):\$\(\w+\)", userinfo), (
                    f"{name}.{key} embeds a credential")


def test_the_secret_example_is_placeholders_only_and_in_no_kustomization():
    example = K8S / "secrets.example.yaml"
    docs = [d for d in yaml.safe_load_all(example.read_text(encoding="utf-8")) if d]
    names = set()
    for doc in docs:
        assert doc["kind"] == "Secret"
        names.add(doc["metadata"]["name"])
        for value in doc["stringData"].values():
            assert "CHANGE-ME" in value, value
    assert {"acikkapi-app-secrets", "acikkapi-mongodb-password"} <= names
    for kustomization in K8S.rglob("kustomization.yaml"):
        assert "secrets.example" not in kustomization.read_text(encoding="utf-8")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_image_is_pinned_never_latest(rendered, variant):
    images = []
    for resource in rendered[variant]:
        pod = ((resource.get("spec") or {}).get("template") or {}).get("spec") or {}
        images += [c["image"] for c in [*pod.get("containers", []),
                                        *pod.get("initContainers", [])]]
        if "image" in (resource.get("spec") or {}):
            images.append(resource["spec"]["image"])
    assert images
    for image in images:
        tag = image.rpartition("/")[2].partition("@")[0].partition(":")[2]
        assert PINNED.match(image) and (tag or "@sha256:" in image), f"{image} is not pinned"
        assert tag != "latest", image
    for path in K8S.rglob("*.yaml"):
        assert not re.search(r"(image|newTag):\s*\S*latest", path.read_text(encoding="utf-8")), path


# --- overlays ------------------------------------------------------------------------------------


def test_production_is_bigger_and_uses_quorum_queues(rendered):
    dev, prod = rendered["dev"], rendered["production"]
    assert _one(prod, "ConfigMap", "acikkapi-config")["data"]["AMQP_QUEUE_TYPE"] == "quorum"
    assert _one(dev, "ConfigMap", "acikkapi-config")["data"]["AMQP_QUEUE_TYPE"] == "classic"

    def memory(resource):
        quantity = _pod(resource)["containers"][0]["resources"]["limits"]["memory"]
        number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()
        return int(number) * (1024 if unit == "Gi" else 1)
    for name in APP_SERVICES:
        assert _one(prod, "HorizontalPodAutoscaler", name)["spec"]["minReplicas"] >= 3
        assert (_one(prod, "HorizontalPodAutoscaler", name)["spec"]["minReplicas"]
                > _one(dev, "HorizontalPodAutoscaler", name)["spec"]["minReplicas"])
        assert memory(_one(prod, "Deployment", name)) > memory(_one(dev, "Deployment", name))


# --- ingress -------------------------------------------------------------------------------------

NGINX_LOCATION = re.compile(
    r"\blocation\s+(?:(?P<modifier>=|\^~)\s+)?(?P<path>/[^\s{]*)\s*\{\s*"
    r"proxy_pass\s+http://(?P<upstream>[\w-]+)(?P<uri>/[^\s;]*)?\s*;\s*\}")


def _nginx_routes() -> list[tuple[str, str, str | None, bool]]:
    text = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    return [(m["path"], m["upstream"], m["uri"], m["modifier"] == "=")
            for m in NGINX_LOCATION.finditer(text)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_ingress_routes_what_nginx_routes_over_tls(rendered, variant):
    ingresses = _of(rendered[variant], "Ingress")
    assert ingresses
    paths = {}
    for ingress in ingresses:
        spec = ingress["spec"]
        hosts = {rule["host"] for rule in spec["rules"]}
        tls_hosts = {h for tls in spec["tls"] for h in tls["hosts"]}
        assert hosts <= tls_hosts, "a host without TLS"
        assert all(tls["secretName"] for tls in spec["tls"])
        rewrite = ingress["metadata"].get("annotations", {}).get(
            "nginx.ingress.kubernetes.io/rewrite-target")
        redirect = ingress["metadata"].get("annotations", {}).get(
            "nginx.ingress.kubernetes.io/force-ssl-redirect")
        assert redirect == "true"
        for rule in spec["rules"]:
            for path in rule["http"]["paths"]:
                paths[path["path"]] = (path["backend"]["service"]["name"], rewrite,
                                       path["pathType"])
    routes = _nginx_routes()
    assert len(routes) >= 20, "nginx.conf routes not found"
    for prefix, upstream, uri, exact in routes:
        assert prefix in paths, f"{prefix} is not routed by the Ingress"
        service, rewrite, path_type = paths[prefix]
        assert service == upstream, f"{prefix} goes to {service}, nginx sends it to {upstream}"
        assert rewrite == uri, f"{prefix} rewritten to {rewrite}, nginx to {uri}"
        assert path_type == ("Exact" if exact else "Prefix")
    # never public (nginx answers 404): routed to a Service without endpoints
    for closed in ("/metrics", "/_/"):
        service = paths[closed][0]
        assert service not in APP_SERVICES
        assert "selector" not in _one(rendered[variant], "Service", service)["spec"]
