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

from services.common.catalogue import Category
from services.common.catalogue_cache import CatalogueCache
from services.common.codes import display_tracking_code
from services.common.events import new_event_id, utcnow
from services.intake import domain
from services.intake.media import Prepared
from services.intake.store import IntakeStore

CODE_ATTEMPTS = 8
STALE_CLAIM = timedelta(seconds=30)  # an unanswered Idempotency-Key older than this was dropped


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
                filed = domain.own_keys(accepted.application, s.duplicates)
                entries = self.store.file_and_probe(
                    filed, domain.duplicate_entry(accepted.application),
                    domain.probe_keys(accepted.application, s.duplicates))
                original = self._live_original(accepted.application, entries)
            if original is not None:
                self.store.unfile(filed, application_id)
                filed = []
                self.store.release_tracking_code(claimed_code, application_id)
                claimed_code = None
                accepted = domain.merge(accepted, original, now=now)
            if accepted.citizen:
                self.store.save_citizen(accepted.citizen)
            if accepted.security_code and accepted.application["codes_by_message"]:
                # before the event exists, so notify finds the code when it sends
                self.store.hold_codes(application_id, accepted.security_code, now)
            self.store.save_application(accepted.application, [accepted.event])
        except BaseException:
            self._undo(application_id, claimed_code, filed, stored_files)
            raise
        return self._answer(accepted.application, accepted.security_code)

    def _live_original(self, application: dict, entries: list[dict]) -> dict | None:
        """The original `find_original` names, if it is really stored and not itself merged."""
        candidates = list(entries)
        while candidates:
            original = domain.find_original(application, candidates, self.settings.duplicates)
            if original is None:
                return None
            stored = self.store.get_application(original["application_id"])
            if stored is not None and stored.get("status") == domain.RECEIVED:
                return original
            candidates = [e for e in candidates
                          if e["application_id"] != original["application_id"]]
        return None

    def _undo(self, application_id: str, code: str | None, filed: list[str],
              files: list[str]) -> None:
        if code:
            self.store.release_tracking_code(code, application_id)
        if filed:
            self.store.unfile(filed, application_id)
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
        self.store.hold_codes(application_id, security_code, now)
        if not self.store.update_application(application_id, domain.MERGED, fields, [event]):
            self.store.release_tracking_code(fields["tracking_code"], application_id)
            raise domain.Rejected({"application_id": ["Birleştirilmiş değil / not merged."]})
        return self._answer(dict(application, **fields), None)

    # -- housekeeping ---------------------------------------------------------------------

    def purge(self, now: datetime | None = None) -> tuple[int, int]:
        """Forget held codes and idempotency answers past their hold times."""
        now = now or utcnow()
        return self.store.purge_expired(now - self.settings.code_hold,
                                        now - self.settings.idempotency_hold)


def show_code(code: str | None) -> str | None:
    """Display form of a stored tracking code."""
    return display_tracking_code(code) if code else None
