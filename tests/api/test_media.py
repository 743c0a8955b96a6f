"""Photos after the upload, local storage: the worker's variants, the photo JSON a frontend builds
srcset from, deletion that removes every file, and the sweep of orphans. (S3: test_media_s3.py.)"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable
from io import BytesIO
from typing import Any

import psycopg
from PIL import Image
from starlette.testclient import TestClient

from api import worker
from api.settings import Settings
from tests.fix_api import assert_problem, listing
from tests.fix_data import image, word
from tests.fix_media import run_media_jobs
from tests.fix_users import User


def phone_photo(size: tuple[int, int] = (1200, 900)) -> bytes:
    """A JPEG as a phone writes it: pixels with detail, and EXIF with the GPS position of the host's home."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 22.0, 1.5), 3: "E", 4: (4.0, 53.0, 2.0)})
    picture = Image.linear_gradient("L").resize(size).convert("RGB")
    out = BytesIO()
    picture.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def files_of(settings: Settings, url: str) -> set[str]:
    """The files under MEDIA_ROOT of the photo whose original is at `url` (original and variants)."""
    stem = url.removeprefix(settings.media_url).rsplit(".", 1)[0]
    folder = settings.media_root / stem.split("/")[0]
    return {f.name for f in folder.glob(stem.split("/")[1] + "*")}


def setup(client: TestClient, make_user: Callable[..., User]) -> tuple[User, dict[str, Any]]:
    admin, host = make_user("admin"), make_user("host")
    cat = client.post("/api/categories/", json={"name": "Media " + word()}, headers=admin.auth).json()
    return host, listing(client, host, cat)


def test_the_worker_makes_webp_variants_without_metadata_and_the_listing_shows_them(
    client: TestClient, make_user: Callable[..., User], settings: Settings
) -> None:
    host, p = setup(client, make_user)
    upload = phone_photo()
    r = client.post(f"/api/products/{p['id']}/photos/", files={"file": ("home.jpg", upload)}, headers=host.auth)
    assert r.status_code == 201, r.text
    photo = r.json()
    # Until the worker has run: the original, its size, its colour; no variants yet.
    assert (photo["width"], photo["height"], photo["variants"]) == (1200, 900, [])
    assert re.fullmatch(r"#[0-9a-f]{6}", photo["placeholder"]) and photo["size_bytes"] > 0
    assert client.get(f"/api/products/{p['id']}/").json()["photos"][0]["variants"] == []

    run_media_jobs(settings)

    detail = client.get(f"/api/products/{p['id']}/").json()["photos"][0]
    assert [(v["width"], v["height"]) for v in detail["variants"]] == [(320, 240), (960, 720)]  # never enlarged
    assert {k: detail[k] for k in ("url", "width", "height", "size_bytes", "placeholder")} == {
        k: photo[k] for k in ("url", "width", "height", "size_bytes", "placeholder")
    }
    for variant in detail["variants"]:
        served = client.get(variant["url"])
        assert served.status_code == 200 and served.headers["content-type"] == "image/webp"
        decoded = Image.open(BytesIO(served.content))
        assert (decoded.format, decoded.size) == ("WEBP", (variant["width"], variant["height"]))
        assert "exif" not in decoded.info and "xmp" not in decoded.info
        assert b"Exif" not in served.content and b"PhoneMaker" not in served.content
    # The search result carries the same photo object, so a list page can use the 320 px copy.
    found = client.get("/api/products/", params={"search": p["name"].split()[-1]}).json()["results"][0]
    assert found["photo"] == {k: v for k, v in detail.items() if k not in ("id", "position")}
    # A thumbnail is a small fraction of the original a phone would otherwise download.
    assert len(client.get(detail["variants"][0]["url"]).content) * 5 < detail["size_bytes"]


def test_a_small_photo_has_no_variants_and_the_job_runs_once(
    client: TestClient, make_user: Callable[..., User], settings: Settings, owner: psycopg.Connection[Any]
) -> None:
    host, p = setup(client, make_user)
    r = client.post(
        f"/api/products/{p['id']}/photos/", files={"file": ("s.png", image("PNG", (200, 150)))}, headers=host.auth
    )
    assert r.status_code == 201, r.text
    run_media_jobs(settings)
    path = r.json()["url"].removeprefix("/media/")
    assert files_of(settings, r.json()["url"]) == {path.split("/")[1]}
    with worker.opened(settings):
        assert worker.make_variants(path) == "listing photo: 0 variants"  # again: harmless
        assert worker.make_variants("ab/" + "0" * 32 + ".png") == "nothing to do: no photo uses this path"


