"""Intake's HTTP API: submissions from every door, the citizen registry for staff, duplicates.

Public: `POST /api/v1/applications` (JSON), the channel webhooks (`/api/v1/channels/sms`,
`/email`, `/message`) and the web form (`/basvuru`, `webform.py`). Staff (token): the desk and
call-centre form, field-team submissions with photos, the CİMER batch import, application and
citizen views (every read of personal data is written to the audit log), unlinking duplicates.
Every POST honours an `Idempotency-Key` header: a retried request gets the same application.
"""
from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import jwt
from flask import Flask, Response, current_app, g, request
from flask_smorest import Blueprint, abort
from marshmallow import ValidationError

from services.common.audit import audit_blueprint
from services.common.auth import staff_required, verify_token
from services.common.events import utcnow
from services.common.fastpath import DELEGATE, Answer, FastRoute, read_body
from services.common.scope import ScopeUnavailable, sees_everything
from services.common.web import create_app as create_service_app
from services.common.web import error_body, mongo_check, summary
from services.intake import domain, media, submission
from services.intake.bootstrap import IntakeParts
from services.intake.channels.email import EmailRefused
from services.intake.inbound import REASON_TEXT, ChannelRefused, Message, PeerUnavailable
from services.intake.schemas import (
    ApplicationCreatedSchema,
    ApplicationViewSchema,
    CimerBatchSchema,
    CimerItemSchema,
    CimerResultSchema,
    CitizenProfileSchema,
    CitizenSearchSchema,
    CitizenWriteSchema,
    CreateApplicationSchema,
    DeskApplicationSchema,
    MessageWebhookSchema,
    RevealQuerySchema,
    SmsReplyAnswerSchema,
    SmsWebhookSchema,
)

log = logging.getLogger(__name__)

PREFIXES = ("/api/v1/applications", "/api/v1/channels", "/api/v1/citizens", "/basvuru")
IDEMPOTENCY_HEADER = "Idempotency-Key"
REVEAL_ROLES = ("coordinator", "supervisor", "director", "admin")
# The desk and the call centre (the console's `domain.DESK_ROLES`): the TCKN search and
# registering or correcting a citizen. The roles that see everything (`sees_everything`) and an
# institution's own coordination centre and administrators (its desk); all are `REVEAL_ROLES`.
DESK_ROLES = ("coordinator", "admin")
UNLINK_ROLES = ("coordinator", "supervisor", "director", "admin")
FAST_BODY_MAX = 64 * 1024  # larger submissions go through Flask (its own limit applies)
EMAIL_MAX_BYTES = 40 * 1024 * 1024  # so a 20 MB photo is parsed and answered, not cut off
# Schema instances, made once: building one costs more than loading with it (webargs builds a
# fresh one per request when given a class).
DESK_SCHEMA = DeskApplicationSchema()
CIMER_ITEM_SCHEMA = CimerItemSchema()
SMS_REPLY_SCHEMA = SmsReplyAnswerSchema()
PEER_RETRY_AFTER = "30"  # seconds; an SMS gateway retries a 503 webhook after this
SCOPE_RETRY_AFTER = "5"  # seconds; a staff read refused because routing did not answer
OUT_OF_SCOPE = ("routing holds the application's case outside the caller's unit or institution "
                "(`errors.application_id`; the refusal is audited)")
SCOPE_UNKNOWN = "routing could not say who holds the application; retry after `Retry-After`"
NOT_THE_DESK = f"the desk's work: one of {', '.join(DESK_ROLES)} (`errors.role`)"
CITIZEN_OUT_OF_SCOPE = (
    "a role that does not see everything names, in `application_id`, one of the citizen's "
    "applications that routing lets it read; otherwise a 403 naming `application_id` (audited "
    "`citizen.read.refused`)")


def valid_idempotency_key(key: str) -> bool:
    """1–200 visible ASCII characters."""
    return 0 < len(key) <= 200 and all(33 <= ord(ch) < 127 for ch in key)


