"""The administrators' pages (`/console/yonetim…`, issue 13), for the role `admin` only: every
other role gets a 403 page, and a POST by them or without the session's CSRF token changes
nothing (`Kit.member` checks both before anything is read).

- `yonetim`: the list of these pages.
- `yonetim/kategoriler`: routing's category catalogue, a form to add a category (POST) and, for
  the category chosen (`?duzenle=<code>`), a form to change it (POST `…/<code>`: routing's
  PATCH).
- `yonetim/sla`: SLA's policy rules, a form to put one (create or replace the rule of a scope)
  and a form per rule to delete it.
- `yonetim/birimler`: the directory's units with their primary and backup experts, supervisor
  and director; for the unit chosen (`?birim=<code>`) its escalation ladder and a form to
  change its experts (routing's PATCH of the unit); and a form to add a staff member
  (`yonetim/personel`, routing's POST).
- `yonetim/kurallar`: for the institution chosen (`?kurum=<code>`), its own category → unit
  mappings and neighbourhood overrides (routing's directory), a form to put a mapping
  (`…/<kurum>/eslemeler`: routing's PUT), one per mapping to delete it (`…/<category>/sil`),
  and the same two for overrides (`…/istisnalar`, `…/istisnalar/sil`).
- `yonetim/sablonlar`: notify's SMS and e-mail templates, each with its file's text and a form
  to save an override (POST `…/<channel>/<name>`: notify's PUT) and one to go back to the
  file (`…/<channel>/<name>/sil`: notify's DELETE).

Every change goes to the service's existing admin API with a token minted for the
administrator, and the service decides it again (an administrator bound to an institution may
be refused there). A refusal is shown on the form that was sent, with its status (403, 404,
409, or 422 for the rest), the service's messages, the field it names marked `aria-invalid`,
and the values as typed; a service that does not answer is a 503 page. The forms are turned
into the APIs' bodies here (pure functions below) without judging them: the services' schemas
are the one check, so the page never disagrees with the API.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import quote

from flask import Blueprint, Response, request
from werkzeug.datastructures import MultiDict

from services.common.auth import ROLES
from services.common.catalogue import TIERS
from services.common.events import PRIORITIES
from services.console.clients import ServiceRefused, ServiceUnavailable
from services.console.kit import PATH, Kit
from services.sla.policy import CALENDARS, ON_REOPEN, ON_TRANSFER

HOME = f"{PATH}/yonetim"
# The admin pages, as the home lists them: path, Turkish, English.
ADMIN_PAGES = (
    (f"{HOME}/kategoriler", "Kategoriler", "Categories"),
    (f"{HOME}/sla", "SLA politikaları", "SLA policies"),
    (f"{HOME}/birimler", "Birimler ve personel", "Units and people"),
    (f"{HOME}/kurallar", "Yönlendirme kuralları (kurum)", "Routing rules (per institution)"),
    (f"{HOME}/sablonlar", "Bildirim şablonları", "Message templates"),
    (f"{HOME}/kullanicilar", "Konsol hesapları", "Console accounts"),
    (f"{PATH}/denetim", "Denetim kaydı (KVKK)", "Audit log (KVKK)"),
)
KINDS_TR = {"complaint": "Şikâyet", "request": "Talep", "suggestion": "Öneri",
            "information": "Bilgi edinme", "thanks": "Teşekkür"}
CATEGORY_TEXT = ("name_tr", "name_en", "tier", "institution", "priority")
CATEGORY_NUMBERS = ("read_hours", "resolve_hours", "reopen_days")
CATEGORY_FLAGS = ("first_contact", "muhtar")
CATEGORY_FIELDS = ("code", *CATEGORY_TEXT, *CATEGORY_NUMBERS, *CATEGORY_FLAGS, "kinds")
SCOPE_FIELDS = ("category", "priority", "institution")
POLICY_NUMBERS = ("read_hours", "resolve_hours", "delay_notice_hours")
POLICY_LISTS = ("warn_at", "ladder_hours")
POLICY_CHOICES = ("calendar", "on_transfer", "on_reopen")
POLICY_FIELDS = (*SCOPE_FIELDS, *POLICY_NUMBERS, *POLICY_LISTS, "unread_to_mayor",
                 *POLICY_CHOICES)
UNIT_FIELDS = ("primary", "backup")
STAFF_FIELDS = ("code", "name", "role", "institution", "unit", "phone", "email")
MAPPING_FIELDS = ("category", "unit")
OVERRIDE_KEY = ("district", "neighbourhood", "category")
OVERRIDE_FIELDS = (*OVERRIDE_KEY, "unit")
YES, NO = "evet", "hayir"
LIST_SEPARATORS = re.compile(r"[\s,;]+")


# -- the forms as the APIs' bodies (pure) ------------------------------------------------------


def _number(value: str) -> str:
    """A number as typed, with a Turkish decimal comma read as a point ("4,5" → "4.5"); the
    API's schema decides whether it is one."""
    return value.strip().replace(",", ".")


