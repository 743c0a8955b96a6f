"""Where photos' files live: one small interface, two backends (MEDIA_STORAGE).

- `local` (the default; `make run` needs no settings): a folder, MEDIA_ROOT, which the API
  serves under MEDIA_URL. One machine's disk: with several instances, use `s3`.
- `s3`: a bucket of any S3-compatible service (AWS S3, Cloudflare R2, MinIO, Backblaze B2)
  through boto3: S3_BUCKET, S3_ENDPOINT_URL (empty for AWS), S3_REGION and the usual AWS
  credential variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, or an instance role). Every
  instance reads and writes the same bucket. With MEDIA_URL a path (`/media/`, the default)
  the API serves the objects itself, so the bucket may stay private; with MEDIA_URL a public
  bucket's or a CDN's address, clients fetch them there.

A key is a photo's path: `<2 hex>/<32 hex>.<ext>` for the original (api/specials.py names it),
`<2 hex>/<32 hex>-w<width>.webp` for a variant (the worker's media.make_variants). So every
file of one photo shares the prefix `<2 hex>/<32 hex>` (`photo_prefix`), which is how they
are deleted together. Objects never change once written: they are served as immutable.

A backend that cannot be reached raises `StorageUnavailable`: the API answers 503 with
Retry-After and writes no row; the worker retries the job.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from api.images import CONTENT_TYPES
from api.settings import Settings

# The original's path, as app.check_media_path accepts it; a variant's adds -w<width> and is WebP.
ORIGINAL = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{32}\.(jpg|png|webp)$")
STORED = re.compile(r"^([0-9a-f]{2}/[0-9a-f]{32})(\.(jpg|png|webp)|-w[0-9]{1,5}\.webp)$")
CACHE_CONTROL = "public, max-age=31536000, immutable"  # a key is never written twice


class StorageUnavailable(Exception):
    """The backend did not answer (down, unreachable, refusing): try again later."""


class NotFound(Exception):
    """No object under that key."""


def photo_prefix(path: str) -> str:
    """What every file of the photo stored under `path` starts with: its path without the extension."""
    match = STORED.match(path)
    if match is None:
        raise ValueError(f"not a media path: {path!r}")
    return match.group(1)


def variant_path(path: str, width: int) -> str:
    return f"{photo_prefix(path)}-w{width}.webp"


def content_type(path: str) -> str:
    return CONTENT_TYPES[path.rsplit(".", 1)[-1]]


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime


class Storage(Protocol):
    name: str

    def put(self, key: str, data: bytes) -> None:
        """Write the object (its content type from the key's extension)."""

    def get(self, key: str) -> bytes:
        """The object's bytes; NotFound when there is none."""

    def delete_photo(self, path: str) -> int:
        """Delete every file of the photo stored under `path` (original and variants); how many there were."""

    def objects(self) -> Iterator[StoredObject]:
        """Every object, with its size and when it was written (the orphan sweep, media-migrate)."""


class LocalStorage:
    """A folder on this machine's disk (MEDIA_ROOT)."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def file(self, key: str) -> Path:
        if not STORED.match(key):
            raise ValueError(f"not a media path: {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        target = self.file(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # Written beside, then renamed: a reader never sees half a file. Mode 0644, never executable.
            temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, target)
        except OSError as exc:
            raise StorageUnavailable(f"{self.root}: {exc.strerror or exc}") from exc

    def get(self, key: str) -> bytes:
        try:
            return self.file(key).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(key) from exc
        except OSError as exc:
            raise StorageUnavailable(f"{self.root}: {exc.strerror or exc}") from exc

    def delete_photo(self, path: str) -> int:
        folder, stem = photo_prefix(path).split("/")
        removed = 0
        try:
            for file in (self.root / folder).glob(f"{stem}*"):
                file.unlink(missing_ok=True)
                removed += 1
        except OSError as exc:
            raise StorageUnavailable(f"{self.root}: {exc.strerror or exc}") from exc
        return removed

    def objects(self) -> Iterator[StoredObject]:
        if not self.root.is_dir():
            return
        for file in sorted(self.root.glob("*/*")):
            key = file.relative_to(self.root).as_posix()
            if STORED.match(key):
                stat = file.stat()
                yield StoredObject(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))


class S3Storage:
    """A bucket of an S3-compatible service, through boto3 (thread-safe client: one per process)."""

    name = "s3"

    def __init__(self, bucket: str, endpoint_url: str = "", region: str = "", timeout: float = 10.0) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            config=Config(
                connect_timeout=min(timeout, 3.0),
                read_timeout=timeout,
                retries={"max_attempts": 2, "mode": "standard"},  # the job queue retries further
                # Path-style addressing works with every S3-compatible service (MinIO, moto, R2).
                s3={"addressing_style": "path"} if endpoint_url else {},
            ),
        )

    def call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise NotFound(kwargs.get("Key", "")) from exc
            raise StorageUnavailable(f"s3 {method}: {code or exc}") from exc
        except BotoCoreError as exc:  # unreachable endpoint, timeouts, bad credentials' configuration
            raise StorageUnavailable(f"s3 {method}: {exc}") from exc

    def put(self, key: str, data: bytes) -> None:
        if not STORED.match(key):
            raise ValueError(f"not a media path: {key!r}")
        self.call("put_object", Key=key, Body=data, ContentType=content_type(key), CacheControl=CACHE_CONTROL)

    def get(self, key: str) -> bytes:
        body = self.call("get_object", Key=key)["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def delete_photo(self, path: str) -> int:
        listed = self.call("list_objects_v2", Prefix=photo_prefix(path))
        keys = [{"Key": o["Key"]} for o in listed.get("Contents", [])]
        if keys:
            self.call("delete_objects", Delete={"Objects": keys, "Quiet": True})
        return len(keys)

    def objects(self) -> Iterator[StoredObject]:
        token: dict[str, str] = {}
        while True:
            page = self.call("list_objects_v2", **token)
            for o in page.get("Contents", []):
                if STORED.match(o["Key"]):
                    yield StoredObject(o["Key"], int(o["Size"]), o["LastModified"])
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def exists(self, key: str, size: int) -> bool:
        """Whether an object of this size is under `key` already (media-migrate skips it)."""
        try:
            return int(self.call("head_object", Key=key)["ContentLength"]) == size
        except NotFound:  # head_object's 404 (its error code is "404": no body to name NoSuchKey)
            return False


def from_settings(settings: Settings) -> Storage:
    """The backend MEDIA_STORAGE names."""
    if settings.media_storage == "local":
        return LocalStorage(settings.media_root)
    if settings.media_storage == "s3":
        if not settings.s3_bucket:
            raise ValueError("MEDIA_STORAGE=s3 needs S3_BUCKET")
        return S3Storage(settings.s3_bucket, settings.s3_endpoint_url, settings.s3_region, settings.s3_timeout)
    raise ValueError(f"MEDIA_STORAGE is local or s3, not {settings.media_storage!r}")


def migrate(settings: Settings) -> str:
    """Copy the local media folder (MEDIA_ROOT) into the configured bucket, skipping what is there
    already, then queue the variants of photos stored before they had any. Safe to run again."""
    import psycopg

    target = from_settings(settings)
    if not isinstance(target, S3Storage):
        raise SystemExit("make media-migrate copies MEDIA_ROOT into a bucket: set MEDIA_STORAGE=s3 and S3_BUCKET.")
    copied = present = 0
    source = LocalStorage(settings.media_root)
    for stored in source.objects():
        if target.exists(stored.key, stored.size):
            present += 1
        else:
            target.put(stored.key, source.get(stored.key))
            copied += 1
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        row = conn.execute("select app_private.media_backfill()").fetchone()
    queued = row[0] if row else 0
    return (
        f"copied {copied}, already there {present} (from {settings.media_root} to s3://{target.bucket});"
        f" variants queued for {queued} older photos"
    )


def main() -> None:
    import argparse

    from api.settings import settings

    parser = argparse.ArgumentParser(prog="python -m api.storage", description="The photos' storage (MEDIA_STORAGE).")
    parser.add_argument(
        "command", choices=["migrate"], help="migrate: copy MEDIA_ROOT into S3_BUCKET (make media-migrate)"
    )
    parser.parse_args()
    print(migrate(settings))


if __name__ == "__main__":
    main()