def idempotency_key() -> str | None:
    """The request's Idempotency-Key, checked: 1–200 visible ASCII characters."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not valid_idempotency_key(key):
        abort(422, errors={"headers": {IDEMPOTENCY_HEADER: [
            "1–200 görünür ASCII karakter / 1–200 visible ASCII characters."]}})
    return key


def optional_staff():
    """The staff member of a valid bearer token, or None (public requests)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    try:
        return verify_token(current_app.config["ACIKKAPI"]["STAFF_TOKEN_SECRET"],
                            header[len("Bearer "):].strip())
    except jwt.InvalidTokenError:
        return None


def webhook_guard() -> None:
    """Channel webhooks: when `CHANNEL_WEBHOOK_SECRET` is set, the gateway must present it."""
    secret = current_app.config["ACIKKAPI"].get("CHANNEL_WEBHOOK_SECRET")
    if not secret:
        return
    given = request.headers.get("X-Webhook-Secret", "")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        abort(401, message="webhook secret required",
              errors={"headers": {"X-Webhook-Secret": ["missing or wrong"]}})


REFUSALS = (domain.Rejected, submission.IdempotencyConflict, submission.RequestInProgress,
            submission.NoTrackingCode, media.AttachmentRefused, ChannelRefused)


def refusal_of(refused: Exception, location: str) -> tuple[int, dict, str | None, dict]:
    """The status, errors (naming the field), message and headers of a refused submission."""
    if isinstance(refused, domain.Rejected):
        return 422, {location: refused.errors}, None, {}
    if isinstance(refused, submission.IdempotencyConflict):
        return 422, {"headers": {IDEMPOTENCY_HEADER: [
            "Bu anahtar başka bir istekle kullanıldı / key used for a different request."]}}, \
            None, {}
    if isinstance(refused, submission.RequestInProgress):
        return 409, {"headers": {IDEMPOTENCY_HEADER: [
            "Aynı anahtarlı istek sürüyor; tekrar deneyin / in progress, retry shortly."]}}, \
            None, {}
    if isinstance(refused, submission.NoTrackingCode):
        return 503, {}, "could not allocate a tracking code; please retry", {}
    if isinstance(refused, media.AttachmentRefused):
        # 413 too large, 415 not an accepted type, 422 unreadable; the field is `photos`
        status = {media.TOO_LARGE: 413, media.BAD_TYPE: 415}.get(refused.reason, 422)
        text = REASON_TEXT[refused.reason]
        return status, {"files": {"photos": [text]}}, f"photos: {text}", {}
    if isinstance(refused, ChannelRefused):
        return 422, {location: {refused.field: [REASON_TEXT.get(refused.reason,
                                                                refused.reason)]},
                     "reason": [refused.reason]}, None, {
            "X-Inbound-Id": refused.inbound_id or "",
            "X-Reply-Sent": "true" if refused.replied else "false"}
    raise TypeError(f"not a refusal: {type(refused).__name__}")


def run_submission(call: Callable[[], dict], location: str = "json") -> tuple[dict, int, dict]:
    """Run a submission, mapping every refusal to a 4xx in the shared shape."""
    try:
        answer = call()
    except REFUSALS as refused:
        status, errors, message, headers = refusal_of(refused, location)
        abort(status, errors=errors, message=message, headers=headers)
    headers = {"Idempotent-Replayed": "true"} if answer.get("replayed") else {}
    return answer, 201, headers


def refuse_attachment(refused: media.AttachmentRefused):
    """Abort with the answer to a refused photo."""
    status, errors, message, _ = refusal_of(refused, "files")
    abort(status, errors=errors, message=message)


