"""The console's pages (`/console/…`): server-rendered, Turkish with English beside it, no
script framework.

- `giris`: staff code and password; `dogrulama`: the TOTP code for the roles that need one;
  `cikis` (POST): the end of the session.
- `parola-unuttum`: a staff code in, the same answer out whether or not it has an account (no
  enumeration; throttled per staff code and client address); for an account with an e-mail
  address notify sends a link (`resets.py`). `parola-sifirla/<token>`: the link's form for the
  new password (the accounts' policy), which ends the account's sessions and leads to the
  sign-in page; an unknown, used or expired link is a 404 page.
- `/console/`: who is signed in, and the links of their role.
- `gelen`: the unit's inbox, read from routing's staff API with a token minted for the user;
  `vaka/<id>`: one case and its history, the same way, with a form for each action the role
  may take in the case's state; `vaka/<id>/<action>` (POST) calls routing's action API and
  answers 303 back to the case with a notice, or the case page with routing's refusal (its
  403, 404, 409 or 422 and message, the field it names marked). The case page lists the
  application's attachments (intake), each streamed through `vaka/<id>/ek/<file id>`;
  `vaka/<id>/iletisim` (POST, a reason required) shows the citizen's name, phone and e-mail on
  that answer only, read from intake with the reason (intake audits both reads). All three ask
  routing for the case first: only those routing lets read the case reach its citizen.
- `masa`: the desk and the call centre (seed 004's simplified form): the citizen found by TCKN
  (`masa/ara`, POST: the number never in a URL; masked, with their history; intake audits the
  read), and the form filed to intake (`masa/basvuru`, POST, with a per-form idempotency key:
  a double submit files once); the answer shows the tracking code to read out.
- `baskanlik`: the mayor's office: the cases that climbed to the top of the ladder (SLA), and
  the weekly call-back list with the citizens' contacts and a form per call for its outcome
  and note (reporting); `baskanlik/geri-arama/<week>/<id>` (POST) records one.
- `onay`: the resolutions waiting for approval, for the roles routing lets approve;
  `sonuclandir`: the approved ones waiting to be concluded (closed, the citizen told), for the
  coordination centre.
- `koordinasyon`: the coordination centre (its own module, `coordination`): what no rule
  matched, to dispatch; SLA's overdue and at-risk board; the muhtar desk's requests to forward.
- `denetim`: the administrators' search of the audit logs (KVKK): who read or changed whose
  personal data, when and why, and the case reads routing refused — every service's log asked
  with the administrator's token (`audit_client`), merged newest first. A window of local days
  is required (at most 92) and the answer is limited (at most 500): the store scans for any
  filter but `_id`, so a search is bounded.
- `sorgu`, `birim`, `pano`: the lookup by tracking code, the unit overview and the headline
  dashboard, in `overview` (one of `AREAS`).

Cookies: the session id in `acikkapi_console` (HttpOnly, SameSite=Strict, Path=/console, Secure
except on this machine's loopback), the pending second step in `acikkapi_console_2fa`, and the
login form's own CSRF token in `acikkapi_console_csrf` (double submit: the cookie and the
hidden field must agree). Every POST after login carries the session's CSRF token in the hidden
field `csrf`; a missing or wrong one is a 403 naming it, and nothing changes.
"""
from __future__ import annotations

import secrets
from datetime import datetime, time, timedelta
from urllib.parse import quote

from flask import Blueprint, Response, request
from marshmallow import ValidationError

from services.common.audit import AuditQuerySchema
from services.console import admin, admin_accounts, coordination, domain, overview
from services.console.audit_client import AuditRefused
from services.console.bootstrap import ConsoleParts
from services.console.clients import ServiceRefused, ServiceUnavailable
from services.console.kit import (
    LOGIN_CSRF_COOKIE,
    PATH,
    PENDING_COOKIE,
    SESSION_COOKIE,
    Kit,
    secured,
)
from services.console.logins import Locked, NeedsTotp, Refused, SignedIn
from services.console.routing_client import RoutingRefused, RoutingUnavailable
from services.console.schemas import (
    AuditFormSchema,
    CallbackFormSchema,
    ContactFormSchema,
    ForgotFormSchema,
    LoginFormSchema,
    ResetFormSchema,
    TotpFormSchema,
)

