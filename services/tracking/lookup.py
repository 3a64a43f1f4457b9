"""The one way to open an application by its codes, shared by the JSON API and the pages.

Order of work, the same for every request: count the client; check the tracking code is not
locked (known or not); read the code map entry (one `_id` read, found or not); compare the
security code's digest with it in constant time (against a dummy digest when there is nothing to
compare with); on failure count it against the client and the code. An unknown code and a wrong
security code therefore cost the same and are answered the same. Codes are never logged here.
The JSON API's hot path (`lookup`) stores the client's count with the failures, in one insert
after the comparison, and answers as if it had counted first.

The public view of an application is rendered once per version of its read model and kept for a
minute (`view_json`): every write bumps the version, which is checked against the store on each
lookup, so an answer is never older than the store, whichever replica wrote last.

Our own lag is never the citizen's failure: under a burst tracking may not have folded an
application intake has just answered 201 for. When the comparison fails, the owner of the codes
is asked (`receipts`: intake's `receipt_for_codes`, with the digest, never the code); if intake
confirms the pair, the application opens as intake stored it — its receipt folded in memory
only, shown exactly as the real event will show it — and nothing is counted. Every failed
comparison asks, so an unknown code and a wrong security code still cost the same.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from services.common.catalogue import Category
from services.common.catalogue_cache import CatalogueCache
from services.common.codes import new_security_code, security_digest
from services.common.events import load_event, utcnow
from services.common.fastpath import dumps
from services.tracking import domain
from services.tracking.ratelimit import Blocked, Clock, Limiter, limits_from
from services.tracking.store import TrackingStore

log = logging.getLogger(__name__)
VIEW_CACHE_SECONDS = 60.0
VIEW_CACHE_SIZE = 20_000
PENDING_SECONDS = 120.0  # a receipt confirmed by intake, until tracking has folded its own
# After this many receipt checks in a row failed (intake away), lookups stop asking for
# `RECEIPTS_PAUSE_SECONDS`, so that they do not each wait for the RPC's timeout; misses are then
# ordinary misses. One slow answer under a burst must not pause them: that turned the citizens'
# right codes into "wrong code" for 10 s, and their retries into a lock-out.
RECEIPTS_FAILURES_TO_PAUSE = 3
RECEIPTS_PAUSE_SECONDS = 10.0
# (tracking code, security digest) → the `application_received` envelope, or None
Receipts = Callable[[str, str], dict | None]


@dataclass(frozen=True)
class Opened:
    """A lookup that succeeded: the application it opened."""

    application_id: str


@dataclass(frozen=True)
class NotFound:
    """Unknown tracking code or wrong security code — deliberately indistinguishable."""


Outcome = Opened | NotFound | Blocked


class Tracker:
    """Lookups, views and the holder's actions, over tracking's store."""

    def __init__(self, store: TrackingStore, config: dict, catalogue: CatalogueCache,
                 receipts: Receipts | None = None, clock: Clock = utcnow):
        self.store = store
        self.receipts = receipts
        self._receipts_paused_until = 0.0
        self._receipts_failed = 0  # checks failed in a row
        # application id → (kept until (monotonic), read model folded from intake's receipt)
        self._pending: dict[str, tuple[float, dict]] = {}
        self.pepper = config["CODE_PEPPER"]
        self.trusted_hops = int(config.get("PROXY_HOPS") or 0)
        # `clock`: the time the limits count in (tests pin it so no window boundary is crossed)
        self.limiter = Limiter(store, self.pepper, limits_from(config), clock=clock)
        # Compared against when there is nothing to compare with: the digest of a random code
        # nobody was given, so the unknown-code path does the same work as the wrong-code path.
        self.dummy_digest = security_digest(self.pepper, new_security_code())
        # the file's categories plus the admin changes folded here (`category_saved`): the
        # composition root's one cache, which the nameko side updates
        self.catalogue_cache = catalogue
        self._names: tuple[dict | None, dict[str, tuple[str, str]]] = (None, {})
        # application id → (version, fresh until (monotonic), rendered JSON, catalogue used)
        self._views: dict[str, tuple[int, float, bytes, dict]] = {}

    @property
    def catalogue(self) -> dict[str, Category]:
        """The categories now (admin changes included); a clock read, no database read."""
        return self.catalogue_cache.get()

    @property
    def category_names(self) -> dict[str, tuple[str, str]]:
        """code → (Turkish, English) name, rebuilt when the catalogue changed."""
        current = self.catalogue
        names_of, names = self._names
        if names_of is not current:
            names = {code: (c.name_tr, c.name_en) for code, c in current.items()}
            self._names = (current, names)
        return names

    # -- gates ----------------------------------------------------------------------------------

    def gate(self, address: str, bucket: str = "lookup",
             now: datetime | None = None) -> Blocked | None:
        """Count one request from a client; `Blocked` when it is over its limit."""
        return self.limiter.client(address, bucket, now or self.limiter.clock())

    def open(self, tracking_code: str, security_code: str, address: str,
             now: datetime | None = None) -> Outcome:
        """Open an application by its (canonical) tracking code and typed security code.

        The client (`address`) has been counted already (`gate`); a failure counts against it
        and against the code.
        """
        now = now or self.limiter.clock()
        blocked = self.limiter.code(tracking_code, now)
        if blocked is not None:
            return blocked
        entry = self.store.code_entry(tracking_code)
        digest = security_digest(self.pepper, security_code)
        if domain.may_answer(entry, digest, self.dummy_digest):
            return Opened(entry["application_id"])
        pending = self._confirmed_by_owner(tracking_code, digest)
        if pending is not None:
            return Opened(pending)
        self.limiter.failed(address, tracking_code, now)
        return NotFound()

    def _confirmed_by_owner(self, tracking_code: str, digest: str) -> str | None:
        """The application id, when intake confirms codes tracking does not (yet) know."""
        if self.receipts is None or time.monotonic() < self._receipts_paused_until:
            return None
        try:
            envelope = self.receipts(tracking_code, digest)
        except Exception:  # intake away or slow: an ordinary miss, as before
            self._receipts_failed += 1
            if self._receipts_failed >= RECEIPTS_FAILURES_TO_PAUSE:
                self._receipts_failed = 0
                self._receipts_paused_until = time.monotonic() + RECEIPTS_PAUSE_SECONDS
                log.warning("receipt checks with intake failed; paused",
                            extra={"seconds": RECEIPTS_PAUSE_SECONDS}, exc_info=True)
            return None
        self._receipts_failed = 0
        if envelope is None:
            return None
        event = load_event(envelope)
        doc, _ = domain.fold_event(None, event)
        if doc is None:
            return None
        if len(self._pending) >= VIEW_CACHE_SIZE:
            self._pending.clear()
        self._pending[event["application_id"]] = (time.monotonic() + PENDING_SECONDS, doc)
        return event["application_id"]

    def _pending_doc(self, application_id: str) -> dict | None:
        kept = self._pending.get(application_id)
        if kept is None or kept[0] < time.monotonic():
            self._pending.pop(application_id, None)
            return None
        return kept[1]

    def lookup(self, tracking_code: str, security_code: str, address: str,
               now: datetime | None = None) -> Outcome:
        """`gate` and `open` in one, for the hot path: the same answers, the same work for an
        unknown code and a wrong security code, and the lookup's counts stored in one insert
        (`Limiter.lookup`)."""
        opened: list[str] = []

        def attempt() -> bool:
            entry = self.store.code_entry(tracking_code)
            digest = security_digest(self.pepper, security_code)
            if domain.may_answer(entry, digest, self.dummy_digest):
                opened.append(entry["application_id"])
                return True
            pending = self._confirmed_by_owner(tracking_code, digest)
            if pending is not None:
                opened.append(pending)
                return True
            return False

        outcome = self.limiter.lookup(address, tracking_code, now or self.limiter.clock(),
                                      attempt)
        if isinstance(outcome, Blocked):
            return outcome
        return Opened(opened[0]) if outcome else NotFound()

    # -- views and actions --------------------------------------------------------------------

    def reopen_days(self, doc: dict) -> int:
        category = self.catalogue.get(doc.get("category") or "")
        return category.reopen_days if category else 0

    def doc(self, application_id: str) -> dict | None:
        """An application's read model, if it can be shown (its receipt is folded here, or
        intake confirmed it to the holder of its codes moments ago)."""
        doc = self.store.get(application_id)
        if domain.is_visible(doc):
            self._pending.pop(application_id, None)
            return doc
        return self._pending_doc(application_id)

    def view(self, doc: dict, now: datetime | None = None) -> dict:
        """The JSON-ready public view of an opened application."""
        return domain.public_view(doc, self.category_names, reopen_days=self.reopen_days(doc),
                                  now=now or utcnow())

    def view_json(self, application_id: str) -> bytes | None:
        """The public view as JSON, rendered once per read-model version (the hot path)."""
        cached = self._views.get(application_id)
        catalogue = self.catalogue  # a renamed category re-renders the view
        if (cached is not None and cached[1] > time.monotonic() and cached[3] is catalogue
                and self.store.has_version(application_id, cached[0])):
            return cached[2]
        found = self.store.get_versioned(application_id)
        if found is None or not domain.is_visible(found[0]):
            pending = self._pending_doc(application_id)
            return None if pending is None else dumps(self.view(pending))
        self._pending.pop(application_id, None)
        doc, version = found
        body = dumps(self.view(doc))
        if len(self._views) >= VIEW_CACHE_SIZE:
            self._views.clear()  # simple and bounded; it refills at the next lookups
        self._views[application_id] = (version, time.monotonic() + VIEW_CACHE_SECONDS, body,
                                       catalogue)
        return body

    def reopen(self, doc: dict, reason: str, now: datetime | None = None) -> dict:
        """Record the holder's reopen request and its event in one write; the new read model.

        Raises `domain.NotAllowed` when the application does not allow it.
        """
        now = now or utcnow()
        days = self.reopen_days(doc)
        domain.check_reopen(doc, days, now)  # fail fast; checked again inside the write
        event = domain.reopen_event(doc, reason, now)
        self.store.apply(doc["application_id"], event["event_id"],
                         lambda current: domain.request_reopen(current, event, days, now))
        return self.store.get(doc["application_id"])

    def rate(self, doc: dict, score: int, comment: str | None,
             now: datetime | None = None) -> dict:
        """Record the holder's rating and its event in one write; the new read model."""
        now = now or utcnow()
        domain.check_satisfaction(doc)
        event = domain.satisfaction_event(doc, score, comment, now, source="web")
        self.store.apply(doc["application_id"], event["event_id"],
                         lambda current: domain.record_satisfaction(current, event, now))
        return self.store.get(doc["application_id"])

    def rate_by_reply(self, application_ids: list[str], score: int, reply_id: str | None = None,
                      now: datetime | None = None) -> dict | None:
        """Record an SMS survey reply on the latest concluded application of `application_ids`
        still awaiting a rating; `domain.reply_result` of it, or None when none awaits one.

        The same rules and the same one guarded write as `rate` (rating and
        `satisfaction_recorded` together, once per conclusion). With `reply_id` a reply
        delivered again answers what it recorded the first time and records nothing more, even
        when both deliveries run at once (the loser of the write finds the winner's rating).
        """
        now = now or utcnow()
        docs = {i: self.store.get(i) for i in dict.fromkeys(application_ids)}
        if reply_id:
            done = next((d for d in docs.values() if domain.rated_by_reply(d, reply_id)), None)
            if done is not None:
                return domain.reply_result(done)
        tried: set[str] = set()
        while True:
            doc = domain.awaiting_rating(d for i, d in docs.items() if i not in tried)
            if doc is None:
                return None
            application_id = doc["application_id"]
            tried.add(application_id)
            event = domain.satisfaction_event(doc, score, None, now, source="sms")
            try:
                self.store.apply(application_id, event["event_id"],
                                 lambda current, event=event: domain.record_satisfaction(
                                     current, event, now, reply_id=reply_id))
            except domain.NotAllowed:
                # rated meanwhile: by this very reply (a concurrent delivery), else by the
                # citizen on the page — then the reply goes to the next one awaiting a rating
                current = self.store.get(application_id)
                if reply_id and domain.rated_by_reply(current, reply_id):
                    return domain.reply_result(current)
                continue
            return domain.reply_result(self.store.get(application_id) or doc)