class FastSubmit(FastRoute):
    """`POST /api/v1/applications` from the public as plain WSGI: the hot path of intake.

    The same schema, submission and refusals as the flask-smorest view, which still answers
    whatever is unusual — a staff token (first-contact answers), a body that is not JSON or is
    large, an invalid field or header — so those answers have exactly one implementation.
    """

    def __init__(self, app: Callable, intake: submission.Intake):
        super().__init__(app, "intake", "POST", "/api/v1/applications")
        self.intake = intake
        self.schema = CreateApplicationSchema()

    def answer(self, environ: dict) -> Answer | None:
        if environ.get("HTTP_AUTHORIZATION") or "json" not in environ.get("CONTENT_TYPE", ""):
            return DELEGATE
        key = environ.get("HTTP_IDEMPOTENCY_KEY")
        if key is not None and not valid_idempotency_key(key):
            return DELEGATE
        raw = read_body(environ, FAST_BODY_MAX)
        if not raw:
            return DELEGATE
        try:
            payload = self.schema.load(json.loads(raw))
        except (ValueError, ValidationError):  # malformed JSON is a ValueError too
            return DELEGATE
        if payload.get("answer") or payload.get("answered"):
            return DELEGATE  # staff only: the view refuses it
        try:
            answer = self.intake.submit(payload, idempotency_key=key)
        except REFUSALS as refused:
            status, errors, message, headers = refusal_of(refused, "json")
            body = error_body(status, HTTPStatus(status).phrase, message or summary(errors),
                              errors)
            return status, body, list(headers.items())
        headers = [("Idempotent-Replayed", "true")] if answer.get("replayed") else []
        return 201, answer, headers


