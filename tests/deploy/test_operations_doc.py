"""docs/operations.md: the runbook names only commands, files and databases this repository has.

A runbook whose commands have drifted is worse than none in an incident, so each
`python -m <module>` must be a module here (the retention job's is allowed to be missing while
it is built: the runbook says to check docs/architecture.md), the dead-letter and backup
commands must use options their parsers accept, every repository path it names must exist,
and the sections issue 14 asks for must be there.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import runpy
from pathlib import Path

import pytest

from services.common.mongo import database_name

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "operations.md"
SERVICES = ("intake", "routing", "sla", "notify", "tracking", "reporting", "console")
# Modules the runbook may name before they exist (none now).
PENDING_MODULES: set[str] = set()


def _text() -> str:
    return RUNBOOK.read_text(encoding="utf-8")


def _help(argv: list[str], run) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        run(argv)
    return out.getvalue()


def test_the_sections_the_issue_asks_for_are_there():
    headings = [h.lower() for h in re.findall(r"(?m)^#+\s+(.+?)\s*$", _text())]
    for wanted in ("deploy", "upgrade", "scale", "back up and restore mongodb",
                   "dead-letter queue", "rotate secrets", "kvkk retention job",
                   "first checks in an incident", "code_pepper", "link_secret",
                   "staff_token_secret", "channel_webhook_secret", "rabbitmq credentials",
                   "mongodb credentials", "tls certificate"):
        assert any(wanted in heading for heading in headings), f"no section on {wanted}"


def test_every_python_module_it_runs_exists():
    modules = set(re.findall(r"python -m ([\w.]*\w)", _text()))
    modules.discard("services")  # `python -m services.<name>`
    assert {"services.common.dlq", "services.reporting.rebuild"} <= modules
    for module in modules - PENDING_MODULES:
        assert importlib.util.find_spec(module) is not None, f"no module {module}"
    for name in SERVICES:
        assert importlib.util.find_spec(f"services.{name}.__main__"), name


def test_the_dead_letter_commands_use_options_the_tool_accepts():
    from services.common import dlq

    text = _text()
    assert "python -m services.common.dlq list" in text
    used = re.findall(r"(?<![\w-])(replay|drop) (--[a-z-]+)", text)
    assert {"replay", "drop"} <= {command for command, _ in used}
    assert ("replay", "--all") in used and ("replay", "--event-id") in used
    for command, option in used:
        assert option in _help([command, "--help"], dlq.main), f"dlq {command} has no {option}"


def test_the_backup_commands_use_options_the_script_accepts():
    script = runpy.run_path(str(ROOT / "scripts" / "backup.py"))
    text = _text()
    for command in ("dump", "restore"):
        usage = _help([command, "--help"], script["main"])
        used = {option for line in text.splitlines() if f"backup.py {command}" in line
                for option in re.findall(r"(?<!\w)--[a-z]+", line)}
        assert used, f"the runbook never runs backup.py {command}"
        for option in used:
            assert option in usage, f"backup.py {command} has no {option}"


def test_it_names_each_service_database_as_the_code_does():
    text = _text()
    for name in SERVICES:
        assert f"`{database_name({}, name)}`" in text, name


def test_every_repository_path_it_names_exists():
    paths = set(re.findall(r"(?<![\w/.-])((?:deploy|scripts|services|docs|tests)/[\w./-]*\w)",
                           _text()))
    assert len(paths) >= 8
    allowed_missing = {"deploy/.env"}  # the operator's copy of deploy/.env.example
    # `deploy/<service>` is kubectl's name for a Deployment, not a path
    allowed_missing |= {f"deploy/{name}" for name in SERVICES}
    for path in paths - allowed_missing:
        assert (ROOT / path).exists(), f"docs/operations.md names {path}, which does not exist"