ACTIONS_TR = {
    "forward": ("Muhtar talebini ilet", "Forward the muhtar request"),
    "acknowledge": ("Okundu", "Acknowledge"), "start": ("Çalışmaya başla", "Start work"),
    "wait": ("Vatandaştan bilgi iste", "Wait for the citizen"),
    "resume": ("Devam et", "Resume"), "resolve": ("Çöz", "Resolve"),
    "transfer": ("Başka birime aktar", "Transfer"),
    "return": ("Koordinasyon merkezine iade et", "Return"),
    "approve": ("Çözümü onayla", "Approve"), "reject": ("Çözümü reddet", "Reject"),
    "close": ("Sonuçlandır ve kapat", "Conclude and close"),
}
# what the forms may carry to routing
ACTION_FIELDS = ("reason", "result", "photo", "unit", "institution")
KINDS_TR = {"complaint": ("Şikâyet", "complaint"), "request": ("Talep", "request"),
            "suggestion": ("Öneri", "suggestion"), "information": ("Bilgi edinme", "information"),
            "thanks": ("Teşekkür", "thanks")}
DESK_CHANNELS_TR = {"desk": ("Açık Kapı masası", "desk"), "call_centre": ("Çağrı merkezi",
                    "call centre"), "mayor_office": ("Başkanlık", "mayor's office"),
                    "field_team": ("Saha ekibi", "field team"),
                    "neighbourhood_meeting": ("Mahalle toplantısı", "neighbourhood meeting"),
                    "post": ("Posta", "post")}
CONTACT_FIELDS = ("first_name", "last_name", "phone", "home_phone", "email",
                  "preferred_channel")  # what the case page shows of the citizen
FIELDS_OF_FORM = {"transfer": ("unit", "reason"), "resolve": ("result", "photo", "reason"),
                  "forward": ("institution", "reason")}
# The areas of pages kept in modules of their own, each with `register(pages, kit)`.
AREAS: tuple = (admin, admin_accounts, coordination, overview)
REFUSALS = {
    "credentials": "Kullanıcı kodu ya da parola yanlış / wrong staff code or password",
    "totp": "Doğrulama kodu yanlış / wrong verification code",
    "totp_missing": "Bu rol için iki adımlı doğrulama kurulmamış; yöneticinize başvurun / "
                    "this role needs a second factor that is not set up: ask an administrator",
    "expired": "Doğrulama süresi doldu; yeniden giriş yapın / the verification step expired: "
               "sign in again",
}

CHANGED_NOTICE = ("Parolanız değiştirildi; yeni parolanızla giriş yapın. Açık oturumlarınız "
                    "kapatıldı. / Your password was changed: sign in with the new one. Your open "
                    "sessions were ended.")


