"""Sample payloads and files the intake tests share: real-looking, fictitious people."""
from __future__ import annotations

import io
from email.message import EmailMessage
from pathlib import Path

from PIL import Image

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TCKN = "10000000146"  # valid check digits, fictitious
OTHER_TCKN = "10000000078"
BAD_CHECK_DIGIT = "10000000147"
PHONE = "+905551112233"

WEB = {
    "kind": "complaint", "category": "road_damage", "channel": "web",
    "description": "Tece Mahallesi 1. Sokak'ta büyük bir çukur var.",
    "location": {"province": "Mersin", "district": "Mezitli", "neighbourhood": "Tece",
                 "lat": 36.7451, "lon": 34.5311},
    "citizen": {"tckn": TCKN, "first_name": "Ayşe", "last_name": "Demir",
                "phone": "0555 111 22 33", "email": "ayse@example.com"},
}

DESK = {
    "applied_at": "2026-03-03T10:15:00+03:00",
    "place": "Mezitli Açık Kapı Başvuru Merkezi",
    "channel": "desk",
    "received_by": {"name": "Derya Kaya", "staff_code": "mezitli_bld-0031"},
    "citizen": {"tckn": TCKN, "first_name": "Ayşe", "last_name": "Demir",
                "home_phone": "0324 357 00 00", "mobile_phone": "0555 111 22 33",
                "email": "ayse@example.com", "address": "Tece Mah. 1. Sk. No: 3 Mezitli",
                "district": "Mezitli", "neighbourhood": "Tece"},
    "kind": "complaint", "category": "road_damage",
    "description": "Sokakta çukur var, araçlar zarar görüyor.",
    "location": {"province": "Mersin", "district": "Mezitli", "neighbourhood": "Tece"},
}


def jpeg(width: int = 640, height: int = 480, gps: tuple | None = None) -> bytes:
    """A JPEG photo, optionally with EXIF GPS (degrees, minutes, seconds for N / E)."""
    image = Image.new("RGB", (width, height), (90, 120, 160))
    exif = Image.Exif()
    exif[0x010F] = "SahaTablet"  # camera make: metadata that must not survive either
    if gps:
        exif.get_ifd(0x8825).update({1: "N", 2: gps[0], 3: "E", 4: gps[1]})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def big_photo(size: int = 20 * 1024 * 1024) -> bytes:
    """A '20 MB photo': real JPEG magic, padded (size is what is refused)."""
    head = jpeg()
    return head + b"\x00" * (size - len(head))


def executable() -> bytes:
    """A Windows executable's first bytes (what gets renamed to .jpg)."""
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 2000


def email_bytes(*, sender: str = "Ayşe Demir <ayse@example.com>", subject: str = "Çukur",
                text: str | None = f"T.C. {TCKN}\nSokağımızda büyük bir çukur var.",
                html: str | None = None,
                attachments: list[tuple[str, str, bytes]] = ()) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "acikkapi@mersin.bel.tr"
    message["Subject"] = subject
    message["Message-ID"] = "<test-1@example.com>"
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(message)