def test_deleting_a_photo_or_its_listing_removes_every_file(
    client: TestClient, make_user: Callable[..., User], settings: Settings
) -> None:
    host, p = setup(client, make_user)
    url = f"/api/products/{p['id']}/photos/"
    photos = [client.post(url, files={"file": ("h.jpg", phone_photo())}, headers=host.auth).json() for _ in range(2)]
    run_media_jobs(settings)
    assert all(len(files_of(settings, ph["url"])) == 3 for ph in photos)  # the original and two variants

    assert client.delete(f"{url}{photos[0]['id']}/", headers=host.auth).status_code == 204
    assert len(files_of(settings, photos[0]["url"])) == 3  # the files go after the commit, by the job
    run_media_jobs(settings)
    assert files_of(settings, photos[0]["url"]) == set()
    assert len(files_of(settings, photos[1]["url"])) == 3

    assert client.delete(f"/api/products/{p['id']}/", headers=host.auth).status_code == 204
    run_media_jobs(settings)
    assert files_of(settings, photos[1]["url"]) == set()


def test_a_replaced_or_removed_profile_photo_and_a_closed_account_leave_no_file(
    client: TestClient, make_user: Callable[..., User], settings: Settings
) -> None:
    user = make_user("guest")
    first = client.put("/api/users/me/photo/", files={"file": ("me.jpg", phone_photo((800, 800)))}, headers=user.auth)
    assert first.status_code == 200, first.text
    assert first.json()["photo"]["url"] == first.json()["photo_url"]
    run_media_jobs(settings)
    me = client.get("/api/users/me/", headers=user.auth).json()
    assert [v["width"] for v in me["photo"]["variants"]] == [320]
    assert len(files_of(settings, me["photo_url"])) == 2

    second = client.put("/api/users/me/photo/", files={"file": ("me2.png", image("PNG", (64, 64)))}, headers=user.auth)
    assert second.status_code == 200, second.text
    assert second.json()["photo"]["variants"] == []  # the new photo's variants are not the old one's
    run_media_jobs(settings)
    assert files_of(settings, me["photo_url"]) == set()  # the replaced photo's files are gone

    assert client.delete("/api/users/me/photo/", headers=user.auth).status_code == 204
    assert client.get("/api/users/me/", headers=user.auth).json()["photo"] is None
    run_media_jobs(settings)
    assert files_of(settings, second.json()["photo_url"]) == set()
    assert_problem(client.delete("/api/users/me/photo/"), 401)

    closing = make_user("guest")
    shown = client.put("/api/users/me/photo/", files={"file": ("c.png", image("PNG"))}, headers=closing.auth).json()
    assert client.delete("/api/users/me/", headers=closing.auth).status_code == 204
    run_media_jobs(settings)
    assert files_of(settings, shown["photo_url"]) == set()  # a closed account keeps no photo


def test_public_profiles_show_the_small_copy(
    client: TestClient, make_user: Callable[..., User], settings: Settings
) -> None:
    host, p = setup(client, make_user)
    client.put("/api/users/me/photo/", files={"file": ("me.jpg", phone_photo((900, 900)))}, headers=host.auth)
    before = client.get(f"/api/products/{p['id']}/").json()["host"]["photo_url"]
    run_media_jobs(settings)
    after = client.get(f"/api/products/{p['id']}/").json()["host"]["photo_url"]
    assert before.endswith(".jpg") and after == before.rsplit(".", 1)[0] + "-w320.webp"


def test_the_sweep_removes_old_orphans_only(
    client: TestClient, make_user: Callable[..., User], settings: Settings
) -> None:
    host, p = setup(client, make_user)
    shown = client.post(
        f"/api/products/{p['id']}/photos/", files={"file": ("h.jpg", phone_photo())}, headers=host.auth
    ).json()
    run_media_jobs(settings)
    day_old = time.time() - 2 * 86400

    def orphan(age: float | None) -> set[str]:
        name = uuid.uuid4().hex
        folder = settings.media_root / name[:2]
        folder.mkdir(exist_ok=True)
        made = {folder / f"{name}.jpg", folder / f"{name}-w320.webp"}
        for f in made:
            f.write_bytes(image("JPEG"))
            if age is not None:
                os.utime(f, (age, age))
        return {f.name for f in made}

    old, fresh = orphan(day_old), orphan(None)
    for f in settings.media_root.glob(shown["url"].removeprefix("/media/").rsplit(".", 1)[0] + "*"):
        os.utime(f, (day_old, day_old))  # old, but a listing shows it

    with worker.opened(settings):
        outcome = worker.sweep_media(int(time.time()))

    present = {f.name for f in settings.media_root.rglob("*") if f.is_file()}
    assert not old & present, outcome
    assert fresh <= present  # an upload of the last day may still be on its way to its row
    assert len(files_of(settings, shown["url"])) == 3
    assert client.get(shown["url"]).status_code == 200
