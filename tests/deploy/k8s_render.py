"""A small kustomize renderer for the tests: enough of kustomize to build deploy/k8s/ offline.

It follows what those kustomizations use and nothing more: `resources` (files and
directories), `components`, `patches` (strategic merge of the kinds used there, `$patch:
delete`, and JSON 6902 operations, each optionally with a `target` of kind and name regex),
`images`, `namespace`, `labels` and `commonLabels`. Anything else in a kustomization is an
error, so a manifest that starts using a feature this file does not know fails loudly instead
of rendering wrong. test_k8s.py compares its output with `kubectl kustomize` where kubectl is
installed, which keeps the two honest.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

KNOWN_FIELDS = {
    "apiVersion", "kind", "resources", "components", "patches", "images", "namespace",
    "labels", "commonLabels",
}
# Strategic-merge keys of the lists these manifests patch (the Kubernetes API's
# x-kubernetes-patch-merge-key); any other list is replaced whole, as kustomize does.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PriorityClass", "StorageClass", "IngressClass"}


def render(directory: Path) -> list[Resource]:
    """The resources the kustomization in `directory` builds."""
    return _build(Path(directory), component=False)


def _load_kustomization(directory: Path) -> dict[str, Any]:
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        path = directory / name
        if path.exists():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            unknown = set(data) - KNOWN_FIELDS
            if unknown:
                raise ValueError(f"{path}: k8s_render does not know {sorted(unknown)}")
            return data
    raise FileNotFoundError(f"no kustomization in {directory}")


def _documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def _build(directory: Path, *, component: bool,
           accumulated: list[Resource] | None = None) -> list[Resource]:
    kustomization = _load_kustomization(directory)
    is_component = kustomization.get("kind") == "Component"
    if is_component != component:
        raise ValueError(f"{directory}: a Component must be listed under components, "
                         "and only a Component there")
    resources: list[Resource] = accumulated if accumulated is not None else []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            resources.extend(_build(path, component=False))
        else:
            resources.extend(_documents(path))
    for entry in kustomization.get("components", []):
        resources = _build(directory / entry, component=True, accumulated=resources)
    for patch in kustomization.get("patches", []):
        resources = _apply_patch(directory, patch, resources)
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    for entry in kustomization.get("labels", []):
        _add_labels(resources, entry["pairs"], selectors=entry.get("includeSelectors", False),
                    templates=entry.get("includeTemplates", False)
                    or entry.get("includeSelectors", False))
    if kustomization.get("commonLabels"):
        _add_labels(resources, kustomization["commonLabels"], selectors=True, templates=True)
    for image in kustomization.get("images", []):
        _set_image(resources, image)
    return resources


# --- patches ----------------------------------------------------------------------------------


def _apply_patch(directory: Path, patch: dict[str, Any],
                 resources: list[Resource]) -> list[Resource]:
    if "path" in patch:
        docs = list(yaml.safe_load_all((directory / patch["path"]).read_text(encoding="utf-8")))
    else:
        docs = list(yaml.safe_load_all(patch["patch"]))
    docs = [doc for doc in docs if doc is not None]
    target = patch.get("target")
    if len(docs) == 1 and isinstance(docs[0], list):
        if not target:
            raise ValueError("a JSON 6902 patch needs a target")
        for resource in resources:
            if _matches(resource, target):
                for operation in docs[0]:
                    _json6902(resource, operation)
        return resources
    for doc in docs:
        wanted = target or {"kind": doc["kind"], "name": re.escape(doc["metadata"]["name"])}
        hits = [resource for resource in resources if _matches(resource, wanted)]
        if not hits:
            raise ValueError(f"patch {patch} matches no resource")
        if doc.get("$patch") == "delete":
            resources = [resource for resource in resources if resource not in hits]
            continue
        body = {key: value for key, value in doc.items()
                if key not in ("apiVersion", "kind", "metadata")}
        for resource in hits:
            _merge(resource, copy.deepcopy(body))
    return resources


def _matches(resource: Resource, target: dict[str, str]) -> bool:
    if "kind" in target and resource["kind"] != target["kind"]:
        return False
    name = target.get("name")
    return name is None or re.fullmatch(name, resource["metadata"]["name"]) is not None


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> None:
    """Strategic merge of `patch` into `base` (in place)."""
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        elif (isinstance(value, list) and isinstance(base.get(key), list)
              and key in MERGE_KEYS):
            merge_key = MERGE_KEYS[key]
            for item in value:
                same = [old for old in base[key] if old.get(merge_key) == item.get(merge_key)]
                if same:
                    _merge(same[0], item)
                else:
                    base[key].append(item)
        else:
            base[key] = value


def _json6902(resource: Resource, operation: dict[str, Any]) -> None:
    parts = [part.replace("~1", "/").replace("~0", "~")
             for part in operation["path"].lstrip("/").split("/")]
    parent: Any = resource
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    op = operation["op"]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if op == "add":
            parent.insert(index, copy.deepcopy(operation["value"]))
        elif op == "replace":
            parent[index] = copy.deepcopy(operation["value"])
        elif op == "remove":
            del parent[index]
        else:
            raise ValueError(f"k8s_render does not know op {op}")
    elif op in ("add", "replace"):
        if op == "replace" and last not in parent:
            raise KeyError(operation["path"])
        parent[last] = copy.deepcopy(operation["value"])
    elif op == "remove":
        del parent[last]
    else:
        raise ValueError(f"k8s_render does not know op {op}")


# --- labels and images ------------------------------------------------------------------------


def _add_labels(resources: list[Resource], pairs: dict[str, str], *, selectors: bool,
                templates: bool) -> None:
    for resource in resources:
        resource.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        spec = resource.get("spec") or {}
        if templates and isinstance(spec.get("template"), dict):
            spec["template"].setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        if selectors:
            if resource["kind"] == "Service":
                spec.setdefault("selector", {}).update(pairs)
            elif isinstance(spec.get("selector"), dict):
                spec["selector"].setdefault("matchLabels", {}).update(pairs)


def _set_image(resources: list[Resource], image: dict[str, str]) -> None:
    for resource in resources:
        pod = ((resource.get("spec") or {}).get("template") or {}).get("spec") or {}
        for container in [*pod.get("containers", []), *pod.get("initContainers", [])]:
            name, tag, digest = _split_image(container["image"])
            if name != image["name"]:
                continue
            name = image.get("newName", name)
            tag = image.get("newTag", tag)
            digest = image.get("digest", digest)
            container["image"] = name + (f":{tag}" if tag else "") + (
                f"@{digest}" if digest else "")


def _split_image(image: str) -> tuple[str, str | None, str | None]:
    """`name[:tag][@digest]` -> (name, tag, digest); a registry's port is not a tag."""
    image, _, digest = image.partition("@")
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1:], digest or None
    return image, None, digest or None
