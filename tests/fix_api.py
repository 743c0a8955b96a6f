"""HTTP fixtures: real requests through the ASGI app, as anonymous or as a signed-in user."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.settings import Settings


@pytest.fixture(scope="session")
def settings(owner_url: str, app_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    media: Path = tmp_path_factory.mktemp("media")
    return replace(
        Settings(),
        database_url=owner_url,
        app_database_url=app_url,
        media_root=media,
        pool_min=1,
        pool_max=20,
        jwt_keys={"test-2": "second-secret-for-tests-0123456789", "test-1": "first-secret-for-tests-0123456789"},
    )


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    """One app for the session (one pool); each test's requests are independent."""
    with TestClient(create_app(settings), base_url="http://testserver", raise_server_exceptions=False) as c:
        yield c
