"""Intake's bus entrypoints: the outbox relay, contact lookups for notify, the muhtar registry
for the muhtar portal, submissions from other doors, the admin's catalogue changes, and
housekeeping."""
from __future__ import annotations

import hmac
import logging

from marshmallow import ValidationError
from nameko.rpc import rpc
from nameko.timer import timer

from services.common.bootstrap import Composed
from services.common.events import make_event, utcnow
from services.common.handlers import event_handler
from services.common.refusals import SubmissionRefused
from services.common.retention import RUN_SECONDS as RETENTION_SECONDS
from services.intake import domain
from services.intake.bootstrap import IntakeParts, build
from services.intake.schemas import CreateApplicationSchema

log = logging.getLogger(__name__)
PURGE_SECONDS = 600
_SUBMISSION = CreateApplicationSchema()


class IntakeService:
    name = "intake"

    parts: IntakeParts = Composed(build)

    @rpc
    def submit_application(self, payload: dict) -> dict:
        """Accept an application from another service's door (muhtar portal, Open311).

        `payload` has the shape of `POST /api/v1/applications` (with `caller_type`). Returns the
        same answer; a wrong field raises `SubmissionRefused` naming it (registered with
        nameko, so the caller catches the same class and reads `errors`).
        """
        try:
            valid = _SUBMISSION.load(self._with_registered_citizen(payload))
            answer = self.parts.intake.submit(valid)
        except ValidationError as exc:
            raise SubmissionRefused(exc.messages) from None
        except domain.Rejected as rejected:
            raise SubmissionRefused(rejected.errors) from None
        return answer

    def _with_registered_citizen(self, payload: dict) -> dict:
        """`citizen_ref` (services only, e.g. the muhtar portal after `identify_muhtar`) stands
        for the registered person: their profile's details fill `citizen`."""
        if not isinstance(payload, dict) or not payload.get("citizen_ref"):
            return payload
        profile = self.parts.store.get_citizen(str(payload["citizen_ref"]))
        if profile is None:
            raise SubmissionRefused({"citizen_ref": ["Kayıtlı değil / not registered."]})
        person = {k: profile.get(k) for k in ("tckn", "first_name", "last_name", "phone",
                                              "email") if profile.get(k)}
        rest = {k: v for k, v in payload.items() if k not in ("citizen_ref", "citizen")}
        return dict(rest, citizen=person, anonymous=False)

    @rpc
    def receipt_for_codes(self, tracking_code: str, digest: str) -> dict | None:
        """The `application_received` envelope for the holder of both codes, else None.

        Tracking asks when it has not folded a code yet (it lags intake under a burst): the
        codes intake answered 201 for must open the application, not count as a wrong guess.
        `digest` is the security code's digest (`codes.security_digest`); the code itself never
        travels. Compared in constant time; no personal data in the answer.
        """
        if not isinstance(tracking_code, str) or not isinstance(digest, str):
            return None
        application = self.parts.store.application_for_code(tracking_code)
        stored = (application or {}).get("security_digest") or ""
        if not application or not hmac.compare_digest(stored.encode(), digest.encode()):
            return None
        # as published, with an event id of its own: the reader folds it in memory only
        return make_event("application_received", application["_id"],
                          domain.received_data(application),
                          occurred_at=application["received_at"])

    @rpc
    def get_contact(self, application_id: str) -> dict | None:
        """Where to reach the person behind an application (and a security code still owed
        to them); only notify calls this, at send time.

        `{phone, email, preferred_channel, channel, citizen_ref, caller_type, language
        [, security_code]}`: `citizen_ref` is the citizen's opaque id (None for a sender with no
        profile), `caller_type` the application's (`muhtar`, …), `language` `tr` or `en`.
        """
        return self.parts.store.contact_for(application_id)

    @rpc
    def get_callback_contact(self, application_id: str, staff: str, role: str) -> dict | None:
        """The name and contact of the person behind an application, for the mayor's office's
        call-back (seed 004); reporting calls this at read time, for `staff`. Every answer is
        written to intake's audit log of personal-data reads, as the staff API's reads are."""
        application = self.parts.store.get_application(application_id)
        if not application or not application.get("citizen_id"):
            return None
        citizen = self.parts.store.get_citizen(application["citizen_id"])
        if not citizen:
            return None
        self.parts.store.audit({"at": utcnow(), "staff": staff, "role": role,
                                "action": "callback.contact", "citizen_id": citizen["_id"],
                                "application_id": application_id, "path": "rpc"})
        return {"first_name": citizen.get("first_name"), "last_name": citizen.get("last_name"),
                "phone": citizen.get("phone"), "email": citizen.get("email")}

    @rpc
    def get_inbound_contact(self, inbound_id: str) -> dict | None:
        """Where a reply to an inbound message goes: `{channel, address}`; notify only."""
        inbound = self.parts.store.get_inbound(inbound_id)
        if not inbound or not inbound.get("reply_channel"):
            return None
        return {"channel": inbound["reply_channel"], "address": inbound["address"],
                "subject": inbound.get("subject")}

    @rpc
    def identify_muhtar(self, tckn: str, first_name: str, last_name: str) -> str | None:
        """The muhtar's `citizen_ref` if the TCKN and names are a registered muhtar's, else None.

        Names compare Turkish-case-insensitively; the answer never says which field was wrong.
        """
        if not isinstance(tckn, str) or not tckn.isdigit() or len(tckn) != 11:
            return None
        hash_key = self.parts.intake.settings.hash_key
        citizen = self.parts.store.get_citizen(domain.citizen_key(hash_key, tckn))
        if citizen is None:
            # compare anyway, so a wrong TCKN costs the same as wrong names
            domain.names_match("-", "-", first_name or "", last_name or "")
            return None
        match = domain.names_match(citizen.get("first_name") or "",
                                   citizen.get("last_name") or "",
                                   first_name or "", last_name or "")
        if not match or citizen.get("caller_type") != "muhtar":
            return None
        return citizen["_id"]

    @rpc
    def get_citizen_contact(self, citizen_ref: str) -> dict | None:
        """`{phone, email, preferred_channel, language}` of a registered person (the muhtar
        portal)."""
        return self.parts.store.citizen_contact(citizen_ref)

    @event_handler("routing", "category_saved")
    def handle_category_saved(self, event: dict) -> None:
        """An admin created, changed or removed a category: validate against it from now on."""
        self.parts.catalogue.apply(event["data"], event["occurred_at"], event["event_id"])

    @event_handler("routing", "case_closed")
    def handle_case_closed(self, event: dict) -> None:
        """KVKK: a concluded application's personal data is kept for the retention period
        from now (`services.common.retention`)."""
        self.parts.retention.record(event)

    @event_handler("routing", "case_reopened")
    def handle_case_reopened(self, event: dict) -> None:
        """KVKK: a reopened application is not concluded any more; its period starts again
        when it is concluded again."""
        self.parts.retention.record(event)

    @timer(interval=RETENTION_SECONDS)
    def anonymise_expired(self) -> None:
        """KVKK: anonymise the applications concluded more than the period ago."""
        self.parts.retention_job.run()

    @timer(interval=PURGE_SECONDS)
    def purge_expired(self) -> None:
        """Forget held security codes, idempotency answers and duplicate slots past their time."""
        codes, keys, slots = self.parts.intake.purge()
        if codes or keys or slots:
            log.info("purged", extra={"held_codes": codes, "idempotency_keys": keys,
                                      "duplicate_slots": slots})


SERVICE = IntakeService
