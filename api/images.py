"""Uploaded photos, decoded whole and written anew (Pillow), so nothing of the upload but its
pixels is kept.

An upload is refused (400 naming `file`) unless it decodes completely as a JPEG, PNG or WebP
image of at most MAX_IMAGE_PIXELS pixels (a decompression bomb is refused from its header,
before any pixel is decoded) and of one frame (an animated image is refused: a listing shows
stills). The EXIF orientation is applied to the pixels, then the image is encoded again in its
own format: the EXIF block (GPS position, camera serial, dates), XMP, IPTC and comments are
not written; only an ICC colour profile is kept, where the pixels' colour needs it. A CMYK
JPEG becomes RGB (browsers show CMYK badly), without its CMYK profile. The photo's average
colour is its placeholder (what a frontend paints before the image arrives).

`variants` makes the smaller copies a frontend puts in srcset (the worker's media.make_variants):
WebP at each of WIDTHS narrower than the original (never enlarged), keeping the proportions
and the colour profile. WebP only: every browser in use shows it, and the original (JPEG, PNG
or WebP) stays the fallback.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError

from api.errors import Problem

WIDTHS = (320, 960, 1920)  # a phone's list thumbnail, a tablet or laptop, a full-screen gallery
VARIANT_QUALITY = 80  # WebP's own default is 80: a 960 px photo in ~60-120 kB
# The accepted types: Pillow's format name -> (content type, file extension). The one list.
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
CONTENT_TYPES = {ext: ctype for ctype, ext in FORMATS.values()}  # by extension, as stored files are named
NOT_AN_IMAGE = "Not a whole JPEG, PNG or WebP image."


@dataclass(frozen=True)
class Photo:
    data: bytes
    content_type: str
    ext: str
    width: int
    height: int
    placeholder: str


@dataclass(frozen=True)
class Variant:
    data: bytes
    width: int
    height: int


def looks_like_one(head: bytes) -> bool:
    """Whether a file's first bytes are those of an accepted type (a cheap 415 before decoding;
    never by name or header). Decoding (`clean`) then decides whether it is a whole image."""
    return head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def refuse(message: str) -> Problem:
    return Problem(400, message, {"file": [message]})


def clean(data: bytes, max_pixels: int) -> Photo:
    """The upload decoded, checked and encoded again without its metadata; 400 naming `file` if it
    is not a whole, still JPEG, PNG or WebP image of at most `max_pixels` pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # refused below, from the header
            image = Image.open(BytesIO(data), formats=list(FORMATS))
        with image:
            if image.width * image.height > max_pixels:
                raise refuse(f"The image has more than {max_pixels:,} pixels.")
            if getattr(image, "n_frames", 1) > 1:
                raise refuse("Animated images are not accepted: upload a still image.")
            image.load()  # every pixel: a truncated or corrupt file fails here
            kind = image.format or ""
            icc = image.info.get("icc_profile")
            still = ImageOps.exif_transpose(image)
            if kind == "JPEG" and still.mode not in ("RGB", "L"):
                still, icc = still.convert("RGB"), None  # CMYK (and YCCK): its profile described the old pixels
            placeholder = average_colour(still)
            out = BytesIO()
            options = {"icc_profile": icc} if icc else {}
            if kind == "JPEG":
                still.save(out, "JPEG", quality=90, **options)
            elif kind == "PNG":
                still.save(out, "PNG", **options)
            else:
                still.save(out, "WEBP", quality=90, **options)
    except Problem:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise refuse(f"The image has more than {max_pixels:,} pixels.") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise refuse(NOT_AN_IMAGE) from exc
    content_type, ext = FORMATS[kind]
    return Photo(out.getvalue(), content_type, ext, still.width, still.height, placeholder)


def average_colour(image: Image.Image) -> str:
    """The image's average colour as #rrggbb (from a small copy: a 12 MP photo costs a few ms)."""
    small = image.copy()
    small.draft("RGB", (64, 64))  # JPEG: decode at 1/8 scale where it can
    small.thumbnail((64, 64), Image.Resampling.BOX)
    r, g, b = small.convert("RGB").resize((1, 1), Image.Resampling.BOX).getpixel((0, 0))  # type: ignore[misc]
    return f"#{r:02x}{g:02x}{b:02x}"


def variants(data: bytes, widths: tuple[int, ...] = WIDTHS) -> tuple[int, int, list[Variant]]:
    """The stored original's (width, height) and its WebP copies at each of `widths` narrower than it.

    The original was written by `clean`, so it decodes; each copy is resized from the next
    larger one (fast, and as sharp: each step is at most 3x), widest first."""
    with Image.open(BytesIO(data)) as image:
        width, height = image.size
        wanted = sorted((w for w in widths if w < width), reverse=True)
        if wanted and image.format == "JPEG":
            # Decode at 1/2, 1/4 or 1/8 scale where the widest copy still fits: a 12 MP JPEG in a third of the time.
            image.draft("RGB", (wanted[0], max(1, round(height * wanted[0] / width))))
        image.load()
        icc = image.info.get("icc_profile")
        current: Image.Image = (
            image if image.mode in ("RGB", "RGBA") else image.convert("RGBA" if "A" in image.mode else "RGB")
        )
        made: list[Variant] = []
        for w in wanted:
            h = max(1, round(height * w / width))
            current = current.resize((w, h), Image.Resampling.LANCZOS, reducing_gap=2.0)
            out = BytesIO()
            current.save(out, "WEBP", quality=VARIANT_QUALITY, **({"icc_profile": icc} if icc else {}))
            made.append(Variant(out.getvalue(), w, h))
    return width, height, sorted(made, key=lambda v: v.width)