def _flag(value: str | None) -> bool | None:
    return {YES: True, NO: False}.get(value or "")


def category_body(form: MultiDict, creating: bool) -> dict:
    """Routing's category body from the category form: what was typed, blanks left out (a
    missing required field is routing's 422). A change sends only the fields its form holds;
    a blank institution there clears it."""
    body: dict = {}
    for name in (("code",) if creating else ()) + CATEGORY_TEXT:
        value = form.get(name, "").strip()
        if value:
            body[name] = value
        elif name == "institution" and not creating and name in form:
            body[name] = None
    for name in CATEGORY_NUMBERS:
        if form.get(name, "").strip():
            body[name] = _number(form[name])
    for name in CATEGORY_FLAGS:
        if _flag(form.get(name)) is not None:
            body[name] = _flag(form.get(name))
    if creating or "kinds_listed" in form:  # unticked boxes are not sent: the marker is
        body["kinds"] = form.getlist("kinds")
    return body


def category_form(category: dict) -> dict:
    """A category as its change form shows it."""
    form = {name: "" if category.get(name) is None else str(category[name])
            for name in ("code", *CATEGORY_TEXT)}
    for name in CATEGORY_NUMBERS:
        value = category.get(name)
        form[name] = "" if value is None else f"{value:g}"
    for name in CATEGORY_FLAGS:
        form[name] = YES if category.get(name) else NO
    form["kinds"] = list(category.get("kinds") or [])
    return form


def policy_body(form: MultiDict) -> dict:
    """SLA's rule body from the policy form: the scope (blank: any) and the settings typed
    (blank: inherited from less specific rules); lists are numbers separated by spaces,
    commas or semicolons."""
    scope = {name: form.get(name, "").strip() or None for name in SCOPE_FIELDS}
    settings: dict = {}
    for name in POLICY_NUMBERS:
        if form.get(name, "").strip():
            settings[name] = _number(form[name])
    for name in POLICY_LISTS:
        if form.get(name, "").strip():
            settings[name] = [part for part in LIST_SEPARATORS.split(form[name].strip()) if part]
    if _flag(form.get("unread_to_mayor")) is not None:
        settings["unread_to_mayor"] = _flag(form.get("unread_to_mayor"))
    for name in POLICY_CHOICES:
        if form.get(name, "").strip():
            settings[name] = form[name].strip()
    return {"scope": scope, "settings": settings}


def unit_body(form: MultiDict) -> dict:
    """Routing's unit change from the experts form: the primary and the backup expert."""
    return {"experts": {name: form[name].strip() for name in UNIT_FIELDS
                        if form.get(name, "").strip()}}


def blank_expert(form: MultiDict) -> str | None:
    """The expert left blank on the experts form, if one was. Checked here, not left to
    routing: its PATCH replaces `experts` whole and accepts one without a backup (seed 004:
    every unit has one primary and one backup expert)."""
    return next((name for name in UNIT_FIELDS if not form.get(name, "").strip()), None)


def staff_body(form: MultiDict) -> dict:
    """Routing's new staff record from the staff form (blanks left out)."""
    return {name: form[name].strip() for name in STAFF_FIELDS if form.get(name, "").strip()}


def typed_of(form: MultiDict) -> dict:
    """The form as typed, to show it again (the category kinds as the list ticked)."""
    typed: dict = form.to_dict()
    typed["kinds"] = form.getlist("kinds")
    typed.pop("csrf", None)
    return typed


