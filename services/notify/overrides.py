"""Administrators' texts for notify's message templates (issue 13): the use case behind the
admin API, and the per-process cache the composer reads them through.

A template is a file (`templates/<channel>/<template>.<language>.j2`); an override replaces its
text until it is deleted. An override is checked before it is stored (`domain.override_problems`:
Jinja's sandbox parses it, and it may use only the variables its template is given), and the
composer renders it in the sandbox, falling back to the file if it fails on a message's context.

Sending reads the overrides through `OverrideCache`: the whole (small) collection at most once
every `ttl` seconds per process, so an edit takes effect within seconds without a database read
per message; the process that stored an edit forgets its copy at once.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from jinja2 import Environment
from pymongo.errors import PyMongoError

from services.common.events import utcnow
from services.notify import domain
from services.notify.store import NotifyStore

OVERRIDE_TTL_SECONDS = 5.0

log = logging.getLogger(__name__)


class UnknownTemplate(Exception):
    """No template file of that channel and name."""


class TemplateRefused(Exception):
    """The text cannot replace the template; `problems` says why."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


class OverrideCache:
    """`{file path: text}` of every override, read again once `ttl` seconds went by.

    When the database does not answer, the last texts read stay in use (and are tried again
    after `ttl`): a message is not lost for want of an administrator's wording."""

    def __init__(self, store: NotifyStore, ttl: float = OVERRIDE_TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._texts: dict[str, str] = {}
        self._until: float | None = None

    def __call__(self) -> dict[str, str]:
        now = self.clock()
        if self._until is None or now >= self._until:
            try:
                self._texts = {found["_id"]: found["text"]
                               for found in self.store.template_overrides()}
            except PyMongoError as error:
                log.warning("template overrides not read; the last ones are used",
                            extra={"error": type(error).__name__})
            self._until = now + self.ttl
        return self._texts

    def forget(self) -> None:
        """Read again at the next message (this process stored or removed an override)."""
        self._until = None


class TemplateOverrides:
    """Lists the templates with their overrides, stores and removes overrides."""

    def __init__(self, store: NotifyStore, cache: OverrideCache,
                 environment: Environment | None = None):
        self.store = store
        self.cache = cache
        self.environment = environment or domain.template_environment()
        self.files = {(found.channel, found.name): found for found in domain.template_files()}

    def _file(self, channel: str, name: str) -> domain.TemplateFile:
        found = self.files.get((channel, name))
        if found is None:
            raise UnknownTemplate(f"no {channel} template {name}")
        return found

    def _item(self, found: domain.TemplateFile, override: dict | None) -> dict:
        loader = self.environment.loader
        assert loader is not None  # notify's environment loads the files
        source = loader.get_source(self.environment, found.path)[0]
        override = override or {}
        return {"channel": found.channel, "name": found.name, "template": found.template,
                "language": found.language, "file_text": source,
                "override_text": override.get("text"), "updated_at": override.get("updated_at"),
                "updated_by": override.get("updated_by")}

    def listing(self) -> dict:
        """Every template file, by channel then name, with its override if any."""
        overrides = {found["_id"]: found for found in self.store.template_overrides()}
        items = [self._item(found, overrides.get(found.path))
                 for found in sorted(self.files.values(),
                                     key=lambda f: (f.channel, f.template, f.language))]
        return {"count": len(items), "items": items}

    def one(self, channel: str, name: str) -> dict:
        found = self._file(channel, name)
        stored = {override["_id"]: override for override in self.store.template_overrides()}
        return self._item(found, stored.get(found.path))

    def put(self, channel: str, name: str, text: str, by: str) -> dict:
        """Store `text` as the override of the template, if it can replace it."""
        found = self._file(channel, name)
        allowed = domain.allowed_variables(self.environment, channel, found.template)
        problems = domain.override_problems(text, channel, allowed)
        if problems:
            raise TemplateRefused(problems)
        self.store.put_template_override(found.path, text, by, utcnow())
        self.cache.forget()
        log.info("template override stored", extra={"template": found.path, "by": by})
        return self.one(channel, name)

    def delete(self, channel: str, name: str, by: str) -> dict:
        """Remove the override: the file's text goes again."""
        found = self._file(channel, name)
        removed = self.store.delete_template_override(found.path)
        self.cache.forget()
        log.info("template override removed", extra={"template": found.path, "by": by,
                                                     "removed": removed})
        return self.one(channel, name)
