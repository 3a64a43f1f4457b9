"""Attachments' content rules: type sniffed from the bytes, size limits, metadata stripped,
thumbnails. Pure (Pillow, no storage).

The name and the declared content type of an upload are never trusted: the first bytes decide
(magic numbers), and an image must also decode. Images are re-encoded without their metadata —
EXIF, GPS, XMP, comments — so nothing stored can later leak where a photo was taken; the GPS
position is read first and returned, so a field team's photo can still place the application.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

TOO_LARGE, BAD_TYPE, CORRUPT = "attachment_too_large", "attachment_type", "attachment_corrupt"
THUMBNAIL_PX = 320
MAX_PIXELS = 40_000_000  # a decompression bomb is refused, not decoded
_GPS_IFD = 0x8825

# (magic bytes at offset 0, content type). WebP is RIFF....WEBP (checked below).
_MAGIC = [
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
]
IMAGE_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
ALLOWED = (*IMAGE_FORMATS, "application/pdf")


class AttachmentRefused(Exception):
    """`reason` is one of TOO_LARGE, BAD_TYPE, CORRUPT."""

    def __init__(self, reason: str, filename: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.filename = filename


@dataclass(frozen=True)
class Prepared:
    """An attachment ready to store: clean bytes, their type, a thumbnail, where it was taken."""

    filename: str
    content_type: str
    data: bytes
    sha256: str
    thumbnail: bytes | None = None
    gps: tuple[float, float] | None = None
    width: int | None = None
    height: int | None = None


def sniff(data: bytes) -> str | None:
    """The content type the bytes say they are, or None for anything not allowed."""
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _gps(image: Image.Image) -> tuple[float, float] | None:
    try:
        gps = image.getexif().get_ifd(_GPS_IFD)
    except Exception:  # malformed EXIF must not refuse a good photo
        return None
    try:
        def degrees(value, ref) -> float:
            d, m, s = (float(x) for x in value)
            sign = -1 if ref in ("S", "W") else 1
            return sign * (d + m / 60 + s / 3600)

        lat = degrees(gps[2], gps.get(1, "N"))
        lon = degrees(gps[4], gps.get(3, "E"))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return round(lat, 6), round(lon, 6)


def safe_filename(name: str | None, content_type: str) -> str:
    """A display name without paths or odd characters, with the extension of the real type."""
    stem = (name or "ek").replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    stem = "".join(ch for ch in stem if ch.isalnum() or ch in "-_ ")[:80].strip() or "ek"
    extension = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp",
                 "application/pdf": "pdf"}[content_type]
    return f"{stem}.{extension}"


def prepare(data: bytes, filename: str | None, max_bytes: int) -> Prepared:
    """Check and clean one upload; raises `AttachmentRefused` naming what was wrong."""
    if len(data) > max_bytes:
        raise AttachmentRefused(TOO_LARGE, filename)
    content_type = sniff(data)
    if content_type is None:
        raise AttachmentRefused(BAD_TYPE, filename)
    name = safe_filename(filename, content_type)
    if content_type not in IMAGE_FORMATS:
        return Prepared(name, content_type, data, hashlib.sha256(data).hexdigest())
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.width * probe.height > MAX_PIXELS:
                raise AttachmentRefused(TOO_LARGE, filename)
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            gps = _gps(image)
            image = ImageOps.exif_transpose(image)  # keep the orientation the EXIF described
            clean = _encode(image, IMAGE_FORMATS[content_type])
            thumbnail = image.copy()
            thumbnail.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            thumb = _encode(thumbnail.convert("RGB"), "JPEG")
            width, height = image.size
    except AttachmentRefused:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        raise AttachmentRefused(CORRUPT, filename) from exc
    return Prepared(name, content_type, clean, hashlib.sha256(clean).hexdigest(), thumb, gps,
                    width, height)


def _encode(image: Image.Image, fmt: str) -> bytes:
    """Re-encode with no metadata at all (no exif=, no pnginfo=, no icc comments)."""
    out = io.BytesIO()
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=88, optimize=True)
    else:
        image.save(out, fmt)
    return out.getvalue()
