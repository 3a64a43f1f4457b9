"""Intake's composition root: what one intake process holds, built once.

`IntakeParts` opens intake's database, makes its store (indexes created), the category
catalogue it validates against, the submission use case, the inbound channels, and the relay
that publishes `applications` and `inbound` outboxes. The nameko service receives it through
`Composed(build)`, the Flask app through `create_app(parts)`: both work on the same objects.
Starting the parts (with the nameko container) loads the muhtar registry.
"""
from __future__ import annotations

import logging

import yaml

from services.common.bootstrap import Parts, Spawn
from services.common.catalogue_cache import CatalogueCache, open_catalogue
from services.intake import domain, submission
from services.intake.channels import text as text_channel
from services.intake.inbound import Inbound
from services.intake.schemas import normalise_phone, validate_tckn
from services.intake.store import IntakeStore

log = logging.getLogger(__name__)


def load_muhtars(path: str, hash_key: str) -> list[dict]:
    """Registry entries for the muhtars listed in `path` (seed 003), caller type `muhtar`."""
    with open(path, encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    people = []
    for raw in document.get("muhtars") or []:
        validate_tckn(str(raw["tckn"]))
        person = dict(raw, tckn=str(raw["tckn"]), phone=normalise_phone(str(raw["phone"])),
                      preferred_channel="sms")
        people.append(domain.build_citizen(person, hash_key, channel="muhtar",
                                           caller_type="muhtar"))
    return people


def places_of(config: dict) -> dict[str, tuple[str, str, str]]:
    """Neighbourhood names → (province, district, neighbourhood), for text messages."""
    with open(config["ORGANISATION_PATH"], encoding="utf-8") as handle:
        return text_channel.places_from_organisation(yaml.safe_load(handle) or {})


class IntakeParts(Parts):
    """Intake's store, catalogue, submission use case and inbound channels, and its relay."""

    def __init__(self, config: dict):
        super().__init__(config, "intake", relay=("applications", "inbound"))

    def compose(self, config: dict) -> None:
        self.store = IntakeStore(self.db)
        self.store.ensure_indexes()
        self.catalogue: CatalogueCache = open_catalogue(config, self.db)
        self.intake = submission.Intake(self.store, self.catalogue, config)
        self.inbound = Inbound(self.intake, places_of(config))

    def start(self, spawn: Spawn) -> None:
        """Load the muhtar registry (idempotent), then start the relay."""
        path = self.config.get("MUHTARS_PATH")
        if path:
            count = self.store.load_registry(load_muhtars(path, self.intake.settings.hash_key))
            log.info("muhtar registry loaded", extra={"muhtars": count})
        super().start(spawn)


def build(config: dict) -> IntakeParts:
    """Intake's parts for this process."""
    return IntakeParts(config)
