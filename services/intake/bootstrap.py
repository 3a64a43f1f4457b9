"""Intake's composition root: what one intake process holds, built once.

`IntakeParts` opens intake's database, makes its store (indexes created, the phone index keyed
with intake's hash key), the category catalogue it validates against, the submission use case,
the inbound channels with the RPC pool SMS replies are handed on through (tracking's ratings,
notify's opt-outs), the read scope staff reads of an application ask routing for (its
`may_read` RPC, on a pool of its own), and the relay that publishes `applications` and
`inbound` outboxes. The nameko service receives it through `Composed(build)`, the Flask app
through `create_app(parts)`: both work on the same objects. Starting the parts (with the nameko
container) loads the muhtar registry and, once per database, indexes the phones of citizens
registered before the index.
"""
from __future__ import annotations

import functools
import logging

import yaml

from services.common.bootstrap import Parts, Spawn
from services.common.catalogue_cache import CatalogueCache, open_catalogue
from services.common.retention import Retention, RetentionJob, retention_period
from services.common.rpc import RpcPool
from services.common.scope import ReadScope
from services.intake import domain, submission
from services.intake.channels import text as text_channel
from services.intake.inbound import Inbound
from services.intake.retention import IntakeAnonymiser
from services.intake.schemas import normalise_phone, validate_tckn
from services.intake.store import IntakeStore

log = logging.getLogger(__name__)
# An SMS gateway waits for the webhook's answer; a reply whose peer is slower is answered 503
# and delivered again, rather than holding the gateway past its own timeout.
PEER_TIMEOUT_SECONDS = 5.0
# A staff read waits this long for routing to say whether it is in the reader's scope, then is
# answered 503: a person is waiting, and nothing is shown without the answer.
SCOPE_TIMEOUT_SECONDS = 3.0


class RpcPeers:
    """`inbound.Peers` over RPC: tracking's `record_satisfaction_reply`, notify's
    `set_opt_out` (both idempotent, so a webhook delivered again may call them again)."""

    def __init__(self, pool: RpcPool):
        self.pool = pool

    def record_satisfaction_reply(self, application_ids: list[str], score: int,
                                  reply_id: str | None = None) -> dict | None:
        return self.pool.call("tracking", "record_satisfaction_reply", application_ids, score,
                              reply_id)

    def set_opt_out(self, citizen_ref: str, opted_out: bool, source: str) -> None:
        self.pool.call("notify", "set_opt_out", citizen_ref, opted_out, source)


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
        settings = submission.Settings.from_config(config)
        self.store = IntakeStore(self.db,
                                 phone_key=functools.partial(domain.phone_key, settings.hash_key))
        self.store.ensure_indexes()
        self.catalogue: CatalogueCache = open_catalogue(config, self.db)
        self.intake = submission.Intake(self.store, self.catalogue, config)
        # proxies are started on first use: a process that never gets a reply opens none
        self.rpc = RpcPool(config, timeout=PEER_TIMEOUT_SECONDS)
        self.inbound = Inbound(self.intake, places_of(config), RpcPeers(self.rpc))
        # staff reads of an application ask routing who holds it (issue 13), on a pool of
        # their own with a shorter timeout
        self.routing_rpc = RpcPool(config, size=2, timeout=SCOPE_TIMEOUT_SECONDS)
        self.read_scope = ReadScope(functools.partial(self.routing_rpc.call, "routing",
                                                      "may_read"))
        # KVKK: conclusions as routing announces them, and the job that anonymises after
        # the period (services/common/retention.py)
        self.retention = Retention(self.db)
        self.retention_job = RetentionJob(
            self.retention, IntakeAnonymiser(self.store, self.retention),
            retention_period(config), service="intake")

    def start(self, spawn: Spawn) -> None:
        """Load the muhtar registry (idempotent), fill the phone index once (in the
        background: it reads every citizen), then start the relay."""
        path = self.config.get("MUHTARS_PATH")
        if path:
            count = self.store.load_registry(load_muhtars(path, self.intake.settings.hash_key))
            log.info("muhtar registry loaded", extra={"muhtars": count})
        spawn(self._fill_phone_index, identifier="phone_index_fill")
        super().start(spawn)

    def _fill_phone_index(self) -> None:
        try:
            count = self.store.fill_phone_index()
        except Exception:  # a managed thread that raises would kill the container
            log.warning("filling the phone index failed; tried again at the next start",
                        exc_info=True)
            return
        if count:
            log.info("phone index filled", extra={"citizens": count})

    def close(self) -> None:
        """Stop the RPC pools' proxies, then close the database client."""
        self.rpc.close()
        self.routing_rpc.close()
        super().close()


def build(config: dict) -> IntakeParts:
    """Intake's parts for this process."""
    return IntakeParts(config)
