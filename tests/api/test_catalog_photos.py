"""Listing photos over HTTP: upload (multipart, checked by content), order, delete, permissions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from io import BytesIO
from typing import Any

import psycopg
import pytest
from PIL import Image
from starlette.testclient import TestClient

from api.settings import Settings
from tests.fix_api import assert_problem, listing
from tests.fix_data import image, word
from tests.fix_media import run_media_jobs
from tests.fix_users import User

PNG = image("PNG")
JPEG = image("JPEG")


def setup(client: TestClient, make_user: Callable[..., User]) -> tuple[User, dict[str, Any]]:
    admin, host = make_user("admin"), make_user("host")
    cat = client.post("/api/categories/", json={"name": "Photos " + word()}, headers=admin.auth).json()
    return host, listing(client, host, cat)


def test_host_adds_and_deletes_photos(client: TestClient, make_user: Callable[..., User], settings: Settings) -> None:
    host, p = setup(client, make_user)
    url = f"/api/products/{p['id']}/photos/"
    first = client.post(url, files={"file": ("a.png", PNG, "image/png")}, headers=host.auth)
    assert first.status_code == 201, first.text
    second = client.post(url, files={"file": ("b.bin", JPEG, "application/octet-stream")}, headers=host.auth)
    assert second.status_code == 201, second.text
    assert (first.json()["position"], second.json()["position"]) == (0, 1)
    assert first.json()["url"].startswith("/media/") and first.json()["url"].endswith(".png")
    assert second.json()["url"].endswith(".jpg")
    stored = settings.media_root / first.json()["url"].removeprefix("/media/")
    assert Image.open(stored).size == (4, 3)  # the upload's pixels, written anew (api/images.py)

    detail = client.get(f"/api/products/{p['id']}/").json()
    assert [ph["id"] for ph in detail["photos"]] == [first.json()["id"], second.json()["id"]]
    item = client.get("/api/products/", params={"search": p["name"].split()[-1]}).json()["results"][0]
    assert item["photo"]["url"] == first.json()["url"]
    assert client.get(first.json()["url"]).content == stored.read_bytes()

    r = client.delete(f"/api/products/{p['id']}/photos/{first.json()['id']}/", headers=host.auth)
    assert r.status_code == 204
    run_media_jobs(settings)
    assert not stored.exists()  # the file goes with the row, by the job its deletion deferred
    assert [ph["id"] for ph in client.get(f"/api/products/{p['id']}/").json()["photos"]] == [second.json()["id"]]
    assert_problem(client.delete(f"/api/products/{p['id']}/photos/{first.json()['id']}/", headers=host.auth), 404)


def test_photo_permissions(client: TestClient, make_user: Callable[..., User]) -> None:
    host, p = setup(client, make_user)
    other, guest, admin = make_user("host"), make_user("guest"), make_user("admin")
    url = f"/api/products/{p['id']}/photos/"
    files = {"file": ("a.png", PNG, "image/png")}
    assert_problem(client.post(url, files=files), 401)
    assert_problem(client.post(url, files=files, headers=guest.auth), 403)
    assert_problem(client.post(url, files=files, headers=other.auth), 403)
    assert_problem(client.post(f"/api/products/{uuid.uuid4()}/photos/", files=files, headers=host.auth), 404)
    assert_problem(client.post("/api/products/nope/photos/", files=files, headers=host.auth), 404)
    by_admin = client.post(url, files=files, headers=admin.auth)
    assert by_admin.status_code == 201, by_admin.text
    photo = f"{url}{by_admin.json()['id']}/"
    assert_problem(client.delete(photo, headers=other.auth), 403)
    assert_problem(client.delete(photo), 401)
    assert_problem(client.delete(f"{url}{uuid.uuid4()}/", headers=host.auth), 404)
    assert_problem(client.delete(f"{url}not-a-uuid/", headers=host.auth), 404)
    assert client.delete(photo, headers=host.auth).status_code == 204


def test_photo_must_be_an_image(client: TestClient, make_user: Callable[..., User]) -> None:
    host, p = setup(client, make_user)
    url = f"/api/products/{p['id']}/photos/"
    assert_problem(
        client.post(url, files={"file": ("x.png", b"<?php echo 1; ?>", "image/png")}, headers=host.auth), 415
    )
    assert_problem(client.post(url, files={"other": ("x.png", PNG, "image/png")}, headers=host.auth), 400, "file")
    assert client.get(f"/api/products/{p['id']}/").json()["photos"] == []


def test_photo_paths_must_be_fresh_uploads(client: TestClient, make_user: Callable[..., User], as_role: Any) -> None:
    """Called directly, the functions still refuse a path the API did not just generate."""
    victim, theirs = setup(client, make_user)
    host, mine = setup(client, make_user)
    shown = client.post(f"/api/products/{theirs['id']}/photos/", files={"file": ("a.png", PNG)}, headers=victim.auth)
    path = shown.json()["url"].removeprefix("/media/")
    for forged in (path, "../../etc/passwd", "ab/notgenerated.png"):
        conn = as_role("host", host.id)
        with pytest.raises(psycopg.Error) as info:
            conn.execute("select api.product_photo_add(%s, %s, 'image/png', 10, 4, 3, '#c0ffee')", (mine["id"], forged))
        assert info.value.sqlstate == "PT400"


def test_media_url_is_configured_in_one_place(make_user: Callable[..., User], settings: Settings) -> None:
    """MEDIA_URL decides both where files are served and the URLs SQL builds (app.media_url)."""
    from dataclasses import replace

    from tests.fix_contract import contract_app

    elsewhere = replace(settings, media_url="/files/")
    with TestClient(contract_app(elsewhere), base_url="http://testserver") as other:
        host, p = setup(other, make_user)

        photo = other.post(
            f"/api/products/{p['id']}/photos/", files={"file": ("a.png", PNG, "image/png")}, headers=host.auth
        )

        assert photo.status_code == 201, photo.text
        assert photo.json()["url"].startswith("/files/")
        assert other.get(f"/api/products/{p['id']}/").json()["photos"][0]["url"] == photo.json()["url"]
        assert Image.open(BytesIO(other.get(photo.json()["url"]).content)).size == (4, 3)


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (no pixel data follows): a decompression bomb's start."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_a_photo_keeps_its_pixels_and_loses_its_metadata(
    client: TestClient, make_user: Callable[..., User], settings: Settings
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; shown rotated 90 degrees clockwise
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0xA431] = "SERIAL-0042"  # BodySerialNumber (in the Exif IFD for readers that look; here in IFD0)
    gps = exif.get_ifd(0x8825)  # GPSInfo: the host's home
    gps.update({1: "N", 2: (52.0, 22.0, 1.5), 3: "E", 4: (4.0, 53.0, 2.0)})
    phone = image("JPEG", size=(40, 30), exif=exif.tobytes())
    assert Image.open(BytesIO(phone)).getexif().get_ifd(0x8825)  # the upload does carry the position

    host, p = setup(client, make_user)
    r = client.post(f"/api/products/{p['id']}/photos/", files={"file": ("home.jpg", phone)}, headers=host.auth)
    assert r.status_code == 201, r.text
    served = client.get(r.json()["url"]).content
    stored = (settings.media_root / r.json()["url"].removeprefix("/media/")).read_bytes()
    assert served == stored
    kept = Image.open(BytesIO(stored))
    assert kept.format == "JPEG" and kept.size == (30, 40)  # the orientation applied to the pixels
    assert dict(kept.getexif()) == {} and b"Exif" not in stored  # no EXIF at all: no GPS, no camera
    assert b"PhoneMaker" not in stored and b"SERIAL-0042" not in stored


@pytest.mark.parametrize(
    ("upload", "detail"),
    [
        (image("JPEG", size=(64, 64))[:300], "Not a whole JPEG, PNG or WebP image."),  # truncated
        (png_header_claiming(50_000, 50_000), "pixels"),  # a decompression bomb: refused from its header
        (png_header_claiming(20, 20), "Not a whole JPEG, PNG or WebP image."),  # a header and no pixels
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "Not a whole JPEG, PNG or WebP image."),  # magic bytes, then anything
        (image("PNG", save_all=True, append_images=[Image.new("RGB", (4, 3), "red")]), "Animated"),
        (b"", "empty"),
    ],
    ids=["truncated", "bomb", "no-pixels", "magic-only", "animated", "empty"],
)
def test_what_is_not_a_whole_still_image_is_refused_and_nothing_stored(
    client: TestClient, make_user: Callable[..., User], settings: Settings, upload: bytes, detail: str
) -> None:
    host, p = setup(client, make_user)
    before = {f for f in settings.media_root.rglob("*") if f.is_file()}
    body = assert_problem(
        client.post(f"/api/products/{p['id']}/photos/", files={"file": ("x.png", upload)}, headers=host.auth), 400
    )
    assert "file" in body["errors"] and detail in body["detail"] + " ".join(body["errors"]["file"])
    assert {f for f in settings.media_root.rglob("*") if f.is_file()} == before
    assert client.get(f"/api/products/{p['id']}/").json()["photos"] == []


def test_a_cmyk_jpeg_is_stored_as_rgb(client: TestClient, make_user: Callable[..., User], settings: Settings) -> None:
    host, p = setup(client, make_user)
    cmyk = image("JPEG", mode="CMYK")
    r = client.post(f"/api/products/{p['id']}/photos/", files={"file": ("print.jpg", cmyk)}, headers=host.auth)
    assert r.status_code == 201, r.text
    kept = Image.open(settings.media_root / r.json()["url"].removeprefix("/media/"))
    assert (kept.format, kept.mode, kept.size) == ("JPEG", "RGB", (4, 3))


@pytest.mark.parametrize("kind", ["GIF", "BMP", "TIFF"])
def test_an_image_type_we_do_not_accept_is_a_415_and_nothing_stored(
    client: TestClient, make_user: Callable[..., User], settings: Settings, kind: str
) -> None:
    host, p = setup(client, make_user)
    before = {f for f in settings.media_root.rglob("*") if f.is_file()}
    upload = image(kind)
    body = assert_problem(
        client.post(
            f"/api/products/{p['id']}/photos/", files={"file": ("x.png", upload, "image/png")}, headers=host.auth
        ),
        415,
        "file",
    )
    assert "JPEG, PNG and WebP" in body["detail"]
    assert {f for f in settings.media_root.rglob("*") if f.is_file()} == before
