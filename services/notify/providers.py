"""Outbound SMS and e-mail providers behind one small interface, chosen at start-up.

`SMS_PROVIDER` picks the SMS provider: `dev` (`DevSinkSmsProvider`) writes each message as a
JSON line to `<DEV_SINK_DIR>/sms.jsonl` instead of sending it, so the local run and the tests
can see what a citizen would receive; `http` (`HttpSmsGateway`) hands it to an HTTP SMS gateway
whose request shape is configuration (Turkish gateways each want a different body).
`EMAIL_PROVIDER` picks the e-mail provider: `dev` (`DevSinkEmailProvider`) writes each message
as an RFC 5322 file under `<DEV_SINK_DIR>/mail/`; `smtp` (`SmtpEmailProvider`) sends it through
an SMTP server. A provider that is unknown or lacks a setting stops the service at start
(notify's composition root builds the providers first), never at the first message. Both are
made once per process by `bootstrap.NotifyParts`.

Every send carries a `reference`: the message's own key (`<cause event>:<template>`). A sender
that died after handing a message over and before recording it leaves a claim that is taken
over after the lease, and the message is handed over again with the same reference: a provider
that keeps client references (most SMS gateways take one for delivery reports; many refuse a
repeated one) sends it once. The development sinks do as such a gateway would: the first send of
a reference is written, a repeat answers the first one's message id and writes nothing. The
HTTP gateway sends the reference in an idempotency header; the SMTP provider derives the
Message-ID from it, so a resent e-mail is recognisably the same one.

A provider makes one attempt per `send`. When it fails it raises a `ProviderError`: a
`PermanentFailure` (the message can never go as it is: a refused number or address, a 4xx) or a
`TransientFailure` (worth another attempt later: a timeout, a 5xx, a server away). Retrying,
with backoff and the same reference, is the caller's. The error's text is its `code` alone,
because it may be logged: never a number, an address, a message text or a credential, and the
library exception that caused it (whose text may hold any of those) is not chained.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import smtplib
import socket
import ssl
import threading
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any, Protocol

import phonenumbers
import requests
from email_validator import EmailNotValidError, validate_email

from services.common.config import is_local
from services.common.events import new_event_id, utcnow

log = logging.getLogger(__name__)


class ProviderConfigError(RuntimeError):
    """The configured provider cannot be used."""


class ProviderError(Exception):
    """A provider did not take a message. `code` says why (`http_503`, `timeout`, `smtp_550`,
    `invalid_number`, `invalid_address`, …) and is the whole exception text."""

    permanent: bool = False

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class PermanentFailure(ProviderError):
    """The message cannot go as it is (an invalid number or address, a refusal): never retry."""

    permanent = True


class TransientFailure(ProviderError):
    """The provider could not take the message now (a timeout, a server error or away):
    another attempt later, with the same reference, may succeed."""

    permanent = False


class SmsProvider(Protocol):
    name: str

    def send(self, to: str, text: str, reference: str | None = None) -> str:
        """Hand one SMS to the provider; returns its message id, raises `ProviderError` if it
        did not take it.

        A repeated `reference` is the same message handed over again (see the module)."""


class DevSinkSmsProvider:
    """The development provider: appends `{at, to, text, message_id}` to `sms.jsonl`."""

    name = "dev"

    def __init__(self, sink_dir: str | Path):
        self.path = Path(sink_dir) / "sms.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Greenlets of one process share the file: one whole line per write, one writer at a time.
        self._lock = threading.Lock()

    def send(self, to: str, text: str, reference: str | None = None) -> str:
        message_id, first = _once(self.path.parent / "sms-references", reference)
        if not first:
            return message_id
        line = json.dumps({"at": utcnow().isoformat(), "to": to, "text": text,
                           "message_id": message_id}, ensure_ascii=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as sink:
                sink.write(line + "\n")
        return message_id


def _once(directory: Path, reference: str | None) -> tuple[str, bool]:
    """A new message id and True for a first send of `reference` (or none), else the id the
    first send got and False. One file per reference, created exclusively: of any number of
    processes handing the same message over, one writes it."""
    message_id = f"dev-{new_event_id()}"
    if reference is None:
        return message_id, True
    directory.mkdir(parents=True, exist_ok=True)
    marker = directory / hashlib.sha256(reference.encode()).hexdigest()
    try:
        with marker.open("x", encoding="utf-8") as handle:
            handle.write(message_id)
    except FileExistsError:
        return marker.read_text(encoding="utf-8") or message_id, False
    return message_id, True


# -- the HTTP SMS gateway ----------------------------------------------------------------------

PLACEHOLDERS = frozenset({"to", "text", "sender", "username", "password", "reference"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
AUTH_MODES = ("body", "basic", "bearer")
BODY_FORMATS = ("json", "form")
NUMBER_FORMATS = ("e164", "international_digits", "national_digits")
METHODS = ("POST", "PUT", "GET")
_TURKEY = 90


def default_sms_body(auth: str) -> dict:
    """The body when `SMS_GATEWAY_BODY` is empty: the credentials in it only with `body` auth."""
    body = {"sender": "{sender}", "to": "{to}", "text": "{text}", "reference": "{reference}"}
    if auth == "body":
        body = {"username": "{username}", "password": "{password}", **body}
    return body


def fill_template(template: Any, values: dict[str, str]) -> Any:
    """`template` with each `{name}` of `values` replaced inside its strings, through nested
    objects and lists; other values stay as written.

    One pass of a regular expression, never `str.format`: a substituted value is not looked at
    again, so a `{` or a `{to}` in a citizen's text is sent as it is.
    """
    if isinstance(template, str):
        return _PLACEHOLDER.sub(lambda match: values.get(match[1], match[0]), template)
    if isinstance(template, dict):
        return {key: fill_template(value, values) for key, value in template.items()}
    if isinstance(template, list):
        return [fill_template(item, values) for item in template]
    return template


def _placeholders(template: Any) -> set[str]:
    """Every `{name}` written in `template`'s strings."""
    if isinstance(template, str):
        return set(_PLACEHOLDER.findall(template))
    if isinstance(template, dict):
        return set().union(*map(_placeholders, template.values()))
    if isinstance(template, list):
        return set().union(*map(_placeholders, template))
    return set()


