"""The production image's dependencies: only what the services import, each pinned by the lock.

The image installs `requirements-runtime.in` with `requirements.lock` as constraints. These
tests keep that list honest without building the image: every distribution a module under
`services/` imports is in it (or a dependency of something in it), nothing in it is a test
tool, and every entry has its pin in the lock.
"""
from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
TEST_TOOLS = {"pytest", "ruff", "selenium", "aiosmtpd", "pypdf", "supervisor"}


def _requirements(path: Path) -> list[Requirement]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            found.append(Requirement(line))
    return found


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _runtime_closure() -> set[str]:
    """The runtime requirements and everything they depend on, as installed here."""
    todo = [_name(r.name) for r in _requirements(ROOT / "requirements-runtime.in")]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for spec in distribution(name).requires or []:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_name(requirement.name))
    return seen


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for source in (ROOT / "services").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"services", "__future__"}


def test_every_package_the_services_import_is_installed_by_the_image():
    providers = packages_distributions()
    runtime = _runtime_closure()
    missing = {name: providers.get(name) for name in _imported_top_levels()
               if not {_name(d) for d in providers.get(name, [])} & runtime}
    assert not missing, f"imported by services/ but not in requirements-runtime.in: {missing}"


def test_the_image_carries_no_test_tool():
    runtime = {_name(r.name) for r in _requirements(ROOT / "requirements-runtime.in")}
    assert not runtime & TEST_TOOLS


def test_every_runtime_requirement_is_pinned_by_the_lock():
    locked = {_name(r.name): r for r in _requirements(ROOT / "requirements.lock")}
    for requirement in _requirements(ROOT / "requirements-runtime.in"):
        pinned = locked.get(_name(requirement.name))
        assert pinned is not None, f"{requirement.name} is not in requirements.lock"
        version = next(iter(pinned.specifier)).version
        assert requirement.specifier.contains(version), (requirement, version)


def test_the_development_requirements_include_the_runtime_ones():
    lines = (ROOT / "requirements.in").read_text(encoding="utf-8").splitlines()
    assert "-r requirements-runtime.in" in lines
