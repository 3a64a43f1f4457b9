"""Accepting one submission, whatever door it came through (web form, desk, channel webhooks,
CİMER import, RPC from another service).

Validation has already happened (schemas); this applies the domain rules and stores the result:
claims the Idempotency-Key, claims a unique tracking code, checks for an earlier application
this one duplicates, registers or refreshes the citizen, stores attachments, and stores the
application with its event (`application_received` or `application_merged`) in one write.
Anything refused or failing before that write undoes what it claimed: nothing is half-stored.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import eventlet

from services.common.catalogue import Category
from services.common.catalogue_cache import CatalogueCache
from services.common.codes import display_tracking_code
from services.common.events import new_event_id, utcnow
from services.intake import domain
from services.intake.media import Prepared
from services.intake.store import DuplicateSlots, IntakeStore

CODE_ATTEMPTS = 8
STALE_CLAIM = timedelta(seconds=30)  # an unanswered Idempotency-Key older than this was dropped
# An entry filed this recently whose application is not stored yet belongs to a submission still
# being stored: a duplicate of it waits for it rather than becoming a second original. Older, it
# was left by a submission that died.
IN_FLIGHT = timedelta(seconds=5)


class NoTrackingCode(Exception):
    """Every drawn tracking code was taken (practically impossible; retry the request)."""


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before for a different request."""


class RequestInProgress(Exception):
    """A request with the same Idempotency-Key is being handled right now."""