def create_app(parts: IntakeParts) -> Flask:
    """Intake's Flask app, on the process's intake parts (shared with the nameko side)."""
    store, intake, inbound, catalogue = parts.store, parts.intake, parts.inbound, parts.catalogue
    max_bytes = intake.settings.attachment_max_bytes

    def audit(action: str, *, citizen_id: str | None = None,
              application_id: str | None = None, **extra: Any) -> None:
        staff = g.staff
        store.audit({"at": utcnow(), "staff": staff.user, "role": staff.role,
                     "action": action, "citizen_id": citizen_id,
                     "application_id": application_id, "path": request.path, **extra})

    def within_scope(application_id: str, refused: str, **extra: Any) -> None:
        """Go on only if routing says the caller may read `application_id` (the coordination
        centre and system-wide administrators are not asked): otherwise a 403 naming
        `application_id`, the refusal audited as `refused`; a 503 when routing cannot say."""
        staff = g.staff
        try:
            verdict = parts.read_scope.check(application_id, staff)
        except ScopeUnavailable as unavailable:
            log.warning("read scope unknown", extra={"application_id": application_id,
                                                     "error": str(unavailable)})
            abort(503, message="who holds the application cannot be checked now; try again "
                               "shortly", errors={"application_id": ["routing unavailable"]},
                  headers={"Retry-After": SCOPE_RETRY_AFTER})
        if verdict is None or verdict.allowed:
            return
        # KVKK: an attempt to read out of scope is an access an administrator must be able to
        # find; codes and ids only, no citizen data (not even which citizen it would have been)
        audit(refused, application_id=application_id, unit=staff.unit,
              institution=staff.institution, case_unit=verdict.unit,
              case_institution=verdict.institution, **extra)
        message = f"application {application_id} is outside what {staff.user} may read"
        abort(403, message=message, errors={"application_id": [message]})

    applications = Blueprint(
        "applications", __name__, url_prefix="/api/v1/applications",
        description="Başvuru kabulü / application intake",
    )

    @applications.route("", methods=["POST"])
    @applications.arguments(CreateApplicationSchema())
    @applications.response(201, ApplicationCreatedSchema())
    @applications.alt_response(422, description="a field is wrong; `errors` names it")
    def submit(payload: dict):
        """Submit an application; the answer carries the tracking and security codes once.

        A duplicate of an earlier application (same citizen or same spot, same category,
        inside the window) is stored as merged and answered with the original's tracking code
        and no security code. Answering at first contact (`answer`) is for staff.
        """
        key = idempotency_key()
        if (payload.get("answer") or payload.get("answered")) and optional_staff() is None:
            abort(422, errors={"json": {"answer": [
                "Yalnızca personel ilk temasta cevaplayabilir / staff only."]}})
        return run_submission(lambda: intake.submit(payload, idempotency_key=key))

    @applications.route("/desk", methods=["POST"])
    @staff_required()
    @applications.arguments(DeskApplicationSchema())
    @applications.response(201, ApplicationCreatedSchema())
    @applications.doc(security=[{"staffToken": []}])
    def desk(form: dict):
        """Seed 004's simplified form, for the desk and the call centre (staff).

        The answer names the category; routing derives the unit from it. An information
        request in a `first_contact` category can be answered and closed on the spot.
        """
        key = idempotency_key()
        payload = desk_payload(form)
        payload["desk"]["entered_by"] = g.staff.user
        return run_submission(lambda: intake.submit(payload, idempotency_key=key,
                                                    scope="desk"))

    @applications.route("/<application_id>", methods=["GET"])
    @staff_required()
    @applications.response(200, ApplicationViewSchema())
    @applications.alt_response(403, description=OUT_OF_SCOPE)
    @applications.alt_response(503, description=SCOPE_UNKNOWN)
    @applications.doc(security=[{"staffToken": []}])
    def view(application_id: str):
        """An application with its duplicates (staff; audited): for those whose scope routing
        says holds it (a unit's staff, its institution's, the coordination centre); 403
        otherwise (the refusal audited), 503 when routing cannot say."""
        within_scope(application_id, "application.read.refused")
        application = store.get_application(application_id)
        if application is None:
            abort(404, message="no such application")
        audit("application.read", citizen_id=application.get("citizen_id"),
              application_id=application_id)
        application["duplicates"] = [
            {"application_id": d["_id"], "channel": d["channel"],
             "received_at": d["received_at"].isoformat()}
            for d in store.duplicates_of(application_id)]
        return application

    @applications.route("/<application_id>/unlink", methods=["POST"])
    @staff_required(*UNLINK_ROLES)
    @applications.response(200, ApplicationCreatedSchema())
    @applications.doc(security=[{"staffToken": []}])
    def unlink(application_id: str):
        """Make a merged duplicate its own application; fresh codes go to the citizen by
        SMS / e-mail (staff never see the security code)."""
        idempotency_key()
        try:
            answer = intake.unlink(application_id, by=g.staff.user)
        except LookupError:
            abort(404, message="no such application")
        except domain.Rejected as rejected:
            current = store.get_application(application_id) or {}
            if current.get("unlinked") and current.get("status") != domain.MERGED:
                # a retried unlink: already done, same answer
                return intake.answer_for(current)
            abort(409, errors={"json": rejected.errors})
        audit("application.unlink", citizen_id=None, application_id=application_id)
        return answer

    @applications.route("/<application_id>/attachments/<file_id>", methods=["GET"])
    @staff_required()
    @applications.alt_response(403, description=OUT_OF_SCOPE)
    @applications.alt_response(503, description=SCOPE_UNKNOWN)
    @applications.doc(security=[{"staffToken": []}])
    def attachment(application_id: str, file_id: str):
        """An attachment (metadata already stripped), as a download (staff; audited); the
        application's scope as for the application itself."""
        within_scope(application_id, "attachment.read.refused", file_id=file_id)
        application = store.get_application(application_id)
        files = {m["id"] for m in (application or {}).get("attachments") or []} | {
            m["thumbnail_id"] for m in (application or {}).get("attachments") or []
            if m.get("thumbnail_id")}
        found = store.attachments.get(file_id) if file_id in files else None
        if found is None:
            abort(404, message="no such attachment")
        data, meta = found
        audit("attachment.read", citizen_id=application.get("citizen_id"),
              application_id=application_id, file_id=file_id)
        response = Response(data, mimetype=meta["content_type"])
        response.headers["Content-Disposition"] = f'attachment; filename="{meta["filename"]}"'
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    channels = Blueprint(
        "channels", __name__, url_prefix="/api/v1/channels",
        description="Kanal girişleri / channel webhooks and imports",
    )

    @channels.route("/sms", methods=["POST"])
    @channels.arguments(SmsWebhookSchema())
    @channels.response(201, ApplicationCreatedSchema())
    @channels.alt_response(200, schema=SmsReplyAnswerSchema,
                           description="a reply, not an application: a 1–5 satisfaction score "
                                       "recorded, or messages stopped / restarted")
    @channels.alt_response(422, description="refused; `errors.reason` is the reason code "
                                            "(the sender gets an SMS saying what was wrong)")
    @channels.alt_response(503, description="tracking or notify did not answer; deliver again")
    def sms(body: dict):
        """An SMS to the short number: "TCKN message" (seed 004). Accepted ones are answered by
        the confirmation SMS with the codes; refused ones by a reply saying what was wrong.

        A message that is only a score ("4", "PUAN 4", "puan: 4") rates the sender's latest
        concluded application still awaiting a rating (refused `no_survey` when none does);
        "IPTAL" / "DUR" / "STOP" stop the sender's non-essential messages, "BAŞLAT" / "START"
        restart them (refused `unknown_sender` for a number nobody registered). Answered 200
        with `result`."""
        webhook_guard()
        key = idempotency_key()
        message = Message("sms", body["from_"], body["text"], body["received_at"])
        try:
            answer, status, headers = run_submission(lambda: inbound.sms(message, key))
        except PeerUnavailable as unavailable:
            # nothing decided: the gateway's next delivery (same inbound id) is handled afresh
            log.warning("sms reply not handed on", extra={
                "service": unavailable.service,
                "error": type(unavailable.__cause__ or unavailable).__name__})
            abort(503, message=f"{unavailable.service} unavailable; deliver the message again",
                  headers={"Retry-After": PEER_RETRY_AFTER})
        if "result" not in answer:
            return answer, status, headers
        return Response(json.dumps(SMS_REPLY_SCHEMA.dump(answer)), status=200,
                        mimetype="application/json",
                        headers={"Idempotent-Replayed": "true"} if answer.get("replayed") else {})

    @channels.route("/message", methods=["POST"])
    @channels.arguments(MessageWebhookSchema())
    @channels.response(201, ApplicationCreatedSchema())
    def message(body: dict):
        """A WhatsApp or social media message, tagged by `channel`; a leading TCKN is used."""
        webhook_guard()
        key = idempotency_key()
        one = Message(body["channel"], body["from_"], body["text"], body["received_at"],
                      name=body["name"])
        return run_submission(lambda: inbound.message(one, key))

    @channels.route("/email", methods=["POST"])
    @channels.response(201, ApplicationCreatedSchema())
    @channels.doc(requestBody={"content": {"message/rfc822": {"schema": {
        "type": "string", "format": "binary"}}}})
    def email():
        """A raw RFC 5322 message (sender, subject, text / HTML body, attachments), answered by
        e-mail: the confirmation with the codes, or what was wrong."""
        webhook_guard()
        key = idempotency_key()
        request.max_content_length = EMAIL_MAX_BYTES
        raw = request.get_data(cache=False)
        if not raw.strip():
            abort(422, errors={"body": ["Boş ileti / empty message."]})
        try:
            return run_submission(lambda: inbound.email(raw, key), location="body")
        except EmailRefused:
            abort(422, errors={"body": {"From": [
                "Yanıtlanabilir bir gönderen yok / no sender address to answer."]}})

    @channels.route("/field", methods=["POST"])
    @staff_required()
    @channels.response(201, ApplicationCreatedSchema())
    @channels.doc(security=[{"staffToken": []}], requestBody={"content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "data": {"type": "string", "description": "the desk form as JSON"},
            "photos": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}})
    def field():
        """A mobile field team's submission: the desk form as JSON in `data`, photos, GPS.

        The position is `location.lat`/`lon`, or read from a photo's GPS before it is stripped.
        """
        key = idempotency_key()
        try:
            raw_form = json.loads(request.form.get("data") or "")
        except ValueError:
            abort(422, errors={"form": {"data": ["JSON bekleniyor / JSON expected."]}})
        raw_form = dict(raw_form if isinstance(raw_form, dict) else {}, channel="field_team")
        try:
            photos = [prepare_upload(f, max_bytes) for f in request.files.getlist("photos")]
        except media.AttachmentRefused as refused:
            refuse_attachment(refused)
        location = raw_form.get("location") if isinstance(raw_form.get("location"), dict) else {}
        if location.get("lat") is None:
            gps = next((p.gps for p in photos if p.gps), None)
            if gps:
                raw_form["location"] = dict(location, lat=gps[0], lon=gps[1])
        try:
            form = DESK_SCHEMA.load(raw_form)
        except ValidationError as exc:
            abort(422, errors={"form": {"data": exc.messages}})
        if form["location"].get("lat") is None:
            abort(422, errors={"form": {"data": {"location": {"lat": [
                "Saha başvurusu konum ister / a field submission needs GPS."]}}}})
        payload = desk_payload(form)
        payload["desk"]["entered_by"] = g.staff.user
        return run_submission(lambda: intake.submit(payload, idempotency_key=key,
                                                    scope="field", attachments=photos),
                              location="form")

    @channels.route("/cimer", methods=["POST"])
    @staff_required()
    @channels.arguments(CimerBatchSchema())
    @channels.response(200, CimerResultSchema())
    @channels.doc(security=[{"staffToken": []}])
    def cimer(batch: dict):
        """A batch from CİMER: each item accepted or refused on its own (naming the field);
        an item imported before (same CİMER reference) answers as before."""
        idempotency_key()
        accepted, rejected = [], []
        for index, raw in enumerate(batch["items"]):
            try:
                item = CIMER_ITEM_SCHEMA.load(raw)
                payload = cimer_payload(item, batch["batch_id"])
                answer = intake.submit(payload, idempotency_key=item["cimer_ref"],
                                       scope="cimer", reveal_code=False)
            except ValidationError as exc:
                rejected.append({"index": index, "cimer_ref": raw.get("cimer_ref"),
                                 "errors": exc.messages})
                continue
            except domain.Rejected as refused:
                rejected.append({"index": index, "cimer_ref": item["cimer_ref"],
                                 "errors": refused.errors})
                continue
            except submission.IdempotencyConflict:
                rejected.append({"index": index, "cimer_ref": item["cimer_ref"], "errors": {
                    "cimer_ref": ["Farklı içerikle daha önce alındı / imported before with "
                                  "other content."]}})
                continue
            accepted.append(dict(answer, index=index, cimer_ref=item["cimer_ref"]))
        return {"batch_id": batch["batch_id"], "accepted": accepted, "rejected": rejected}

    citizens = Blueprint(
        "citizens", __name__, url_prefix="/api/v1/citizens",
        description="Vatandaş kayıtları (personel) / citizen registry (staff)",
    )

    def may_set_caller_type(body: dict) -> None:
        # a muhtar / esnaf / council member profile opens other doors (the muhtar portal)
        if body.get("caller_type") not in (None, "citizen") and g.staff.role not in REVEAL_ROLES:
            abort(403, errors={"json": {"caller_type": [
                f"one of {', '.join(REVEAL_ROLES)} required"]}})

    def profile(citizen: dict, reveal: bool, history: list[dict] | None = None) -> dict:
        """The citizen as staff see it: the TCKN masked unless `reveal`; `history` (default:
        every application of theirs, newest first)."""
        shown = dict(citizen)
        shown["tckn_masked"] = not reveal and bool(citizen.get("tckn"))
        if not reveal:
            shown["tckn"] = domain.mask_tckn(citizen.get("tckn"))
        shown.setdefault("caller_type", "citizen")
        shown["applications"] = (store.applications_of(citizen["_id"]) if history is None
                                 else history)
        return shown

    def refuse_citizen(citizen_id: str, application_id: str | None, refusal: str,
                       message: str) -> None:
        """A 403 naming `application_id`, audited as `citizen.read.refused` (ids only)."""
        staff = g.staff
        audit("citizen.read.refused", citizen_id=citizen_id, application_id=application_id,
              refusal=refusal, unit=staff.unit, institution=staff.institution)
        abort(403, message=message, errors={"application_id": [message]})

    @citizens.route("", methods=["POST"])
    @staff_required(*DESK_ROLES)
    @citizens.arguments(CitizenWriteSchema())
    @citizens.response(201, CitizenProfileSchema())
    @citizens.alt_response(403, description=NOT_THE_DESK)
    @citizens.doc(security=[{"staffToken": []}])
    def register(body: dict):
        """Register a person (seed 000 step 1), or return the profile if already known; the
        desk's roles."""
        idempotency_key()
        may_set_caller_type(body)
        person = {k: v for k, v in body.items() if v is not None}
        if not person.get("first_name") or not person.get("last_name"):
            abort(422, errors={"json": {"first_name": ["Ad ve soyad gerekli / name required."]}})
        citizen = domain.build_citizen(person, intake.settings.hash_key, channel="desk",
                                       caller_type=person.get("caller_type", "citizen"))
        if citizen is None:
            abort(422, errors={"json": {"tckn": [
                "T.C. kimlik no, telefon veya e-posta gerekli / a TCKN, phone or e-mail is "
                "required."]}})
        store.save_citizen(citizen)
        audit("citizen.register", citizen_id=citizen["_id"])
        return profile(store.get_citizen(citizen["_id"]), reveal=False), 201

    @citizens.route("/search", methods=["POST"])
    @staff_required(*DESK_ROLES)
    @citizens.arguments(CitizenSearchSchema())
    @citizens.response(200, CitizenProfileSchema())
    @citizens.alt_response(403, description=NOT_THE_DESK)
    @citizens.doc(security=[{"staffToken": []}])
    def search(body: dict):
        """Find a citizen by TCKN (in the body, never in a URL); the desk's roles; audited."""
        citizen_id = domain.citizen_key(intake.settings.hash_key, body["tckn"])
        citizen = store.get_citizen(citizen_id)
        audit("citizen.search", citizen_id=citizen_id if citizen else None,
              found=citizen is not None)
        if citizen is None:
            abort(404, message="no such citizen")
        return profile(citizen, reveal=False)

    @citizens.route("/<citizen_id>", methods=["GET"])
    @staff_required()
    @citizens.arguments(RevealQuerySchema, location="query")
    @citizens.response(200, CitizenProfileSchema())
    @citizens.alt_response(403, description=CITIZEN_OUT_OF_SCOPE)
    @citizens.alt_response(503, description=SCOPE_UNKNOWN)
    @citizens.doc(security=[{"staffToken": []}])
    def read(query: dict, citizen_id: str):
        """A citizen's profile and history; the TCKN is masked unless `reveal=true` with a
        `reason` (coordinators, supervisors and above). Every read is audited.

        The coordination centre and system-wide administrators read anyone. Every other role
        reads the citizen of a case it holds: `application_id` names one of the citizen's
        applications that routing lets the caller read (asked before the citizen is looked
        up), and the history lists that application alone. Otherwise a 403 naming
        `application_id` (audited `citizen.read.refused`); a 503 when routing cannot say.
        """
        staff = g.staff
        if query["reveal"] and staff.role not in REVEAL_ROLES:
            abort(403, errors={"role": [f"one of {', '.join(REVEAL_ROLES)} required"]})
        application_id = query["application_id"]
        if application_id is None:
            if not sees_everything(staff.role, staff.institution):
                refuse_citizen(citizen_id, None, "no_application",
                               "name the application (`application_id`) of a case you hold")
        else:
            within_scope(application_id, "citizen.read.refused", citizen_id=citizen_id,
                         refusal="out_of_scope")
        citizen = store.get_citizen(citizen_id)
        if citizen is None:
            abort(404, message="no such citizen")
        history = None
        if application_id is not None:
            application = store.get_application(application_id)
            if application is None or application.get("citizen_id") != citizen_id:
                refuse_citizen(citizen_id, application_id, "not_the_citizens",
                               f"application {application_id} is not this citizen's")
            history = [application]
        audit("citizen.read", citizen_id=citizen_id, application_id=application_id,
              revealed_tckn=query["reveal"], reason=query["reason"])
        return profile(citizen, reveal=query["reveal"], history=history)

    @citizens.route("/<citizen_id>", methods=["PATCH"])
    @staff_required(*DESK_ROLES)
    @citizens.arguments(CitizenWriteSchema(partial=True))
    @citizens.response(200, CitizenProfileSchema())
    @citizens.alt_response(403, description=NOT_THE_DESK)
    @citizens.doc(security=[{"staffToken": []}])
    def correct(body: dict, citizen_id: str):
        """Correct contact details, address, neighbourhood, preferred channel or consent (the
        desk's roles)."""
        body.pop("tckn", None)  # identity is not edited; register the right number instead
        may_set_caller_type(body)
        updated = store.update_citizen(citizen_id, body)
        if updated is None:
            abort(404, message="no such citizen")
        audit("citizen.update", citizen_id=citizen_id, fields=sorted(body))
        return profile(updated, reveal=False)

    app = create_service_app(
        "intake", parts.config,
        [applications, channels, citizens,
         audit_blueprint("intake", "/api/v1/citizens", lambda: store.audit_log)],
        title="Açık Kapı — Intake",
        description="Citizens, applications from every channel, duplicates and codes.",
        health_checks=[mongo_check(store.db)],
    )
    from services.intake.webform import form_blueprint

    app.register_blueprint(form_blueprint(intake, catalogue))
    app.wsgi_app = FastSubmit(app.wsgi_app, intake)  # type: ignore[method-assign]
    return app