def _dotted(payload: Any, path: str) -> Any:
    """`payload` at `a.b.0.c` (a number indexes a list); None where the path leads nowhere."""
    for step in path.split("."):
        if isinstance(payload, dict):
            payload = payload.get(step)
        elif isinstance(payload, list) and step.isdigit() and int(step) < len(payload):
            payload = payload[int(step)]
        else:
            return None
    return payload


def http_failure(status: int) -> ProviderError:
    """What an HTTP status other than 2xx means for the message: a server error, a timeout
    (408) or a rate limit (429) may pass; any other refusal (4xx, and a redirect, which means
    the URL is wrong) will not."""
    code = f"http_{status}"
    if status >= 500 or status in (408, 429):
        return TransientFailure(code)
    return PermanentFailure(code)


class HttpSmsGateway:
    """An HTTP SMS gateway (`SMS_PROVIDER=http`), its request shape set by configuration.

    The body is `body_template` with its placeholders filled (`fill_template`), sent as JSON or
    as a form (or, with GET, as the query). Credentials go in the body (`auth="body"`, through
    `{username}` / `{password}`), as HTTP basic auth, or as a bearer token. The reference goes
    in `idempotency_header` (none when empty) and in `{reference}`. The answer's message id is
    read from the JSON at `id_field` (dotted); without one it is the reference.
    """

    name = "http"

    def __init__(
        self, url: str, *, method: str = "POST", body_format: str = "json",
        body_template: dict | None = None, auth: str = "body", username: str = "",
        password: str = "", token: str = "", sender: str = "",
        idempotency_header: str = "Idempotency-Key", number_format: str = "e164",
        id_field: str = "message_id", timeout: float = 10.0,
        session: requests.Session | None = None,
    ):
        if not url.startswith(("http://", "https://")):
            raise ProviderConfigError("SMS_GATEWAY_URL must be an http:// or https:// URL")
        method = method.upper()
        _choice("SMS_GATEWAY_METHOD", method, METHODS)
        _choice("SMS_GATEWAY_FORMAT", body_format, BODY_FORMATS)
        _choice("SMS_GATEWAY_AUTH", auth, AUTH_MODES)
        _choice("SMS_GATEWAY_NUMBER_FORMAT", number_format, NUMBER_FORMATS)
        template = default_sms_body(auth) if body_template is None else body_template
        if not isinstance(template, dict):
            raise ProviderConfigError("SMS_GATEWAY_BODY must be a JSON object")
        used = _placeholders(template)
        unknown = used - PLACEHOLDERS
        if unknown:
            raise ProviderConfigError(
                f"SMS_GATEWAY_BODY has unknown placeholders {sorted(unknown)}; known: "
                f"{sorted(PLACEHOLDERS)}")
        missing = {"to", "text"} - used
        if missing:
            raise ProviderConfigError(f"SMS_GATEWAY_BODY must carry {sorted(missing)}")
        if body_format == "form" or method == "GET":
            if method == "GET" and body_format != "form":
                raise ProviderConfigError("SMS_GATEWAY_METHOD=GET sends a query: "
                                          "SMS_GATEWAY_FORMAT must be form")
            if not _flat(template):
                raise ProviderConfigError("SMS_GATEWAY_BODY must be flat for a form: "
                                          "strings, numbers or lists of them")
        # A setting the body or the auth mode needs must be there at start.
        needed = {f"SMS_GATEWAY_{name.upper()}": value for name, value in
                  (("username", username), ("password", password), ("sender", sender))
                  if name in used}
        if auth == "basic":
            needed.update(SMS_GATEWAY_USERNAME=username, SMS_GATEWAY_PASSWORD=password)
        if auth == "bearer":
            needed["SMS_GATEWAY_TOKEN"] = token
        missing_settings = [setting for setting, value in needed.items() if not value]
        if missing_settings:
            raise ProviderConfigError(
                f"SMS_PROVIDER=http needs {', '.join(sorted(missing_settings))}")
        if timeout <= 0:
            raise ProviderConfigError("SMS_GATEWAY_TIMEOUT must be positive")
        self.url, self.method, self.body_format = url, method, body_format
        self.body_template, self.auth = template, auth
        self.sender, self.idempotency_header = sender, idempotency_header
        self.number_format, self.id_field, self.timeout = number_format, id_field, timeout
        # Only `send` reads the credentials; no message or log line of ours carries them.
        self._secrets = {"username": username, "password": password, "token": token}
        self.session = session or requests.Session()

    @classmethod
    def from_config(cls, config: dict) -> HttpSmsGateway:
        url = config.get("SMS_GATEWAY_URL") or ""
        if not url:
            raise ProviderConfigError("SMS_PROVIDER=http needs SMS_GATEWAY_URL")
        body = config.get("SMS_GATEWAY_BODY") or ""
        template = None
        if body.strip():
            try:
                template = json.loads(body)
            except ValueError:
                # The template's text is not repeated: it may hold a literal credential.
                raise ProviderConfigError("SMS_GATEWAY_BODY is not valid JSON") from None
        # Empty is a choice (the gateway takes no such header, reads no id); only absent
        # means the default.
        header = config.get("SMS_GATEWAY_IDEMPOTENCY_HEADER")
        id_field = config.get("SMS_GATEWAY_ID_FIELD")
        return cls(
            url,
            method=config.get("SMS_GATEWAY_METHOD") or "POST",
            body_format=(config.get("SMS_GATEWAY_FORMAT") or "json").lower(),
            body_template=template,
            auth=(config.get("SMS_GATEWAY_AUTH") or "body").lower(),
            username=config.get("SMS_GATEWAY_USERNAME") or "",
            password=config.get("SMS_GATEWAY_PASSWORD") or "",
            token=config.get("SMS_GATEWAY_TOKEN") or "",
            sender=config.get("SMS_GATEWAY_SENDER") or "",
            idempotency_header="Idempotency-Key" if header is None else header.strip(),
            number_format=(config.get("SMS_GATEWAY_NUMBER_FORMAT") or "e164").lower(),
            id_field="message_id" if id_field is None else id_field.strip(),
            timeout=_seconds(config.get("SMS_GATEWAY_TIMEOUT"), "SMS_GATEWAY_TIMEOUT"),
        )

    def number(self, to: str) -> str:
        """`to` as the gateway wants it; `PermanentFailure("invalid_number")` when it is not a
        valid number (a national one is read as Turkish), `"foreign_number"` when the gateway
        takes national numbers and it is not Turkish."""
        try:
            parsed = phonenumbers.parse(to, "TR")
        except phonenumbers.NumberParseException:
            raise PermanentFailure("invalid_number") from None
        if not phonenumbers.is_valid_number(parsed):
            raise PermanentFailure("invalid_number")
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if self.number_format == "e164":
            return e164
        if self.number_format == "international_digits":
            return e164.lstrip("+")
        if parsed.country_code != _TURKEY:
            raise PermanentFailure("foreign_number")
        return phonenumbers.national_significant_number(parsed)

    def send(self, to: str, text: str, reference: str | None = None) -> str:
        number = self.number(to)  # before anything goes out: an invalid one never will
        # A message without a key (the one-time login code) still gets a client reference.
        reference = reference or f"ak-{new_event_id()}"
        body = fill_template(self.body_template, {
            "to": number, "text": text, "sender": self.sender, "reference": reference,
            "username": self._secrets["username"], "password": self._secrets["password"]})
        headers = {"Accept": "application/json"}
        if self.idempotency_header:
            headers[self.idempotency_header] = reference
        auth = None
        if self.auth == "basic":
            auth = (self._secrets["username"], self._secrets["password"])
        elif self.auth == "bearer":
            headers["Authorization"] = f"Bearer {self._secrets['token']}"
        if self.method == "GET":
            payload = {"params": body}
        elif self.body_format == "json":
            payload = {"json": body}
        else:
            payload = {"data": body}
        try:
            response = self.session.request(
                self.method, self.url, headers=headers, auth=auth,
                timeout=(self.timeout, self.timeout), allow_redirects=False, **payload)
        except requests.Timeout:
            raise TransientFailure("timeout") from None
        except requests.exceptions.SSLError:
            raise TransientFailure("tls_error") from None
        except requests.ConnectionError:
            raise TransientFailure("connection_error") from None
        except requests.RequestException:
            raise TransientFailure("request_error") from None
        with response:
            if not 200 <= response.status_code < 300:
                raise http_failure(response.status_code)
            return self._message_id(response) or reference

    def _message_id(self, response: requests.Response) -> str | None:
        if not self.id_field:
            return None
        try:
            found = _dotted(response.json(), self.id_field)
        except ValueError:  # not JSON: many gateways answer plain text
            return None
        if found is None or isinstance(found, (dict, list, bool)) or str(found) == "":
            return None
        return str(found)


