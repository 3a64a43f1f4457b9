"""Intake's bus entrypoints: the outbox relay, contact lookups, submissions from other doors."""
from __future__ import annotations

from marshmallow import ValidationError
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc

from services.common.catalogue import load_categories
from services.common.mongo import Mongo
from services.common.relay import OutboxRelay
from services.intake import domain, submission
from services.intake.schemas import CreateApplicationSchema
from services.intake.store import IntakeStore


class Catalogue(DependencyProvider):
    """The category catalogue, read from its file at container setup."""

    def setup(self) -> None:
        self.categories = load_categories(self.container.config["CATALOGUE_PATH"])

    def get_dependency(self, worker_ctx):
        return self.categories


class SubmissionRefused(Exception):
    """A submission over RPC that names its wrong fields (`args[0]`: field → messages)."""


class IntakeService:
    name = "intake"

    store: IntakeStore = Mongo(IntakeStore)
    relay = OutboxRelay("applications")
    catalogue = Catalogue()
    config = Config()

    @rpc
    def submit_application(self, payload: dict) -> dict:
        """Accept an application from another service's door (muhtar portal, Open311).

        `payload` has the shape of `POST /api/v1/applications`. Returns the same answer; a
        wrong field raises `SubmissionRefused` (a RemoteError to the caller) naming it.
        """
        try:
            valid = CreateApplicationSchema().load(payload)
            return submission.submit(self.store, self.catalogue, valid, self.config)
        except ValidationError as exc:
            raise SubmissionRefused(exc.messages) from None
        except domain.Rejected as rejected:
            raise SubmissionRefused(rejected.errors) from None

    @rpc
    def get_contact(self, application_id: str) -> dict | None:
        """The citizen's phone / e-mail for an application; only notify calls this."""
        return self.store.contact_for(application_id)


SERVICE = IntakeService
