"""Tracking's composition root: what one tracking process holds, built once.

`TrackingParts` opens tracking's database, makes its store (indexes created), the category
catalogue (the file plus the admin changes `category_saved` stores here), the two RPC pools the
HTTP side calls other services through, the lookup use case (`Tracker`, with its rate limiter and
the receipt check against intake), the Open311 listing and the organisation file's places and
jurisdictions, and the relay that publishes the citizens' actions (`applications` outbox). The
nameko service receives it through `Composed(build)`, the Flask app through `create_app(parts)`:
both work on the same objects, so an admin's rename folded by a handler shows on the next lookup
and a reopen written by a view is published by this process's relay at once.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from services.common.bootstrap import Parts
from services.common.catalogue_cache import CatalogueCache, open_catalogue
from services.common.events import utcnow
from services.common.rpc import RpcPool
from services.tracking.lookup import Tracker
from services.tracking.open311 import PublicListing
from services.tracking.organisation import Organisation, load_organisation
from services.tracking.store import TrackingStore

# A short wait for the receipt check: a lookup must not hang on an intake that is away.
RECEIPT_TIMEOUT_SECONDS = 2.0
RECEIPT_PROXIES = 16


class TrackingParts(Parts):
    """Tracking's store, catalogue, RPC pools, lookup use case, Open311 listing and
    organisation, and its relay.

    `clock` is the time the rate limits count in (their windows are aligned to it); tests pin
    it, everything else keeps the wall clock.
    """

    store: TrackingStore
    catalogue: CatalogueCache
    rpc: RpcPool
    receipts_rpc: RpcPool
    tracker: Tracker
    listing: PublicListing
    organisation: Organisation

    def __init__(self, config: dict, *, clock: Callable[[], datetime] = utcnow):
        self.clock = clock
        super().__init__(config, "tracking", relay=("applications",))

    def compose(self, config: dict) -> None:
        self.store = TrackingStore(self.db)
        self.store.ensure_indexes()
        self.catalogue = open_catalogue(config, self.db)
        # For the muhtar portal and Open311 (intake's registry and submissions, notify's codes).
        self.rpc = RpcPool(config)
        # Apart from `rpc`, with a short timeout: the receipt check is on the lookup's path.
        # As many proxies as lookups that may ask at once under a burst: waiting for a free one
        # counts against the same short timeout.
        self.receipts_rpc = RpcPool(config, size=RECEIPT_PROXIES, timeout=RECEIPT_TIMEOUT_SECONDS)
        self.tracker = Tracker(self.store, config, self.catalogue, receipts=self._receipt,
                               clock=self.clock)
        self.listing = PublicListing(self.store, self.tracker)
        self.organisation = load_organisation(config["ORGANISATION_PATH"])

    def _receipt(self, tracking_code: str, digest: str) -> dict | None:
        """Intake's `application_received` for the holder of both codes (`lookup.Receipts`)."""
        return self.receipts_rpc.call("intake", "receipt_for_codes", tracking_code, digest)

    def close(self) -> None:
        """Stop the pools' proxies, then close the database client. Every way out ends here
        (`Composed` stops or kills, then closes; a Flask-only composition just closes), and
        closing a pool twice is harmless."""
        self.rpc.close()
        self.receipts_rpc.close()
        super().close()


def build(config: dict) -> TrackingParts:
    """Tracking's parts for this process."""
    return TrackingParts(config)
