"""Uploaded photos, decoded whole and written anew (Pillow), so nothing of the upload but its
pixels is kept.

An upload is refused (400 naming `file`) unless it decodes completely as a JPEG, PNG or WebP
image of at most MAX_IMAGE_PIXELS pixels (a decompression bomb is refused from its header,
before any pixel is decoded) and of one frame (an animated image is refused: a listing shows
stills). The EXIF orientation is applied to the pixels, then the image is encoded again in its
own format: the EXIF block (GPS position, camera serial, dates), XMP, IPTC and comments are
not written; only an ICC colour profile is kept, where the pixels' colour needs it. A CMYK
JPEG becomes RGB (browsers show CMYK badly), without its CMYK profile.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError

from api.errors import Problem

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
NOT_AN_IMAGE = "Not a whole JPEG, PNG or WebP image."


@dataclass(frozen=True)
class Photo:
    data: bytes
    content_type: str
    ext: str
    width: int
    height: int


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
    return Photo(out.getvalue(), content_type, ext, still.width, still.height)