def error_lines(errors: object, path: str = "") -> list[str]:
    """A service's `errors` as lines `field: message` (`json`, `settings`… paths dotted)."""
    if isinstance(errors, dict):
        lines = []
        for key, value in errors.items():
            name = "" if key in ("json", "form", "query", "path") else str(key)
            lines.extend(error_lines(value, ".".join(p for p in (path, name) if p)))
        return lines
    if isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        return [f"{path}: {' '.join(errors)}" if path else " ".join(errors)]
    return [f"{path}: {errors}"] if errors else []


def field_named(errors: object, names: Iterable[str]) -> str | None:
    """The deepest of the form's field `names` on the path to the first error
    (`{"json": {"settings": {"read_hours": […]}}}` → `read_hours`)."""
    names = set(names)
    found = None
    while isinstance(errors, dict) and errors:
        key, errors = next(iter(errors.items()))
        if str(key) in names:
            found = str(key)
    return found


def override_body(form: MultiDict, names: Iterable[str] = OVERRIDE_FIELDS) -> dict:
    """Routing's override body (or, with `OVERRIDE_KEY`, its key) from the override form: the
    fields typed, trimmed; blanks left out (routing's 422 names them)."""
    return {name: form[name].strip() for name in names if form.get(name, "").strip()}


def template_target(channel: str, name: str) -> str:
    """The id of a template's form on the templates page (`sms-case_closed-tr`)."""
    return f"{channel}-{name}".replace(".", "-")


def problem_of(refused: ServiceRefused, target: str, names: Iterable[str]) -> dict:
    """A refusal as the form that was sent shows it."""
    names = tuple(names)
    return {"target": target, "status": refused.status if refused.status in (401, 403, 404, 409)
            else 422, "message": refused.message,
            "field": field_named(refused.errors, names)
            or (refused.field if refused.field in names else None),
            "lines": error_lines(refused.errors)}


# -- the pages ---------------------------------------------------------------------------------