def prepare_upload(upload, max_bytes: int) -> media.Prepared:
    """Read one uploaded file (at most one byte past the limit) and check it."""
    data = upload.stream.read(max_bytes + 1)
    return media.prepare(data, upload.filename, max_bytes)


def desk_payload(form: dict) -> dict:
    """The seed 004 form as a submission."""
    received_by = form["received_by"]
    return {
        "kind": form["kind"], "category": form["category"], "channel": form["channel"],
        "description": form["description"], "priority": form["priority"],
        "confidential": form["confidential"], "caller_type": form["caller_type"],
        "location": form["location"], "citizen": form.get("citizen"),
        "anonymous": form["anonymous"], "answer": form.get("answer"),
        "applied_at": form["applied_at"],
        "desk": {"place": form["place"], "staff_name": received_by["name"],
                 "staff_code": received_by.get("staff_code")},
    }


def cimer_payload(item: dict, batch_id: str) -> dict:
    """A CİMER item as a submission; its reference is kept as the source."""
    description = item["description"]
    if item.get("subject"):
        description = f"{item['subject']}\n\n{description}"[:4000]
    return {
        "kind": item["kind"], "category": item["category"], "channel": "cimer",
        "description": description, "priority": None, "confidential": item["confidential"],
        "caller_type": "citizen", "location": item["location"], "citizen": item["citizen"],
        "applied_at": item["received_at"],
        "source": {"system": "cimer", "ref": item["cimer_ref"], "batch_id": batch_id},
    }
