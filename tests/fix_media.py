"""Media fixtures: an S3 protocol peer on loopback (moto's server, a real HTTP S3 endpoint, not a
mock of boto3), settings that store photos in it, and a helper that runs the worker's media jobs."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from api.settings import Settings
from api.worker import make_app, run_until_idle
from tests.loopback import free_port


def run_media_jobs(settings: Settings) -> None:
    """Run the worker's due jobs of the media queue (variants, deletions) under these settings."""
    asyncio.run(run_until_idle(make_app(settings), queues=["media"]))


@dataclass
class S3Peer:
    endpoint_url: str
    region: str = "us-east-1"

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region)

    def new_bucket(self) -> str:
        name = f"nexus-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> set[str]:
        listed = self.client().list_objects_v2(Bucket=bucket)
        return {o["Key"] for o in listed.get("Contents", [])}


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Peer]:
    """moto in server mode on 127.0.0.1, with the credentials boto3 reads from the environment."""
    from moto.server import ThreadedMotoServer

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Peer(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_settings(settings: Settings, s3: S3Peer) -> Settings:
    """The test settings with photos in a fresh bucket of the loopback S3 peer (MEDIA_URL /media/: the API serves them)."""
    return replace(
        settings, media_storage="s3", s3_bucket=s3.new_bucket(), s3_endpoint_url=s3.endpoint_url, s3_region=s3.region
    )
