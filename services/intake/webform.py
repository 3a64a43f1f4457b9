"""The public web form `/basvuru`: a Turkish page (English with `?lang=en`), accessible, no
JavaScript, with a photo upload; the codes are shown on success, once.

Browsers cannot send an Idempotency-Key header, so the form carries one in a hidden field drawn
when the page is rendered: submitting the same page twice (a double click, a reload after a
network error) returns the same application.
"""
from __future__ import annotations

from flask import Blueprint, render_template, request
from marshmallow import ValidationError

from services.common.catalogue_cache import CatalogueCache
from services.common.events import KINDS, new_event_id
from services.intake import domain, media, submission
from services.intake.schemas import CreateApplicationSchema

LANGUAGES = ("tr", "en")
_SCHEMA = CreateApplicationSchema()
KIND_NAMES = {
    "complaint": ("Şikâyet", "Complaint"), "request": ("Talep", "Request"),
    "suggestion": ("Öneri", "Suggestion"), "information": ("Bilgi edinme", "Information"),
    "thanks": ("Teşekkür", "Thanks"),
}
TEXT = {
    "tr": {
        "title": "Başvuru formu", "intro": "Şikâyet, talep, öneri, bilgi edinme ve teşekkürleriniz "
        "için. Zorunlu alanlar * ile işaretlidir.", "about": "Başvurunuz", "kind": "Başvuru türü",
        "category": "Konu", "description": "Açıklama", "where": "Yer", "district": "İlçe",
        "neighbourhood": "Mahalle", "address": "Adres (isteğe bağlı)", "you": "Kimlik ve iletişim",
        "first_name": "Ad", "last_name": "Soyad", "tckn": "T.C. kimlik numarası",
        "tckn_hint": "Yabancı uyruklu iseniz boş bırakabilirsiniz.", "phone": "Cep telefonu",
        "email": "E-posta", "contact_hint": "Cep telefonu veya e-postadan en az biri gerekli.",
        "preferred": "Size nasıl ulaşalım?", "sms": "SMS", "mail": "E-posta",
        "language": "Mesajlarımızın dili",
        "photo": "Fotoğraf (isteğe bağlı; JPEG, PNG veya WebP, en çok {mb} MB)",
        "photo_hint": "Fotoğraftaki konum bilgisi saklanmadan önce silinir.",
        "consent": "Başvurum hakkında benimle iletişim kurulmasını kabul ediyorum.",
        "send": "Başvuruyu gönder", "errors": "Formda düzeltilmesi gereken alanlar var:",
        "done": "Başvurunuz alındı", "merged": "Bu başvuru daha önce yapılmış",
        "merged_text": "Aynı konuda yakın zamanda yapılmış bir başvuru var; başvurunuz onunla "
        "birleştirildi. Takip kodu aşağıdadır. Güvenlik kodu ilk başvuruyu yapana verilmiştir.",
        "tracking": "Takip kodu", "security": "Güvenlik kodu",
        "keep": "Bu kodları not alın: güvenlik kodu yalnızca bir kez gösterilir. Başvurunuzu "
        "takip sayfasından iki kodla sorgulayabilirsiniz.", "track": "Başvurumu takip et",
        "choose": "Seçiniz", "other_language": "English", "required": "zorunlu",
        "photo_label": "Fotoğraf",
    },
    "en": {
        "title": "Application form", "intro": "For complaints, requests, suggestions, "
        "information requests and thanks. Required fields are marked *.",
        "about": "Your application", "kind": "Kind", "category": "Subject",
        "description": "Description", "where": "Place", "district": "District",
        "neighbourhood": "Neighbourhood", "address": "Address (optional)",
        "you": "Identity and contact", "first_name": "First name", "last_name": "Last name",
        "tckn": "TC Kimlik No", "tckn_hint": "Foreign residents may leave this empty.",
        "phone": "Mobile phone", "email": "E-mail",
        "contact_hint": "A mobile phone or an e-mail is required.",
        "preferred": "How should we reach you?", "sms": "SMS", "mail": "E-mail",
        "language": "Language of our messages to you",
        "photo": "Photo (optional; JPEG, PNG or WebP, at most {mb} MB)",
        "photo_hint": "Location data in the photo is removed before it is stored.",
        "consent": "I agree to be contacted about my application.",
        "send": "Send application", "errors": "Please correct these fields:",
        "done": "Your application was received", "merged": "This was reported already",
        "merged_text": "An application about the same matter was made recently; yours was "
        "linked to it. Its tracking code is below. The security code was given to whoever "
        "made the first application.",
        "tracking": "Tracking code", "security": "Security code",
        "keep": "Write these codes down: the security code is shown only once. Follow your "
        "application on the tracking page with both codes.", "track": "Track my application",
        "choose": "Choose", "other_language": "Türkçe", "required": "required",
        "photo_label": "Photo",
    },
}


