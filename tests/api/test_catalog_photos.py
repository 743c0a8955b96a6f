"""Listing photos over HTTP: upload (multipart, checked by content), order, delete, permissions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from api.settings import Settings
from tests.fix_api import assert_problem, listing
from tests.fix_data import word
from tests.fix_users import User

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


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
    assert stored.read_bytes() == PNG

    detail = client.get(f"/api/products/{p['id']}/").json()
    assert [ph["id"] for ph in detail["photos"]] == [first.json()["id"], second.json()["id"]]
    item = client.get("/api/products/", params={"search": p["name"].split()[-1]}).json()["results"][0]
    assert item["photo"] == first.json()["url"]
    assert client.get(first.json()["url"]).content == PNG

    r = client.delete(f"/api/products/{p['id']}/photos/{first.json()['id']}/", headers=host.auth)
    assert r.status_code == 204
    assert not stored.exists()  # the file goes with the row
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
            conn.execute("select api.product_photo_add(%s, %s, 'image/png', 10)", (mine["id"], forged))
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
        assert other.get(photo.json()["url"]).content == PNG