def blueprint(parts: ConsoleParts) -> Blueprint:
    """The console's routes over the login use cases and the services' clients."""
    logins, routing, config = parts.logins, parts.routing, parts.config
    intake = parts.intake
    audit = parts.audit
    pages = Blueprint("console_pages", __name__, url_prefix=PATH,
                      template_folder="templates", static_folder="static")
    kit = Kit(parts)
    local, page, cookie, forget, to = kit.local, kit.page, kit.cookie, kit.forget, kit.to
    current, member, signed_out, same = kit.current, kit.member, kit.signed_out, kit.same
    csrf_refused, unavailable, section = kit.csrf_refused, kit.unavailable, kit.section
    from_routing = kit.from_routing
    zone = kit.zone

    def locked(outcome: Locked) -> Response:
        minutes = max(1, round(outcome.retry_after / 60))
        answer = page("console/message.html", 429, session=None,
                      title="Çok fazla başarısız deneme / too many failed attempts",
                      message=f"Güvenliğiniz için giriş {local(outcome.until)} saatine kadar "
                              f"(yaklaşık {minutes} dakika) kapalı. / Signing in is closed "
                              f"until {local(outcome.until)} (about {minutes} minutes).")
        answer.headers["Retry-After"] = str(outcome.retry_after)
        return answer

    def signed_out_form(template: str, status: int = 200, **context) -> Response:
        """A form of a page before login, with the login form's own CSRF token (its cookie
        and its hidden field: double submit)."""
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
        if len(token) < 32:
            token = secrets.token_urlsafe(32)
        answer = page(template, status, session=None, csrf=token, **context)
        cookie(answer, LOGIN_CSRF_COOKIE, token, max_age=domain.LOGIN_CSRF_SECONDS)
        return answer

    def login_form(status: int = 200, error: str | None = None, user: str = "",
                   field_errors: dict | None = None, notice: str | None = None) -> Response:
        return signed_out_form("console/login.html", status, error=error, user=user,
                               errors=field_errors or {}, notice=notice)

    def field_errors_of(exc: ValidationError) -> dict:
        return {k: " ".join(map(str, v)) for k, v in exc.messages.items()}

    def opened(outcome: SignedIn) -> Response:
        answer = to(f"{PATH}/")
        cookie(answer, SESSION_COOKIE, outcome.session_id)
        forget(answer, PENDING_COOKIE)
        forget(answer, LOGIN_CSRF_COOKIE)
        return answer

    @pages.get("/giris")
    def login_page():
        if current() is not None:
            return to(f"{PATH}/")
        return login_form(notice=CHANGED_NOTICE if request.args.get("parola") == "yenilendi"
                          else None)

    @pages.get("/parola-unuttum")
    def forgot_page():
        return signed_out_form("console/forgot.html", user="", errors={}, sent=False)

    @pages.post("/parola-unuttum")
    def forgot():
        if not same(request.cookies.get(LOGIN_CSRF_COOKIE), request.form.get("csrf")):
            return csrf_refused()
        try:
            form = ForgotFormSchema().load(request.form.to_dict())
        except ValidationError as exc:
            return signed_out_form("console/forgot.html", 422, user="", sent=False,
                                   errors=field_errors_of(exc))
        outcome = parts.resets.request(form["user"], request.remote_addr or "")
        if isinstance(outcome, Locked):
            return locked(outcome)
        # the same page whether or not the staff code has an account (with an address)
        return page("console/forgot.html", session=None, sent=True, user="", errors={},
                    csrf="", minutes=round(parts.resets.lifetime.total_seconds() / 60))

    def reset_gone() -> Response:
        return page("console/message.html", 404, session=None,
                    title="Bağlantı geçersiz / link not valid",
                    message="Bu parola yenileme bağlantısı bilinmiyor, kullanılmış ya da süresi "
                            "dolmuş. Yeni bir bağlantı isteyin. / This password reset link is "
                            "unknown, already used or expired. Ask for a new one.")

    def reset_form(token: str, status: int = 200, errors: dict | None = None) -> Response:
        return signed_out_form("console/reset.html", status, token=token, errors=errors or {})

    @pages.get("/parola-sifirla/<string(maxlength=200):token>")
    def reset_page(token: str):
        if parts.resets.live(token) is None:
            return reset_gone()
        return reset_form(token)

    @pages.post("/parola-sifirla/<string(maxlength=200):token>")
    def reset(token: str):
        if not same(request.cookies.get(LOGIN_CSRF_COOKIE), request.form.get("csrf")):
            return csrf_refused()
        if parts.resets.live(token) is None:
            return reset_gone()
        try:
            form = ResetFormSchema().load(request.form.to_dict())
        except ValidationError as exc:
            return reset_form(token, 422, field_errors_of(exc))
        if parts.resets.complete(token, form["password"]) is None:
            return reset_gone()
        answer = to(f"{PATH}/giris?parola=yenilendi")
        forget(answer, SESSION_COOKIE)
        forget(answer, PENDING_COOKIE)
        return answer

    @pages.post("/giris")
    def login():
        if not same(request.cookies.get(LOGIN_CSRF_COOKIE), request.form.get("csrf")):
            return csrf_refused()
        try:
            form = LoginFormSchema().load(request.form.to_dict())
        except ValidationError as exc:
            return login_form(422, user=request.form.get("user", ""),
                              field_errors=field_errors_of(exc))
        outcome = logins.sign_in(form["user"], form["password"], request.remote_addr or "",
                                 replacing=request.cookies.get(SESSION_COOKIE))
        if isinstance(outcome, Locked):
            return locked(outcome)
        if isinstance(outcome, Refused):
            return login_form(422, REFUSALS[outcome.reason], user=form["user"])
        if isinstance(outcome, NeedsTotp):
            answer = to(f"{PATH}/dogrulama")
            cookie(answer, PENDING_COOKIE, outcome.pending_id, max_age=domain.PENDING_SECONDS)
            forget(answer, SESSION_COOKIE)
            return answer
        return opened(outcome)

    @pages.get("/dogrulama")
    def totp_page():
        pending = logins.pending(request.cookies.get(PENDING_COOKIE, ""))
        if pending is None:
            return to(f"{PATH}/giris")
        return page("console/totp.html", session=None, csrf=pending["csrf"], error=None)

    @pages.post("/dogrulama")
    def totp():
        pending_id = request.cookies.get(PENDING_COOKIE, "")
        pending = logins.pending(pending_id)
        if pending is None:
            return login_form(422, REFUSALS["expired"])
        if not same(pending["csrf"], request.form.get("csrf")):
            return csrf_refused()
        try:
            form = TotpFormSchema().load(request.form.to_dict())
        except ValidationError:
            return page("console/totp.html", 422, session=None, csrf=pending["csrf"],
                        error="Altı haneli kodu yazın / enter the six-digit code")
        outcome = logins.verify_totp(pending_id, form["code"], request.remote_addr or "")
        if isinstance(outcome, Locked):
            return locked(outcome)
        if isinstance(outcome, Refused):
            if outcome.reason == "expired":
                return login_form(422, REFUSALS["expired"])
            return page("console/totp.html", 422, session=None, csrf=pending["csrf"],
                        error=REFUSALS[outcome.reason])
        return opened(outcome)

    @pages.post("/cikis")
    def logout():
        session = current()
        if session is None:
            return signed_out()
        if not same(session["csrf"], request.form.get("csrf")):
            return csrf_refused(session)
        logins.sign_out(request.cookies[SESSION_COOKIE])
        answer = to(f"{PATH}/giris")
        forget(answer, SESSION_COOKIE)
        return answer

    @pages.get("/")
    def home():
        session = current()
        if session is None:
            return signed_out()
        return page("console/home.html", session=session,
                    links=domain.links_for(session["role"]),
                    idle_minutes=round(logins.policy.idle.total_seconds() / 60))

    @pages.get("/gelen")
    def inbox():
        session = member(domain.INBOX_ROLES.__contains__, "Gelen kutusu yok / no inbox",
                         "{role} rolünün birim gelen kutusu yok. / "
                         "The role {role} has no unit inbox.")
        if isinstance(session, Response):
            return session
        page_number = request.args.get("sayfa", "1")
        number = int(page_number) if page_number.isdigit() and 0 < int(page_number) < 10_000 \
            else 1
        answer = from_routing(session, lambda: routing.inbox(session, number))
        if isinstance(answer, Response):
            return answer
        pages_total = max(1, -(-answer["total"] // answer["per_page"]))
        return page("console/inbox.html", session=session, inbox=answer, number=number,
                    pages_total=pages_total)

    def case_page(session: dict, case: dict, status: int = 200, refused: RoutingRefused | None
                  = None, tried: str | None = None, form: dict | None = None,
                  contact: dict | None = None) -> Response:
        """The case, the actions the role may take, the application's attachments (intake),
        and the citizen's contact only when `contact` holds what a POST with a reason got."""
        actions = domain.actions_for(session["role"], case)
        units: list[dict] = []
        if "transfer" in actions:
            listed = from_routing(session, lambda: routing.units(session))
            if isinstance(listed, Response):
                return listed
            units = [unit for unit in listed if unit["code"] != case.get("unit")]
        targets: list[dict] = []
        if "forward" in actions:  # a muhtar request at the desk: where it may be forwarded
            found = from_routing(session, lambda: routing.institutions(session))
            if isinstance(found, Response):
                return found
            targets = coordination.forward_targets(found)
        done = request.args.get("tamam")
        application = section(lambda: intake.application(session, case["application_id"]))
        return page("console/case.html", status, session=session, case=case, actions=actions,
                    application=application, contact=contact or {},
                    names=ACTIONS_TR, units=units, targets=targets, refused=refused,
                    tried=tried,
                    links=domain.links_for(session["role"]),
                    on_form=bool(refused and tried and refused.field in FIELDS_OF_FORM.get(
                        tried, ("reason",))),
                    form=form or {}, done=done if done in ACTIONS_TR else None)

    @pages.get("/vaka/<string(maxlength=64):application_id>")
    def case(application_id: str):
        session = current()
        if session is None:
            return signed_out()
        answer = from_routing(session, lambda: routing.case(session, application_id))
        if isinstance(answer, Response):
            return answer
        return case_page(session, answer)

    def contact_of(session: dict, application_id: str, reason: str) -> dict | None:
        """The applicant's name, phone and e-mail, read from intake for `reason` (audited
        there); None for an anonymous application."""
        application = intake.application(session, application_id)
        if not application.get("citizen_id"):
            return None
        found = intake.citizen(session, application["citizen_id"], reason, application_id)
        return {name: found.get(name) for name in CONTACT_FIELDS}

    @pages.post("/vaka/<string(maxlength=64):application_id>/iletisim")
    def case_contact(application_id: str):
        """The citizen's contact, shown on this answer only (POST: never in a URL, never
        cached), for a reason intake writes to its audit log."""
        session = current()
        if session is None:
            return signed_out()
        if not same(session["csrf"], request.form.get("csrf")):
            return csrf_refused(session)
        case = from_routing(session, lambda: routing.case(session, application_id))
        if isinstance(case, Response):
            return case  # routing decides who reads the case, and so its citizen
        try:
            reason = ContactFormSchema().load(request.form.to_dict())["reason"]
        except ValidationError as exc:
            return case_page(session, case, 422, contact={
                "reason_error": field_errors_of(exc).get("reason"),
                "reason": request.form.get("reason", "")})
        shown = section(lambda: {"person": contact_of(session, application_id, reason)})
        status = 200 if "data" in shown else shown["status"]
        return case_page(session, case, status if status < 500 else 503,
                         contact=dict(shown, reason=reason))

    @pages.get("/vaka/<string(maxlength=64):application_id>/ek/"
               "<string(maxlength=200):file_id>")
    def case_attachment(application_id: str, file_id: str):
        """An attachment of the case's application, streamed from intake (which audits the
        read), for those routing lets read the case."""
        session = current()
        if session is None:
            return signed_out()
        case = from_routing(session, lambda: routing.case(session, application_id))
        if isinstance(case, Response):
            return case
        try:
            download = intake.attachment(session, application_id, file_id)
        except ServiceUnavailable:
            return page("console/message.html", 503, session=session,
                        title="Başvuru servisi yanıt vermiyor / intake is not answering",
                        message="Ek şu anda okunamıyor; biraz sonra yeniden deneyin. / The "
                                "attachment cannot be read right now; try again shortly.")
        except ServiceRefused as refused:
            return page("console/message.html",
                        refused.status if refused.status in (401, 403, 404) else 422,
                        session=session, title="Ek gösterilemiyor / attachment not shown",
                        message=refused.message)

        def chunks():
            try:
                yield from download.chunks
            finally:
                download.close()

        answer = Response(chunks(), mimetype=download.content_type)
        answer.headers["Content-Disposition"] = download.disposition or "attachment"
        return secured(answer)

    @pages.post("/vaka/<string(maxlength=64):application_id>/<any("
                + ", ".join(f'"{a}"' for a in domain.CASE_ACTIONS) + "):action>")
    def case_action(application_id: str, action: str):
        session = current()
        if session is None:
            return signed_out()
        if not same(session["csrf"], request.form.get("csrf")):
            return csrf_refused(session)
        form = {name: request.form.get(name, "").strip() for name in ACTION_FIELDS}
        fields = {name: value for name, value in form.items() if value}
        try:
            routing.act(session, application_id, action, fields)
        except RoutingUnavailable:
            return unavailable(session)
        except RoutingRefused as refused:
            status = refused.status if refused.status in (401, 403, 404, 409) else 422
            try:
                answer = routing.case(session, application_id)
            except RoutingUnavailable:
                return unavailable(session)
            except RoutingRefused:  # not even readable (another unit's, none): say why not
                return page("console/message.html", status, session=session,
                            title=f"{ACTIONS_TR[action][0]} / {ACTIONS_TR[action][1]}: "
                                  "yapılamadı / refused", message=refused.message)
            return case_page(session, answer, status, refused, action, form)
        return to(f"{PATH}/vaka/{quote(application_id, safe='')}?tamam={action}")

    def resolved_queue(approved: bool) -> Response:
        """The resolutions waiting for approval, or (approved) for their conclusion."""
        if approved:
            session = member(domain.may_conclude,
                             "Sonuçlandırma kuyruğu yok / no conclusion queue",
                             "{role} rolü vaka kapatmaz. / The role {role} does not close cases.")
        else:
            session = member(domain.may_approve, "Onay kuyruğu yok / no approval queue",
                             "{role} rolü çözüm onaylamaz. / "
                             "The role {role} does not approve resolutions.")
        if isinstance(session, Response):
            return session
        answer = from_routing(session, lambda: routing.resolved(session, approved=approved))
        if isinstance(answer, Response):
            return answer
        return page("console/approvals.html", session=session, queue=answer,
                    kind="conclusion" if approved else "approval")

    @pages.get("/onay")
    def approvals():
        return resolved_queue(approved=False)

    @pages.get("/sonuclandir")
    def conclusions():
        return resolved_queue(approved=True)

    def office_page(session: dict, status: int = 200, error: str | None = None,
                    tried: str | None = None) -> Response:
        week = request.args.get("hafta") or None
        top = section(lambda: parts.sla.reached_the_top(session))
        calls = (section(lambda: parts.reporting.callbacks(session, week))
                 if domain.may_call_back(session["role"]) else None)
        return page("console/office.html", status, session=session, top=top, calls=calls,
                    error=error, tried=tried, done=request.args.get("tamam"))

    def desk_page(session: dict, status: int = 200, **context) -> Response:
        return page("console/desk.html", status, session=session,
                    key=secrets.token_urlsafe(18), kinds=KINDS_TR, channels=DESK_CHANNELS_TR,
                    form=context.pop("form", {}), **context)

    def desk_session() -> dict | Response:
        return member(domain.DESK_ROLES.__contains__, "Masa sayfası yok / no desk page",
                      "{role} rolü masada başvuru almaz. / "
                      "The role {role} does not take applications.")

    @pages.get("/masa")
    def desk():
        session = desk_session()
        return session if isinstance(session, Response) else desk_page(session)

    @pages.post("/masa/ara")
    def desk_search():
        session = desk_session()
        if isinstance(session, Response):
            return session
        tckn = request.form.get("tckn", "").strip()
        try:
            citizen = parts.intake.find_citizen(session, tckn)
        except ServiceUnavailable:
            return unavailable(session)
        except ServiceRefused as refused:
            if refused.status == 404:  # new to us: the form registers them with the filing
                return desk_page(session, 200, form={"tckn": tckn}, not_found=True)
            return desk_page(session, refused.status if refused.status in (401, 403) else 422,
                             form={"tckn": tckn}, refused=refused)
        form = {"tckn": tckn, **{k: citizen.get(k) or "" for k in (
            "first_name", "last_name", "email", "district", "neighbourhood", "address")},
            "mobile_phone": citizen.get("phone") or ""}
        return desk_page(session, form=form, citizen=citizen)

    @pages.post("/masa/basvuru")
    def desk_file():
        session = desk_session()
        if isinstance(session, Response):
            return session
        form = request.form.to_dict()
        key = form.get("key", "")
        if not 16 <= len(key) <= 64:
            return desk_page(session, 422, form=form, refused=ServiceRefused(
                422, "Formun anahtarı eksik; sayfayı yenileyin / the form's key is missing: "
                     "reload the page", "key"))
        payload = domain.desk_payload(form, session, logins.clock(),
                                      config.get("DEFAULT_PROVINCE") or "Mersin")
        try:
            filed = parts.intake.file_desk_application(session, payload, f"console-{key}")
        except ServiceUnavailable:
            return unavailable(session)
        except ServiceRefused as refused:
            status = refused.status if refused.status in (401, 403, 409) else 422
            return desk_page(session, status, form=form, refused=refused)
        return desk_page(session, 201, filed=filed)

    @pages.get("/baskanlik")
    def office():
        session = member(domain.OFFICE_ROLES.__contains__,
                         "Başkanlık sayfası yok / no mayor's office page",
                         "{role} rolü bu sayfayı görmez. / The role {role} does not see this page.")
        return session if isinstance(session, Response) else office_page(session)

    @pages.post("/baskanlik/geri-arama/<string(maxlength=10):week>/"
                "<string(maxlength=64):application_id>")
    def call_back(week: str, application_id: str):
        # the role before the form: a role without the list learns nothing from a 422
        session = member(domain.may_call_back, "Geri arama listesi yok / no call-back list",
                         "{role} rolü geri arama yapmaz. / The role {role} makes no call-backs.")
        if isinstance(session, Response):
            return session
        try:
            form = CallbackFormSchema().load(request.form.to_dict())
        except ValidationError as exc:
            field = next(iter(exc.messages))
            return office_page(session, 422, f"{field}: " + " ".join(
                map(str, exc.messages[field])), application_id)
        try:
            parts.reporting.note_callback(session, week, application_id,
                                          form["reached"] == "evet", form["note"])
        except ServiceUnavailable:
            return unavailable(session)
        except ServiceRefused as refused:
            status = refused.status if refused.status in (401, 403, 404) else 422
            return office_page(session, status, refused.message, application_id)
        return to(f"{PATH}/baskanlik?hafta={quote(week, safe='')}&tamam="
                  f"{quote(application_id, safe='')}#geri-arama")

    # the audit search's form fields, by the API's names (a refusal names the API's field)
    audit_fields = {"from": "baslangic", "to": "bitis", "staff": "staff",
                    "citizen_id": "citizen_id", "application_id": "application_id",
                    "action": "action", "limit": "limit"}

    def audit_page(session: dict, status: int = 200, form: dict | None = None,
                   found: dict | None = None, error: str | None = None,
                   field: str | None = None) -> Response:
        return page("console/audit.html", status, session=session, form=form or {},
                    found=found, error=error, field=field, fields=audit_fields)

    @pages.get("/denetim")
    def audit_search():
        session = current()
        if session is None:
            return signed_out()
        if session["role"] != "admin" or audit is None:
            return page("console/message.html", 403, session=session,
                        title="Denetim kaydı yalnızca yöneticiler içindir / the audit log is "
                              "for administrators",
                        message=f"{session['role']} rolü denetim kaydını arayamaz. / "
                                f"The role {session['role']} may not search the audit log.")
        today = logins.clock().astimezone(zone).date()
        form = {name: request.args.get(name, "").strip() for name in audit_fields.values()}
        if not any(form.values()):  # the page opened: the last seven days, nothing searched
            form.update(baslangic=(today - timedelta(days=6)).isoformat(),
                        bitis=today.isoformat(), limit="100")
            return audit_page(session, form=form)
        try:
            given = AuditFormSchema().load({k: v for k, v in form.items() if v})
            start = datetime.combine(given["from_day"], time(), zone)
            end = datetime.combine(given["to_day"] + timedelta(days=1), time(), zone)
            query = {"from": start.isoformat(), "to": end.isoformat(),
                     "limit": str(given["limit"]),
                     **{k: given[k] for k in ("staff", "citizen_id", "application_id",
                                              "action") if given.get(k)}}
            AuditQuerySchema().load(query)  # the API's bounds, checked before asking
        except ValidationError as exc:
            name = next(iter(exc.messages))
            name = audit_fields.get(name, name)
            messages = exc.messages[next(iter(exc.messages))]
            text = " ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
            return audit_page(session, 400, form, error=f"{name}: {text}", field=name)
        try:
            found = audit.search(session, query)
        except AuditRefused as refused:
            field = audit_fields.get(refused.field or "")
            return audit_page(session, refused.status if refused.status in (401, 403) else 400,
                              form, error=refused.message, field=field)
        return audit_page(session, form=form, found=found)

    for area in AREAS:
        area.register(pages, kit)
    return pages