def register(pages: Blueprint, kit: Kit) -> None:
    """The administrators' pages on the console's blueprint."""
    routing, sla, notify = kit.parts.routing, kit.parts.sla, kit.parts.notify

    def admin_session() -> dict | Response:
        return kit.member("admin".__eq__, "Yönetim sayfaları yalnızca yöneticiler içindir / the "
                          "administration pages are for administrators",
                          "{role} rolü yönetim sayfalarını göremez. / "
                          "The role {role} may not see the administration pages.")

    def away(session: dict, service_tr: str, service_en: str) -> Response:
        return kit.page("console/message.html", 503, session=session,
                        title=f"{service_tr} yanıt vermiyor / {service_en} is not answering",
                        message="Şu anda okunamıyor ya da değiştirilemiyor; biraz sonra yeniden "
                                "deneyin. Hiçbir şey değiştirilmedi. / It cannot be read or "
                                "changed right now; try again shortly. Nothing was changed.")

    def read(session: dict, call: Callable, service_tr: str,
             service_en: str) -> dict | Response:
        """`call()`'s answer, or the page saying why the service did not give it."""
        try:
            return call()
        except ServiceUnavailable:
            return away(session, service_tr, service_en)
        except ServiceRefused as refused:
            status = refused.status if refused.status in (401, 403, 404) else 422
            return kit.page("console/message.html", status, session=session,
                            title="Gösterilemiyor / cannot be shown", message=refused.message)

    def change(session: dict, call: Callable, refused_page: Callable[[dict], Response],
               target: str, names: Iterable[str], done: str, service_tr: str,
               service_en: str) -> Response:
        """`call()`, then a 303 to `done`; or the form again with the refusal."""
        try:
            call()
        except ServiceUnavailable:
            return away(session, service_tr, service_en)
        except ServiceRefused as refused:
            return refused_page(problem_of(refused, target, names))
        return kit.to(done)

    @pages.get("/yonetim")
    def admin_home():
        session = admin_session()
        if isinstance(session, Response):
            return session
        return kit.page("console/admin_home.html", session=session, admin_pages=ADMIN_PAGES)

    # -- categories ------------------------------------------------------------------------------

    def categories_page(session: dict, status: int = 200, problem: dict | None = None,
                        typed: dict | None = None, editing: str | None = None) -> Response:
        listed = read(session, lambda: routing.categories(session), "Yönlendirme servisi",
                      "the routing service")
        if isinstance(listed, Response):
            return listed
        items = sorted(listed.get("items") or [], key=lambda c: c["code"])
        editing = editing or request.args.get("duzenle")
        chosen = next((c for c in items if c["code"] == editing), None)
        on = (problem or {}).get("target")
        edit_form = typed if on == "edit" and chosen else (
            category_form(chosen) if chosen else None)
        new_form = typed if on == "new" else {"priority": "normal", "reopen_days": "15",
                                               "kinds": []}
        return kit.page("console/admin_categories.html", status, session=session,
                        categories=items, chosen=chosen, edit_form=edit_form,
                        new_form=new_form, problem=problem, kinds=KINDS_TR, tiers=TIERS,
                        priorities=PRIORITIES, done=request.args.get("tamam"))

    @pages.get("/yonetim/kategoriler")
    def admin_categories():
        session = admin_session()
        return session if isinstance(session, Response) else categories_page(session)

    @pages.post("/yonetim/kategoriler")
    def admin_category_create():
        session = admin_session()
        if isinstance(session, Response):
            return session
        body = category_body(request.form, creating=True)
        code = str(body.get("code", ""))
        return change(session, lambda: routing.create_category(session, body),
                      lambda problem: categories_page(session, problem["status"], problem,
                                                      typed_of(request.form)),
                      "new", CATEGORY_FIELDS,
                      f"{HOME}/kategoriler?tamam={quote(code, safe='')}#kategori-{code}",
                      "Yönlendirme servisi", "the routing service")

    @pages.post("/yonetim/kategoriler/<string(maxlength=100):code>")
    def admin_category_update(code: str):
        session = admin_session()
        if isinstance(session, Response):
            return session
        body = category_body(request.form, creating=False)
        return change(session, lambda: routing.update_category(session, code, body),
                      lambda problem: categories_page(session, problem["status"], problem,
                                                      dict(typed_of(request.form), code=code),
                                                      editing=code),
                      "edit", CATEGORY_FIELDS,
                      f"{HOME}/kategoriler?tamam={quote(code, safe='')}#kategori-{code}",
                      "Yönlendirme servisi", "the routing service")

    # -- SLA policies ----------------------------------------------------------------------------

    def policies_page(session: dict, status: int = 200, problem: dict | None = None,
                      typed: dict | None = None) -> Response:
        listed = read(session, lambda: sla.policies(session), "SLA servisi", "the SLA service")
        if isinstance(listed, Response):
            return listed
        categories = kit.section(lambda: routing.categories(session))
        known = [c["code"] for c in (categories.get("data") or {}).get("items") or []]
        rules = sorted(listed.get("items") or [], key=lambda r: r.get("id") or "")
        return kit.page("console/admin_sla.html", status, session=session, rules=rules,
                        problem=problem,
                        form=typed if (problem or {}).get("target") == "put" else {},
                        categories=sorted(known), priorities=PRIORITIES, calendars=CALENDARS,
                        on_transfer=ON_TRANSFER, on_reopen=ON_REOPEN,
                        done=request.args.get("tamam"), deleted=request.args.get("silindi"))

    @pages.get("/yonetim/sla")
    def admin_policies():
        session = admin_session()
        return session if isinstance(session, Response) else policies_page(session)

    @pages.post("/yonetim/sla")
    def admin_policy_put():
        session = admin_session()
        if isinstance(session, Response):
            return session
        body = policy_body(request.form)
        return change(session, lambda: sla.put_policy(session, body),
                      lambda problem: policies_page(session, problem["status"], problem,
                                                    typed_of(request.form)),
                      "put", POLICY_FIELDS, f"{HOME}/sla?tamam=1#kurallar",
                      "SLA servisi", "the SLA service")

    @pages.post("/yonetim/sla/<string(maxlength=200):rule>/sil")
    def admin_policy_delete(rule: str):
        session = admin_session()
        if isinstance(session, Response):
            return session
        return change(session, lambda: sla.delete_policy(session, rule),
                      lambda problem: policies_page(session, problem["status"],
                                                    dict(problem, rule=rule)),
                      "delete", (), f"{HOME}/sla?silindi={quote(rule, safe='')}#kurallar",
                      "SLA servisi", "the SLA service")

    # -- units and people ------------------------------------------------------------------------

    def units_page(session: dict, status: int = 200, problem: dict | None = None,
                   typed: dict | None = None, chosen: str | None = None) -> Response:
        units = read(session, lambda: routing.units(session), "Yönlendirme servisi",
                     "the routing service")
        if isinstance(units, Response):
            return units
        staff = kit.section(lambda: routing.staff(session))
        people = {s["code"]: s for s in (staff.get("data") or {}).get("items") or []}
        institutions = kit.section(lambda: {"items": routing.institutions(session)})
        chosen = chosen or request.args.get("birim")
        detail = kit.section(lambda: routing.unit(session, chosen)) if chosen else None
        on = (problem or {}).get("target")
        unit_form = typed if on == "unit" else None
        if unit_form is None and detail and detail.get("data"):
            unit_form = dict(detail["data"].get("experts") or {})
        return kit.page("console/admin_units.html", status, session=session, units=units,
                        people=people, staff=staff, institutions=institutions, chosen=chosen,
                        detail=detail, unit_form=unit_form or {}, problem=problem,
                        staff_form=typed if on == "staff" else {}, roles=ROLES,
                        done=request.args.get("tamam"), added=request.args.get("eklendi"))

    @pages.get("/yonetim/birimler")
    def admin_units():
        session = admin_session()
        return session if isinstance(session, Response) else units_page(session)

    @pages.post("/yonetim/birimler/<string(maxlength=120):code>")
    def admin_unit_update(code: str):
        session = admin_session()
        if isinstance(session, Response):
            return session
        blank = blank_expert(request.form)
        if blank is not None:
            return units_page(session, 422, {
                "target": "unit", "status": 422, "field": blank, "lines": [],
                "message": f"{blank}: gerekli / required (asil ve yedek uzman birlikte "
                           "değiştirilir / the primary and the backup expert are set "
                           "together)"}, typed_of(request.form), chosen=code)
        body = unit_body(request.form)
        return change(session, lambda: routing.update_unit(session, code, body),
                      lambda problem: units_page(session, problem["status"], problem,
                                                 typed_of(request.form), chosen=code),
                      "unit", UNIT_FIELDS,
                      f"{HOME}/birimler?birim={quote(code, safe='')}&tamam=1#birim",
                      "Yönlendirme servisi", "the routing service")

    @pages.post("/yonetim/personel")
    def admin_staff_create():
        session = admin_session()
        if isinstance(session, Response):
            return session
        body = staff_body(request.form)
        code = str(body.get("code", ""))
        return change(session, lambda: routing.create_staff(session, body),
                      lambda problem: units_page(session, problem["status"], problem,
                                                 typed_of(request.form)),
                      "staff", STAFF_FIELDS,
                      f"{HOME}/birimler?eklendi={quote(code, safe='')}#personel",
                      "Yönlendirme servisi", "the routing service")

    # -- routing rules per institution -----------------------------------------------------------

    def rules_page(session: dict, status: int = 200, problem: dict | None = None,
                   typed: dict | None = None, chosen: str | None = None) -> Response:
        institutions = read(session, lambda: routing.institutions(session),
                            "Yönlendirme servisi", "the routing service")
        if isinstance(institutions, Response):
            return institutions
        chosen = chosen or request.args.get("kurum")
        detail = None
        if chosen:
            detail = read(session, lambda: routing.institution(session, chosen),
                          "Yönlendirme servisi", "the routing service")
            if isinstance(detail, Response):
                return detail
        categories = kit.section(lambda: routing.categories(session))
        known = sorted(c["code"] for c in (categories.get("data") or {}).get("items") or [])
        on = (problem or {}).get("target")
        mappings = sorted(((detail or {}).get("category_units") or {}).items())
        return kit.page("console/admin_rules.html", status, session=session,
                        institutions=institutions, chosen=chosen, detail=detail or {},
                        mappings=mappings,
                        overrides=(detail or {}).get("neighbourhood_overrides") or [],
                        categories=known, problem=problem,
                        mapping_form=typed if on == "mapping" else {},
                        override_form=typed if on == "override" else {},
                        done=request.args.get("tamam"))

    def rules_done(code: str) -> str:
        return f"{HOME}/kurallar?kurum={quote(code, safe='')}&tamam=1#kurallar"

    @pages.get("/yonetim/kurallar")
    def admin_rules():
        session = admin_session()
        return session if isinstance(session, Response) else rules_page(session)

    @pages.post("/yonetim/kurallar/<string(maxlength=100):code>/eslemeler")
    def admin_mapping_put(code: str):
        session = admin_session()
        if isinstance(session, Response):
            return session
        category = request.form.get("category", "").strip()
        if not category:  # the path's part: routing's schema never sees it blank
            return rules_page(session, 422, {
                "target": "mapping", "status": 422, "field": "category", "lines": [],
                "message": "category: gerekli / required"}, typed_of(request.form), code)
        unit = request.form.get("unit", "").strip()
        return change(session, lambda: routing.put_mapping(session, code, category, unit),
                      lambda problem: rules_page(session, problem["status"], problem,
                                                 typed_of(request.form), code),
                      "mapping", MAPPING_FIELDS, rules_done(code),
                      "Yönlendirme servisi", "the routing service")

    @pages.post("/yonetim/kurallar/<string(maxlength=100):code>/eslemeler/"
                "<string(maxlength=100):category>/sil")
    def admin_mapping_delete(code: str, category: str):
        session = admin_session()
        if isinstance(session, Response):
            return session
        return change(session, lambda: routing.delete_mapping(session, code, category),
                      lambda problem: rules_page(session, problem["status"],
                                                 dict(problem, category=category), None, code),
                      "mapping-delete", (), rules_done(code),
                      "Yönlendirme servisi", "the routing service")

    @pages.post("/yonetim/kurallar/<string(maxlength=100):code>/istisnalar")
    def admin_override_put(code: str):
        session = admin_session()
        if isinstance(session, Response):
            return session
        body = override_body(request.form)
        return change(session, lambda: routing.put_override(session, code, body),
                      lambda problem: rules_page(session, problem["status"], problem,
                                                 typed_of(request.form), code),
                      "override", OVERRIDE_FIELDS, rules_done(code),
                      "Yönlendirme servisi", "the routing service")

    @pages.post("/yonetim/kurallar/<string(maxlength=100):code>/istisnalar/sil")
    def admin_override_delete(code: str):
        session = admin_session()
        if isinstance(session, Response):
            return session
        key = override_body(request.form, OVERRIDE_KEY)
        return change(session, lambda: routing.delete_override(session, code, key),
                      lambda problem: rules_page(session, problem["status"], problem, None,
                                                 code),
                      "override-delete", OVERRIDE_KEY, rules_done(code),
                      "Yönlendirme servisi", "the routing service")

    # -- message templates (notify) --------------------------------------------------------------

    def templates_page(session: dict, status: int = 200, problem: dict | None = None,
                       typed: dict | None = None) -> Response:
        listed = read(session, lambda: notify.templates(session), "Bildirim servisi",
                      "the notification service")
        if isinstance(listed, Response):
            return listed
        items = [dict(item, target=template_target(item["channel"], item["name"]))
                 for item in listed.get("items") or []]
        return kit.page("console/admin_templates.html", status, session=session,
                        templates=items, problem=problem, typed=typed or {},
                        done=request.args.get("tamam"), reset=request.args.get("sifirlandi"))

    def template_done(channel: str, name: str, flag: str) -> str:
        target = template_target(channel, name)
        return f"{HOME}/sablonlar?{flag}={quote(target, safe='')}#{target}"

    @pages.get("/yonetim/sablonlar")
    def admin_templates():
        session = admin_session()
        return session if isinstance(session, Response) else templates_page(session)

    @pages.post("/yonetim/sablonlar/<string(maxlength=10):channel>/<string(maxlength=100):name>")
    def admin_template_put(channel: str, name: str):
        session = admin_session()
        if isinstance(session, Response):
            return session
        text = request.form.get("text", "").replace("\r\n", "\n")
        target = template_target(channel, name)
        return change(session, lambda: notify.put_template(session, channel, name, text),
                      lambda problem: templates_page(session, problem["status"], problem,
                                                     {target: text}),
                      target, ("text",), template_done(channel, name, "tamam"),
                      "Bildirim servisi", "the notification service")

    @pages.post("/yonetim/sablonlar/<string(maxlength=10):channel>/"
                "<string(maxlength=100):name>/sil")
    def admin_template_delete(channel: str, name: str):
        session = admin_session()
        if isinstance(session, Response):
            return session
        target = template_target(channel, name)
        return change(session, lambda: notify.delete_template(session, channel, name),
                      lambda problem: templates_page(session, problem["status"], problem),
                      target, (), template_done(channel, name, "sifirlandi"),
                      "Bildirim servisi", "the notification service")
