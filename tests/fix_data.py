"""Data plugin: rows made straight in the database as the owner (as a DBA would), dates, words.

Plain helpers, importable from here (never from a test module): `new_user`, `new_listing`,
`today`, `day`, `word`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg

UTC = dt.UTC


def new_user(owner: psycopg.Connection[Any], role: str = "guest") -> str:
    (uid,) = owner.execute(
        "insert into app.users (email, first_name, last_name, role) values (%s, 'Test', 'User', %s) returning id",
        (f"{role}-{uuid.uuid4().hex[:12]}@example.com", role),
    ).fetchone()  # type: ignore[misc]
    return str(uid)


def new_listing(
    owner: psycopg.Connection[Any],
    host_id: str,
    price: str = "100.00",
    policy: str = "moderate",
    max_guests: int = 4,
    published: bool = True,
    currency: str = "USD",
) -> str:
    slug = "c-" + uuid.uuid4().hex[:12]
    (cid,) = owner.execute(
        "insert into app.categories (name, slug) values (%s, %s) returning id", (slug, slug)
    ).fetchone()  # type: ignore[misc]
    (pid,) = owner.execute(
        """insert into app.products (host_id, category_id, name, description, location, price_per_night, currency,
                                     max_guests, cancellation_policy, published)
           values (%s, %s, 'A place', 'Nice.', 'Lagos', %s, %s, %s, %s, %s) returning id""",
        (host_id, cid, price, currency, max_guests, policy, published),
    ).fetchone()  # type: ignore[misc]
    return str(pid)


def today() -> dt.date:
    return dt.datetime.now(UTC).date()


def day(offset: int) -> str:
    return (today() + dt.timedelta(days=offset)).isoformat()


def word() -> str:
    """A unique, searchable word (letters only, so full-text search keeps it whole)."""
    return "w" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:12])


def image(kind: str = "PNG", size: tuple[int, int] = (4, 3), mode: str = "RGB", **options: Any) -> bytes:
    """A real, whole image (Pillow), as a client would upload it; `options` go to Image.save (exif=...)."""
    from io import BytesIO

    from PIL import Image

    out = BytesIO()
    Image.new(mode, size, "#c0ffee" if mode == "RGB" else None).save(out, kind, **options)
    return out.getvalue()