@dataclass(frozen=True)
class Settings:
    pepper: str
    hash_key: str
    duplicates: domain.DuplicatePolicy
    attachment_max_bytes: int
    default_province: str
    code_hold: timedelta
    idempotency_hold: timedelta

    @classmethod
    def from_config(cls, config: dict) -> Settings:
        pepper = config["CODE_PEPPER"]
        return cls(
            pepper=pepper,
            hash_key=config.get("CITIZEN_HASH_KEY") or pepper,
            duplicates=domain.DuplicatePolicy(
                window=timedelta(hours=float(config.get("DUPLICATE_WINDOW_HOURS", 72))),
                distance_m=float(config.get("DUPLICATE_DISTANCE_METRES", 50))),
            attachment_max_bytes=int(config.get("ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)),
            default_province=config.get("DEFAULT_PROVINCE", "Mersin"),
            code_hold=timedelta(hours=float(config.get("CODE_DELIVERY_HOURS", 24))),
            idempotency_hold=timedelta(hours=float(config.get("IDEMPOTENCY_HOURS", 24))),
        )


def _fingerprint(payload: dict, attachments: list[Prepared]) -> str:
    canonical = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode())
    for one in attachments:
        digest.update(one.sha256.encode())
    return digest.hexdigest()


def _seal(pepper: str, key: str, text: str | None) -> str | None:
    """XOR `text` with a keystream only the holder of the raw Idempotency-Key can derive.

    The stored replay answer must contain the security code (a retry is for a client that never
    saw it); sealing means a reader of the database alone cannot use it.
    """
    if text is None:
        return None
    stream = hmac.new(pepper.encode(), f"seal:{key}".encode(), hashlib.sha256).digest()
    raw = text.encode()
    return bytes(a ^ b for a, b in zip(raw, stream, strict=False)).hex()


def _unseal(pepper: str, key: str, sealed: str | None) -> str | None:
    if sealed is None:
        return None
    stream = hmac.new(pepper.encode(), f"seal:{key}".encode(), hashlib.sha256).digest()
    return bytes(a ^ b for a, b in zip(bytes.fromhex(sealed), stream, strict=False)).decode()


class Intake:
    """The use cases of intake over its store; shared by the HTTP app and the nameko service."""

    def __init__(self, store: IntakeStore, catalogue: CatalogueCache, config: dict):
        self.store = store
        self.catalogue_cache = catalogue
        self.config = config
        self.settings = Settings.from_config(config)
        self.slots = DuplicateSlots(self.settings.duplicates.window)

    @property
    def catalogue(self) -> dict[str, Category]:
        """The categories now (admin changes included); a clock read, no database read."""
        return self.catalogue_cache.get()

    # -- the one way in -------------------------------------------------------------------

    def submit(
        self,
        payload: dict,
        *,
        idempotency_key: str | None = None,
        scope: str = "applications",
        attachments: list[Prepared] = (),
        reveal_code: bool = True,
        now: datetime | None = None,
    ) -> dict:
        """Accept a validated submission; returns the answer shown to the applicant once.

        Raises `domain.Rejected` (fields named) for a well-formed but unacceptable submission,
        `IdempotencyConflict` / `RequestInProgress` for a reused key.
        """
        now = now or utcnow()
        attachments = list(attachments)
        key_id = None
        application_id = new_event_id()
        if idempotency_key:
            key_id = self._key_id(scope, idempotency_key)
            fingerprint = _fingerprint(payload, attachments)
            existing = self.store.claim_key(key_id, fingerprint, application_id, now)
            if existing is not None:
                replay = self._replay(existing, key_id, idempotency_key, fingerprint, now)
                if replay is not None:
                    return replay if reveal_code else dict(replay, security_code=None)
                application_id = existing["application_id"]  # a dead request: take over
        try:
            answer = self._accept(payload, application_id, attachments, now)
        except BaseException:
            if key_id:
                self.store.release_key(key_id)
            raise
        if key_id:
            sealed = dict(answer, security_code=_seal(self.settings.pepper, idempotency_key,
                                                      answer["security_code"]))
            self.store.complete_key(key_id, sealed)
        if not reveal_code:
            answer = dict(answer, security_code=None)
        return answer

    def _key_id(self, scope: str, key: str) -> str:
        return hmac.new(self.settings.pepper.encode(), f"idem:{scope}:{key}".encode(),
                        hashlib.sha256).hexdigest()

    def _replay(self, existing: dict, key_id: str, key: str, fingerprint: str,
                now: datetime) -> dict | None:
        if existing.get("fingerprint") != fingerprint:
            raise IdempotencyConflict()
        answer = existing.get("answer")
        if answer:
            return dict(answer, security_code=_unseal(self.settings.pepper, key,
                                                      answer.get("security_code")),
                        replayed=True)
        if not self.store.take_over_key(key_id, now - STALE_CLAIM, now):
            raise RequestInProgress()
        stored = self.store.get_application(existing["application_id"])
        if stored is not None:  # stored, but its request died before answering
            return self._answer(stored, self.store.held_code(stored["_id"]), replayed=True)
        return None

    def check_caller(self, payload: dict) -> None:
        """A muhtar's application must come from a muhtar in the registry (seed 003)."""
        if payload.get("caller_type") != "muhtar":
            return
        tckn = (payload.get("citizen") or {}).get("tckn")
        profile = self.store.get_citizen(domain.citizen_key(self.settings.hash_key, tckn)) if (
            tckn and not payload.get("anonymous")) else None
        if not profile or profile.get("caller_type") != "muhtar":
            raise domain.Rejected({"caller_type": [
                "Kayıtlı bir muhtar değil / not a registered muhtar."]})

    def _accept(self, payload: dict, application_id: str, attachments: list[Prepared],
                now: datetime) -> dict:
        s = self.settings
        self.check_caller(payload)
        accepted = domain.accept(payload, self.catalogue, now=now, hash_key=s.hash_key,
                                 pepper=s.pepper, application_id=application_id)
        stored_files: list[str] = []
        claimed_code = None
        filed: list[str] = []
        try:
            if attachments:
                metas = [self._store_attachment(one, application_id) for one in attachments]
                stored_files = [m["id"] for m in metas] + [
                    m["thumbnail_id"] for m in metas if m["thumbnail_id"]]
                accepted.application["attachments"] = metas
            for _ in range(CODE_ATTEMPTS):
                if self.store.reserve_tracking_code(accepted.application["tracking_code"],
                                                    application_id):
                    claimed_code = accepted.application["tracking_code"]
                    break
                accepted = domain.with_new_codes(accepted, s.pepper)
            else:
                raise NoTrackingCode()
            original = None
            if domain.duplicate_candidate(accepted.application):
                original, filed = self._find_or_file(accepted.application)
            if original is not None:
                self.store.release_tracking_code(claimed_code, application_id)
                claimed_code = None
                accepted = domain.merge(accepted, original, now=now)
                self.store.link_duplicate(original["application_id"], application_id)
            if accepted.citizen:
                # listed on the profile even if the write below fails: readers skip an id
                # with no application behind it
                self.store.save_citizen(accepted.citizen, application_id)
            if accepted.security_code and accepted.application["codes_by_message"]:
                # before the event exists, so notify finds the code when it sends
                self.store.hold_codes(application_id, accepted.security_code, now)
            self.store.save_application(accepted.application, [accepted.event])
        except BaseException:
            self._undo(application_id, claimed_code, filed, stored_files)
            raise
        return self._answer(accepted.application, accepted.security_code)

    def _find_or_file(self, application: dict) -> tuple[dict | None, list[str]]:
        """`(original, [])` for a duplicate; `(None, slots filed)` for a new original.

        Every read and write is by `_id` (see `DuplicateSlots`). The entries filed under the
        application's own keys and its neighbours' are read first; when none is a live original
        the application files itself in the next free slot of each own key. An insert succeeds
        for one writer only, so a submission filing at the same moment under the same key
        shows up on the way (it filed first: it is the original, whatever the clock said).
        Neighbouring cells are read again after filing: of two submissions filing at once in
        neighbouring cells, at least the later reader sees the other.
        """
        policy = self.settings.duplicates
        at = application["received_at"]
        own = domain.own_keys(application, policy)
        own_sequences = [seq for key in own
                         for seq in self.slots.sequences(key, at - policy.window, at)]
        around = [seq for key in domain.probe_keys(application, policy) if key not in own
                  for seq in self.slots.sequences(key, at - policy.window, at)]
        ends: dict[str, int] = {}
        before = self.store.read_slots(own_sequences, ends)
        near = self.store.read_slots(around, ends)
        filed_before = {entry["application_id"] for entry in before}
        original = self._live_original(application, before + near, filed_before)
        if original is not None:
            return original, []
        entry = domain.duplicate_entry(application)
        filed: list[str] = []
        late: list[dict] = []
        try:
            for key in own:
                sequence = self.slots.sequence(key, at)
                slot, seen = self.store.file_slot(sequence, ends.get(sequence, 0), entry)
                filed.append(slot)
                late += seen
                filed_before.update(e["application_id"] for e in seen)
            late += self.store.read_slots(around, ends)
            original = self._live_original(application, late, filed_before) if late else None
        except BaseException:
            self.store.unfile(filed)
            raise
        if original is not None:
            self.store.unfile(filed)
            return original, []
        return None, filed

    def _live_original(self, application: dict, entries: list[dict],
                       filed_before: set[str] = frozenset()) -> dict | None:
        """The original `find_original` names, if it is really stored and not itself merged."""
        candidates = list(entries)
        while candidates:
            original = domain.find_original(application, candidates, self.settings.duplicates,
                                            filed_before=filed_before)
            if original is None:
                return None
            if self._is_live(original):
                return original
            candidates = [e for e in candidates
                          if e["application_id"] != original["application_id"]]
        return None

    def _is_live(self, entry: dict) -> bool:
        """Whether the entry's application is stored as received (not merged, not refused).

        A submission files its entry before it stores its application; one filed moments ago
        is waited for (briefly) instead of being taken for dead.
        """
        delay = 0.005
        while True:
            stored = self.store.get_application(entry["application_id"])
            if stored is not None:
                return stored.get("status") == domain.RECEIVED
            filed_at = entry.get("filed_at")
            if filed_at is None or utcnow() - filed_at > IN_FLIGHT:
                return False
            if self.store.slot_withdrawn(entry["slot"]):
                return False
            eventlet.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _undo(self, application_id: str, code: str | None, filed: list[str],
              files: list[str]) -> None:
        if code:
            self.store.release_tracking_code(code, application_id)
        if filed:
            self.store.unfile(filed)
        for file_id in files:
            self.store.attachments.delete(file_id)

    def _store_attachment(self, one: Prepared, application_id: str) -> dict:
        meta = {"application_id": application_id, "sha256": one.sha256}
        file_id = self.store.attachments.put(one.data, filename=one.filename,
                                             content_type=one.content_type, metadata=meta)
        thumbnail_id = None
        if one.thumbnail:
            thumbnail_id = self.store.attachments.put(
                one.thumbnail, filename=f"thumb-{one.filename.rsplit('.', 1)[0]}.jpg",
                content_type="image/jpeg", metadata=dict(meta, thumbnail_of=file_id))
        return {"id": file_id, "filename": one.filename, "content_type": one.content_type,
                "size": len(one.data), "sha256": one.sha256, "thumbnail_id": thumbnail_id,
                "width": one.width, "height": one.height}

    def _answer(self, application: dict, security_code: str | None, *,
                replayed: bool = False) -> dict:
        merged = application.get("merged_into")
        code = merged["tracking_code"] if merged else application["tracking_code"]
        category = self.catalogue.get(application["category"])
        answer = {
            "application_id": application["_id"],
            "tracking_code": display_tracking_code(code),
            "security_code": security_code,
            "status": application["status"],
            "category_name": category.name_tr if category else None,
            "merged_into": merged["application_id"] if merged else None,
        }
        if replayed:
            answer["replayed"] = True
        return answer

    def answer_for(self, application: dict) -> dict:
        """The answer for a stored application, without a security code (never shown twice)."""
        return self._answer(application, None)

    # -- staff: unlink --------------------------------------------------------------------

    def unlink(self, application_id: str, *, by: str, now: datetime | None = None) -> dict:
        """Make a merged duplicate its own application, with fresh codes sent by message."""
        now = now or utcnow()
        application = self.store.get_application(application_id)
        if application is None:
            raise LookupError(application_id)
        fields, security_code, event = domain.unlink(application, now=now,
                                                     pepper=self.settings.pepper, by=by)
        for _ in range(CODE_ATTEMPTS):
            if self.store.reserve_tracking_code(fields["tracking_code"], application_id):
                break
            fields, security_code, event = domain.with_new_unlink_codes(
                fields, event, self.settings.pepper)
        else:
            raise NoTrackingCode()
        # Held before the event exists, so notify finds the code when it sends; held once: of
        # two staff unlinking at once, the one whose code is held goes on.
        if not self._hold_unlink_code(application_id, security_code, now):
            self.store.release_tracking_code(fields["tracking_code"], application_id)
            raise domain.Rejected({"application_id": ["Birleştirilmiş değil / not merged."]})
        if not self.store.update_application(application_id, domain.MERGED, fields, [event]):
            self.store.drop_held_code(application_id, security_code)
            self.store.release_tracking_code(fields["tracking_code"], application_id)
            raise domain.Rejected({"application_id": ["Birleştirilmiş değil / not merged."]})
        return self._answer(dict(application, **fields), None)

    def _hold_unlink_code(self, application_id: str, security_code: str,
                          now: datetime) -> bool:
        if self.store.hold_codes(application_id, security_code, now):
            return True
        held = self.store.held(application_id)
        if held is not None:
            if now - held["created_at"] < STALE_CLAIM:
                return False  # another unlink is under way
            # left by an unlink that died before storing the application: replace it, once
            self.store.drop_held_code(application_id, held["security_code"])
        return self.store.hold_codes(application_id, security_code, now)

    # -- housekeeping ---------------------------------------------------------------------

    def purge(self, now: datetime | None = None) -> tuple[int, int, int]:
        """Forget held codes, idempotency answers and duplicate slots past their time."""
        now = now or utcnow()
        return self.store.purge_expired(
            now - self.settings.code_hold, now - self.settings.idempotency_hold,
            self.slots.purge_before(self.settings.duplicates.window, now))


def show_code(code: str | None) -> str | None:
    """Display form of a stored tracking code."""
    return display_tracking_code(code) if code else None
