"""The organisation as the process holds it: directory and catalogue, rebuilt when they change.

Routing decides from an in-memory `domain.Organisation` (dictionaries: a decision is a handful
of lookups whatever the size). Its source of truth is routing's database, seeded from the data
files when empty. One `OrganisationCache` per process, made by routing's composition root
(`bootstrap`), is shared by the nameko side (the event handlers) and the Flask side (the admin
API), so:

- an admin change made through this process is stored, the version is bumped, and the cache is
  rebuilt before the request answers — the next decision on either side uses it;
- a change made by another replica is noticed by reading the stored version (one `_id` lookup)
  at most every `DIRECTORY_CHECK_SECONDS` (default 2 s), and rebuilt then.

Changes made here are serialised within the process; two replicas changing the same record at
once is last-writer-wins on that record (each change is validated against what it read).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import yaml

from services.common.catalogue import parse_categories
from services.routing import admin
from services.routing.directory import check_directory, parse_directory, read_organisation_file
from services.routing.domain import Organisation
from services.routing.store import KEY_OF_KIND, RecordExists, RoutingStore

log = logging.getLogger(__name__)

DEFAULT_CHECK_SECONDS = 2.0


def read_files(config: dict) -> tuple[dict, list[dict]]:
    """The organisation and catalogue files, in the stored shape; ValueError if inconsistent."""
    flat = read_organisation_file(config["ORGANISATION_PATH"])
    with open(config["CATALOGUE_PATH"], encoding="utf-8") as handle:
        categories = list((yaml.safe_load(handle) or {}).get("categories") or [])
    problems = check_directory(parse_directory(flat),
                               parse_categories({"categories": categories}))
    if problems:
        first = problems[0]
        raise ValueError(f"data files: {first.kind} {first.code}: {first.field}: "
                         f"{first.message}")
    return flat, categories


class OrganisationCache:
    """The directory and catalogue of one routing database, as this process holds them."""

    def __init__(self, store: RoutingStore, config: dict):
        self.store = store
        self.config = config
        self.check_seconds = float(config.get("DIRECTORY_CHECK_SECONDS", DEFAULT_CHECK_SECONDS))
        self._lock = threading.RLock()
        self._snapshot: Organisation | None = None
        self._checked = 0.0

    def start(self) -> Organisation:
        """Seed the database from the files if it holds no directory yet; load it."""
        with self._lock:
            if self._snapshot is None:
                if self.store.directory_version() is None:
                    flat, categories = read_files(self.config)
                    if self.store.seed_directory(flat, categories):
                        log.info("directory seeded from the data files")
                self._rebuild()
            return self._snapshot

    def current(self) -> Organisation:
        """The organisation to decide with; re-read when another process changed it."""
        snapshot = self._snapshot or self.start()
        now = time.monotonic()
        if now - self._checked >= self.check_seconds:
            self._checked = now
            if self.store.directory_version() != snapshot.version:
                with self._lock:
                    self._rebuild()
                snapshot = self._snapshot
        return snapshot

    def records(self) -> admin.Records:
        """The stored records, fresh from the database (what a change starts from)."""
        flat, categories, version = self.store.load_directory()
        return admin.Records(flat, categories, version)

    def change(self, make: Callable[[admin.Records], admin.Records]) -> Organisation:
        """Apply a pure change to the stored records, store its writes, rebuild.

        `make` raises `admin.ChangeRefused` to refuse; then nothing is stored.
        """
        with self._lock:
            before = self.records()
            old_categories = list(before.categories)  # `make` changes copies, never these
            changed = make(before)
            touched = {record if what == "delete" else record["code"]
                       for what, kind, record in changed.writes if kind == "categories"}
            # Intake and tracking keep their own copy of the catalogue: each changed category's
            # `category_saved` travels in the write that stores it.
            events = admin.category_events(old_categories, changed.categories, touched)
            # Creates first: the insert is what decides, across replicas, that a code is new;
            # a refused one must leave nothing else of the change stored.
            writes = sorted(changed.writes, key=lambda write: write[0] != "create")
            for what, kind, record in writes:
                code = record if what == "delete" else record.get(KEY_OF_KIND.get(kind, "code"))
                # a category saved or deleted more than once in one change carries its event
                # (its final state) once
                carried = [events.pop(code)] if kind == "categories" and code in events else []
                if what == "create":
                    try:
                        self.store.create_record(kind, record, events=carried)
                    except RecordExists:
                        raise admin.ChangeRefused(
                            409, f"{admin.SINGULAR[kind]} {code} already exists",
                            {"json": {"code": ["already exists"]}}) from None
                elif what == "save":
                    self.store.save_record(kind, record, events=carried)
                else:
                    self.store.delete_record(kind, record, events=carried)
            self.store.bump_version()
            self._rebuild()
            return self._snapshot

    def reload_files(self) -> Organisation:
        """Replace the stored directory and catalogue with the data files' (explicit reload)."""
        with self._lock:
            flat, categories = read_files(self.config)
            stored = self.store.load_directory()[1]
            # every category the reload changes or removes is news to intake and tracking
            self.store.replace_directory(flat, categories,
                                         admin.category_events(stored, categories))
            self._rebuild()
            return self._snapshot

    def _rebuild(self) -> None:
        flat, categories, version = self.store.load_directory()
        catalogue = parse_categories({"categories": categories})
        directory = parse_directory(flat, version)
        problems = check_directory(directory, catalogue)
        if problems:  # never expected (every change is validated); decide anyway, loudly
            log.warning("stored directory is inconsistent", extra={"problems": len(problems)})
        self._snapshot = Organisation(directory, catalogue, version)
        self._checked = time.monotonic()