# marshmallow's generic English messages, said in the page's language
GENERIC = {
    "Missing data for required field.": ("Bu alan zorunludur.", "This field is required."),
    "Field may not be null.": ("Bu alan zorunludur.", "This field is required."),
    "Not a valid email address.": ("Geçerli bir e-posta adresi yazın.",
                                   "Enter a valid e-mail address."),
    "Must be one of": ("Listeden bir seçenek seçin.", "Choose one of the options."),
}
LABEL_OF = {
    "kind": "kind", "category": "category", "description": "description",
    "location.district": "district", "location.neighbourhood": "neighbourhood",
    "location.address": "address", "citizen.first_name": "first_name",
    "citizen.last_name": "last_name", "citizen.tckn": "tckn", "citizen.phone": "phone",
    "citizen.email": "email", "citizen.language": "language", "citizen": "you",
    "photo": "photo_label", "form": "send",
}
# The languages a citizen may choose for our messages, each named in itself.
MESSAGE_LANGUAGES = (("tr", "Türkçe"), ("en", "English"))


def _say(message: str, lang: str) -> str:
    for english, spoken in GENERIC.items():
        if message.startswith(english):
            return spoken[LANGUAGES.index(lang)]
    return message


def _flat_errors(messages: dict, prefix: str = "") -> dict[str, str]:
    flat = {}
    for key, value in messages.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat_errors(value, f"{name}."))
        elif isinstance(value, list) and value:
            flat[name] = str(value[0])
    return flat


def form_blueprint(intake: submission.Intake, catalogue: CatalogueCache) -> Blueprint:
    """The `/basvuru` pages."""
    form = Blueprint("webform", __name__, url_prefix="/basvuru",
                     template_folder="templates")
    max_mb = intake.settings.attachment_max_bytes // (1024 * 1024)
    sorted_for: list = [None, []]  # (catalogue, its categories by Turkish name), rebuilt on change

    def categories() -> list:
        current = catalogue.get()
        if sorted_for[0] is not current:
            by_name = sorted(current.values(), key=lambda c: c.name_tr)
            sorted_for[:] = [current, [c for c in by_name if c.code != "unmapped_example"]]
        return sorted_for[1]

    def language() -> str:
        lang = request.values.get("lang", "tr")
        return lang if lang in LANGUAGES else "tr"

    def page(values: dict, errors: dict[str, str], status: int):
        lang = language()
        errors = {name: _say(message, lang) for name, message in errors.items()}
        labels = {name: TEXT[lang].get(LABEL_OF.get(name, ""), name) for name in errors}
        return render_template(
            "basvuru.html", t=TEXT[lang], lang=lang, values=values, errors=errors,
            labels=labels,
            kinds=[(k, KIND_NAMES[k][LANGUAGES.index(lang)]) for k in KINDS],
            categories=[(c.code, c.name_tr if lang == "tr" else c.name_en)
                        for c in categories()],
            max_mb=max_mb, idempotency_key=values.get("idempotency_key") or new_event_id(),
            message_languages=MESSAGE_LANGUAGES,
        ), status

    @form.get("")
    def show():
        # whoever reads the form in English is likely to want our messages in English too
        return page({"preferred_channel": "sms", "language": language()}, {}, 200)

    @form.post("")
    def send():
        values = request.form.to_dict()
        raw = {
            "kind": values.get("kind") or None, "category": values.get("category") or None,
            "channel": "web", "description": (values.get("description") or "").strip(),
            "location": {k: v for k, v in {
                "province": intake.settings.default_province,
                "district": values.get("district") or None,
                "neighbourhood": values.get("neighbourhood") or None,
                "address": values.get("address") or None}.items() if v},
            "citizen": {k: v for k, v in {
                "first_name": (values.get("first_name") or "").strip() or None,
                "last_name": (values.get("last_name") or "").strip() or None,
                "tckn": (values.get("tckn") or "").replace(" ", "") or None,
                "phone": values.get("phone") or None, "email": values.get("email") or None,
                "preferred_channel": values.get("preferred_channel") or None,
                "language": values.get("language") or None,
                "consent": values.get("consent") == "yes"}.items() if v is not None},
        }
        errors: dict[str, str] = {}
        try:
            payload = _SCHEMA.load(raw)
        except ValidationError as exc:
            errors.update(_flat_errors(exc.messages))
            payload = None
        photos = []
        upload = request.files.get("photo")
        if upload and upload.filename:
            try:
                photos.append(media.prepare(upload.stream.read(
                    intake.settings.attachment_max_bytes + 1), upload.filename,
                    intake.settings.attachment_max_bytes))
            except media.AttachmentRefused as refused:
                from services.intake.inbound import REASON_TEXT

                errors["photo"] = REASON_TEXT[refused.reason]
        if errors or payload is None:
            return page(values, errors, 422)
        try:
            answer = intake.submit(payload, idempotency_key=values.get("idempotency_key"),
                                   scope="webform", attachments=photos)
        except domain.Rejected as rejected:
            return page(values, _flat_errors(rejected.errors), 422)
        except (submission.IdempotencyConflict, submission.RequestInProgress):
            values.pop("idempotency_key", None)
            return page(values, {"form": "Lütfen formu yeniden gönderin / please send the "
                                         "form again."}, 409)
        lang = language()
        return render_template("basvuru_done.html", t=TEXT[lang], lang=lang,
                               answer=answer), 201

    return form
