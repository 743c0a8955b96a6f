"""Photos in an S3 bucket (MEDIA_STORAGE=s3) against a real S3 endpoint on loopback (moto's server):
upload, variants, serving, deletion, the sweep, the migration from a local folder, and a bucket
that does not answer. Two instances sharing the bucket: tests/api/test_scale_out.py."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from io import BytesIO
from typing import Any

import psycopg
from PIL import Image
from starlette.testclient import TestClient

from api import worker
from api.settings import ROOT, Settings
from tests.api.test_media import phone_photo
from tests.fix_api import assert_problem, listing
from tests.fix_contract import contract_app
from tests.fix_data import image, word
from tests.fix_media import S3Peer, run_media_jobs
from tests.fix_users import User
from tests.loopback import free_port


def setup(client: TestClient, make_user: Callable[..., User]) -> tuple[User, dict[str, Any]]:
    admin, host = make_user("admin"), make_user("host")
    cat = client.post("/api/categories/", json={"name": "Bucket " + word()}, headers=admin.auth).json()
    return host, listing(client, host, cat)


def key(url: str) -> str:
    return url.removeprefix("/media/")


def test_photos_live_in_the_bucket_from_upload_to_deletion(
    s3_settings: Settings, s3: S3Peer, make_user: Callable[..., User]
) -> None:
    bucket = s3_settings.s3_bucket
    with TestClient(contract_app(s3_settings), base_url="http://testserver") as client:
        host, p = setup(client, make_user)
        r = client.post(
            f"/api/products/{p['id']}/photos/", files={"file": ("home.jpg", phone_photo())}, headers=host.auth
        )
        assert r.status_code == 201, r.text
        original = key(r.json()["url"])
        assert s3.keys(bucket) == {original}
        assert not (s3_settings.media_root / original).exists()  # nothing on this instance's disk
        stored = s3.client().get_object(Bucket=bucket, Key=original)
        assert stored["ContentType"] == "image/jpeg" and "immutable" in stored["CacheControl"]
        assert b"PhoneMaker" not in stored["Body"].read()  # no EXIF in the bucket either

        served = client.get(r.json()["url"])  # MEDIA_URL is a path: the API reads the bucket for the client
        assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
        assert "immutable" in served.headers["cache-control"]
        assert_problem(client.get(f"/media/{original[:3]}{uuid.uuid4().hex}.jpg"), 404)
        assert_problem(client.get("/media/../../etc/passwd"), 404)

        run_media_jobs(s3_settings)
        photo = client.get(f"/api/products/{p['id']}/").json()["photos"][0]
        assert [v["width"] for v in photo["variants"]] == [320, 960]
        assert s3.keys(bucket) == {original} | {key(v["url"]) for v in photo["variants"]}
        thumb = Image.open(BytesIO(client.get(photo["variants"][0]["url"]).content))
        assert (thumb.format, thumb.size) == ("WEBP", (320, 240)) and "exif" not in thumb.info

        assert client.delete(f"/api/products/{p['id']}/photos/{photo['id']}/", headers=host.auth).status_code == 204
        run_media_jobs(s3_settings)
        assert s3.keys(bucket) == set()


def test_a_bucket_that_does_not_answer_is_a_503_and_nothing_is_written(
    settings: Settings, make_user: Callable[..., User], owner: psycopg.Connection[Any]
) -> None:
    down = replace(
        settings,
        media_storage="s3",
        s3_bucket="nowhere",
        s3_endpoint_url=f"http://127.0.0.1:{free_port()}",  # nobody listens
        s3_region="us-east-1",
        s3_timeout=1.0,
    )
    with TestClient(contract_app(down), base_url="http://testserver") as client:
        host, p = setup(client, make_user)
        r = client.post(f"/api/products/{p['id']}/photos/", files={"file": ("a.png", image("PNG"))}, headers=host.auth)
        body = assert_problem(r, 503, "file")
        assert r.headers["retry-after"] == "5" and "stored" in body["detail"]
        assert owner.execute("select count(*) from app.product_photos where product_id = %s", [p["id"]]).fetchone() == (
            0,
        )
        assert_problem(client.get(f"/media/ab/{uuid.uuid4().hex}.jpg"), 503)


def test_the_sweep_removes_orphans_from_the_bucket(
    s3_settings: Settings, s3: S3Peer, make_user: Callable[..., User]
) -> None:
    bucket = s3_settings.s3_bucket
    with TestClient(contract_app(s3_settings), base_url="http://testserver") as client:
        host, p = setup(client, make_user)
        shown = client.post(
            f"/api/products/{p['id']}/photos/", files={"file": ("a.png", image("PNG"))}, headers=host.auth
        ).json()
    name = uuid.uuid4().hex
    orphans = {f"{name[:2]}/{name}.jpg", f"{name[:2]}/{name}-w320.webp"}
    for k in orphans:
        s3.client().put_object(Bucket=bucket, Key=k, Body=image("JPEG"))
    with worker.opened(s3_settings):
        assert worker.sweep_media(int(time.time())) == "removed 0 orphaned files"  # none is a day old yet
        assert worker.sweep_media(int(time.time()) + 2 * 86400) == "removed 2 orphaned files"  # two days later
    assert s3.keys(bucket) == {key(shown["url"])}


def test_media_migrate_copies_a_local_folder_into_the_bucket_twice_safely(
    s3_settings: Settings, s3: S3Peer, tmp_path: Any, owner: psycopg.Connection[Any]
) -> None:
    local = tmp_path / "media"
    names = [uuid.uuid4().hex for _ in range(3)]
    for n in names:
        (local / n[:2]).mkdir(parents=True, exist_ok=True)
        (local / n[:2] / f"{n}.png").write_bytes(image("PNG"))
    (local / "README").write_text("not a photo: left alone")
    env = {
        "DATABASE_URL": s3_settings.database_url,
        "MEDIA_ROOT": str(local),
        "MEDIA_STORAGE": "s3",
        "S3_BUCKET": s3_settings.s3_bucket,
        "S3_ENDPOINT_URL": s3_settings.s3_endpoint_url,
        "S3_REGION": s3_settings.s3_region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PATH": "/usr/bin:/bin",
    }

    def migrate() -> str:
        done = subprocess.run(
            [sys.executable, "-m", "api.storage", "migrate"], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = migrate()
    assert "copied 3" in first, first
    assert s3.keys(s3_settings.s3_bucket) == {f"{n[:2]}/{n}.png" for n in names}
    assert "copied 0, already there 3" in migrate()  # the second run finds everything in place