def _flat(template: dict) -> bool:
    scalar = (str, int, float)
    return all(isinstance(value, scalar) or (
        isinstance(value, list) and all(isinstance(item, scalar) for item in value))
        for value in template.values())


def _choice(setting: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ProviderConfigError(f"{setting}={value!r} is not one of {', '.join(allowed)}")


def _seconds(value: str | float | None, setting: str, default: float = 10.0) -> float:
    if value is None or value == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ProviderConfigError(f"{setting} must be a number of seconds") from None
    if seconds <= 0:
        raise ProviderConfigError(f"{setting} must be positive")
    return seconds


def _flag(value: str | bool | None, setting: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ProviderConfigError(f"{setting} must be true or false")


def build_sms_provider(config: dict) -> SmsProvider:
    """The provider `SMS_PROVIDER` names; raises `ProviderConfigError` for anything unknown or
    a setting it needs and lacks."""
    name = config.get("SMS_PROVIDER", "dev")
    if name == "dev":
        if not is_local(config["MONGO_URI"]):
            log.warning("SMS_PROVIDER=dev: messages go to the development sink, not to citizens")
        return DevSinkSmsProvider(config["DEV_SINK_DIR"])
    if name == "http":
        return HttpSmsGateway.from_config(config)
    raise ProviderConfigError(f"SMS_PROVIDER={name!r} is not supported; known providers: "
                              "dev, http")


# -- e-mail ----------------------------------------------------------------------------------

class EmailProvider(Protocol):
    name: str

    def send(self, to: str, subject: str, text: str, reference: str | None = None, *,
             language: str = "tr") -> str:
        """Hand one e-mail to the provider; returns its message id, raises `ProviderError` if
        it did not take it. A repeated `reference` is the same message handed over again (see
        the module). `language` is the text's (its Content-Language)."""


class DevSinkEmailProvider:
    """The development provider: each message an RFC 5322 file, `DEV_SINK_DIR/mail/<id>.eml`."""

    name = "dev"

    def __init__(self, sink_dir: str | Path, sender: str):
        self.directory = Path(sink_dir) / "mail"
        self.sender = sender

    def send(self, to: str, subject: str, text: str, reference: str | None = None, *,
             language: str = "tr") -> str:
        message_id, first = _once(self.directory.parent / "mail-references", reference)
        if not first:
            return message_id
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = make_msgid(idstring=message_id, domain="acikkapi.local")
        message["Auto-Submitted"] = "auto-replied"  # RFC 3834: no autoresponder loops
        message.set_content(text)
        message["Content-Language"] = language  # after: set_content clears Content-* headers
        self.directory.mkdir(parents=True, exist_ok=True)
        # write then rename: a reader never sees half a message
        partial = self.directory / f".{message_id}.tmp"
        partial.write_bytes(bytes(message))
        partial.rename(self.directory / f"{message_id}.eml")
        return message_id


SMTP_PORTS = {"starttls": 587, "tls": 465, "none": 25}  # mode → its usual port


def valid_address(address: str) -> tuple[str, str]:
    """`(address, domain)` of a syntactically valid e-mail address, ASCII (an internationalised
    domain in its IDNA form), or `PermanentFailure("invalid_address")`. No DNS look-up:
    deliverability is the server's to find out, and a look-up per message would stall a send.

    An address whose local part needs SMTPUTF8 is refused: a relay that lacks that extension
    would bounce it later, where we no longer see it."""
    try:
        valid = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        raise PermanentFailure("invalid_address") from None
    return valid.ascii_email or valid.normalized, valid.ascii_domain


class SmtpEmailProvider:
    """Sends each e-mail through an SMTP server (`EMAIL_PROVIDER=smtp`), one connection each.

    `security` is `starttls` (upgrade a plain connection; refused without it), `tls` (TLS from
    the first byte, SMTPS) or `none` (a local relay only). It logs in when a username is set.
    The Message-ID is derived from the reference, so the same message sent again carries the
    same Message-ID and a mail system (or a reader) sees one message.
    """

    name = "smtp"

    def __init__(
        self, host: str, *, sender: str, port: int | None = None, security: str = "starttls",
        username: str = "", password: str = "", timeout: float = 10.0, verify: bool = True,
        ca_file: str | None = None, local_hostname: str | None = None,
    ):
        if not host:
            raise ProviderConfigError("EMAIL_PROVIDER=smtp needs SMTP_HOST")
        _choice("SMTP_SECURITY", security, tuple(SMTP_PORTS))
        if not sender:
            raise ProviderConfigError("EMAIL_PROVIDER=smtp needs MAIL_FROM")
        _, sender_address = parseaddr(sender)
        try:
            self.envelope_from, self.domain = valid_address(sender_address)
        except PermanentFailure:
            raise ProviderConfigError("MAIL_FROM is not a valid address") from None
        if username and not password:
            raise ProviderConfigError("SMTP_USERNAME is set: EMAIL_PROVIDER=smtp needs "
                                      "SMTP_PASSWORD")
        if timeout <= 0:
            raise ProviderConfigError("SMTP_TIMEOUT must be positive")
        self.host, self.port = host, port or SMTP_PORTS[security]
        self.security, self.sender, self.timeout = security, sender, timeout
        self.username = username
        self._password = password
        self._context = None if security == "none" else _tls_context(verify, ca_file)
        # EHLO's name, found once: smtplib would ask the resolver again on every connection.
        self.local_hostname = local_hostname or socket.getfqdn()

    @classmethod
    def from_config(cls, config: dict) -> SmtpEmailProvider:
        port = config.get("SMTP_PORT") or ""
        try:
            port_number = int(port) if str(port).strip() else None
        except ValueError:
            raise ProviderConfigError("SMTP_PORT must be a port number") from None
        security = (config.get("SMTP_SECURITY") or "starttls").lower()
        username = config.get("SMTP_USERNAME") or ""
        verify = _flag(config.get("SMTP_VERIFY"), "SMTP_VERIFY", True)
        if security == "none" and username:
            log.warning("SMTP_SECURITY=none: the SMTP password crosses the network in clear")
        if not verify and security != "none":
            log.warning("SMTP_VERIFY=false: the SMTP server's certificate is not checked")
        return cls(
            config.get("SMTP_HOST") or "",
            sender=config.get("MAIL_FROM") or "",
            port=port_number,
            security=security,
            username=username,
            password=config.get("SMTP_PASSWORD") or "",
            timeout=_seconds(config.get("SMTP_TIMEOUT"), "SMTP_TIMEOUT"),
            verify=verify,
            ca_file=config.get("SMTP_CA_FILE") or None,
        )

    def message_id(self, reference: str | None) -> str:
        """The Message-ID of the message with `reference`: the same for every send of it (a
        hash, so the key of the cause event does not travel in a header); random without one."""
        if reference is None:
            return make_msgid(domain=self.domain)
        return f"<{hashlib.sha256(reference.encode()).hexdigest()[:32]}@{self.domain}>"

    def compose(self, to: str, subject: str, text: str, message_id: str,
                language: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = " ".join(subject.split())  # one line, whatever a template made
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = message_id
        # RFC 3834: written by a program, so no autoresponder answers it (no reply loops).
        message["Auto-Submitted"] = "auto-generated"
        # Quoted-printable: 7-bit clean through any relay, even one without 8BITMIME.
        message.set_content(text, charset="utf-8", cte="quoted-printable")
        message["Content-Language"] = language  # after: set_content clears Content-* headers
        return message

    def send(self, to: str, subject: str, text: str, reference: str | None = None, *,
             language: str = "tr") -> str:
        recipient, _ = valid_address(to)  # before connecting: an invalid one never will go
        message_id = self.message_id(reference)
        message = self.compose(recipient, subject, text, message_id, language)
        try:
            smtp = self._connect()
            try:
                if self.username:
                    smtp.login(self.username, self._password)
                smtp.send_message(message, from_addr=self.envelope_from, to_addrs=[recipient])
            finally:
                _quit_quietly(smtp)
        except smtplib.SMTPRecipientsRefused as refused:
            codes = [code for code, _ in refused.recipients.values()] or [550]
            raise _smtp_failure(codes[0]) from None
        except smtplib.SMTPAuthenticationError:
            # Our credentials, not the message: worth another go once they are fixed.
            raise TransientFailure("smtp_auth") from None
        except (smtplib.SMTPConnectError, smtplib.SMTPHeloError) as exc:
            raise TransientFailure(f"smtp_connect_{exc.smtp_code}") from None
        except smtplib.SMTPResponseException as exc:
            raise _smtp_failure(exc.smtp_code) from None
        except smtplib.SMTPNotSupportedError:
            raise TransientFailure("smtp_unsupported") from None  # no STARTTLS, no AUTH
        except smtplib.SMTPServerDisconnected:
            raise TransientFailure("smtp_disconnected") from None
        except smtplib.SMTPException:
            raise TransientFailure("smtp_error") from None
        except TimeoutError:
            raise TransientFailure("timeout") from None
        except ssl.SSLError:
            raise TransientFailure("tls_error") from None
        except OSError:  # refused, reset, unreachable, no such host
            raise TransientFailure("connection_error") from None
        return message_id

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, local_hostname=self.local_hostname,
                                    timeout=self.timeout, context=self._context)
        smtp = smtplib.SMTP(self.host, self.port, local_hostname=self.local_hostname,
                            timeout=self.timeout)
        if self.security == "starttls":
            try:
                smtp.starttls(context=self._context)
            except BaseException:
                smtp.close()
                raise
        return smtp


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    """Say goodbye, ignoring a failure: once the server accepted the message, a QUIT that
    times out must not make it look unsent (the caller would send it again)."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _smtp_failure(code: int) -> ProviderError:
    """5xx is a refusal for good (RFC 5321 §4.2.1); anything else may pass."""
    if 500 <= code < 600:
        return PermanentFailure(f"smtp_{code}")
    return TransientFailure(f"smtp_{code}")


def _tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError):
        raise ProviderConfigError("SMTP_CA_FILE cannot be read as a CA certificate") from None
    if not verify:
        # Only for a local test server with a self-signed certificate (SMTP_VERIFY=false).
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def build_email_provider(config: dict) -> EmailProvider:
    """The provider `EMAIL_PROVIDER` names; raises `ProviderConfigError` for anything unknown
    or a setting it needs and lacks."""
    name = config.get("EMAIL_PROVIDER", "dev")
    if name == "dev":
        if not is_local(config["MONGO_URI"]):
            log.warning("EMAIL_PROVIDER=dev: e-mail goes to the development sink")
        return DevSinkEmailProvider(config["DEV_SINK_DIR"],
                                    config.get("MAIL_FROM") or "acikkapi@example.gov.tr")
    if name == "smtp":
        return SmtpEmailProvider.from_config(config)
    raise ProviderConfigError(f"EMAIL_PROVIDER={name!r} is not supported; known providers: "
                              "dev, smtp")
