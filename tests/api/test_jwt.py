"""Every way an access token can be wrong: all 401, all the same body."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from starlette.testclient import TestClient

from api.auth import sign_access
from api.settings import Settings
from tests.fix_api import assert_problem, signed_up


def claims(user: Any, settings: Settings, **over: Any) -> dict[str, Any]:
    """A valid access token's claims for `user` (a fixtures' User: its token names its session), with changes."""
    now = int(time.time())
    base = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user.id,
        "role": user.role,
        "iat": now,
        "exp": now + 300,
        "jti": "x",
        "typ": "access",
        "sid": jwt.decode(user.token, options={"verify_signature": False})["sid"],
        "sev": 0,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], settings: Settings, kid: str = "test-1", alg: str = "HS256") -> str:
    return jwt.encode(payload, settings.jwt_keys[kid], algorithm=alg, headers={"kid": kid})


def unsigned(payload: dict[str, Any]) -> str:
    return jwt.encode(payload, None, algorithm="none", headers={"kid": "test-1"})


CASES = {
    "alg none": lambda u, s: unsigned(claims(u, s)),
    "another algorithm": lambda u, s: sign(claims(u, s), s, alg="HS512"),
    "bad signature": lambda u, s: sign(claims(u, s), s)[:-4] + "AAAA",
    "expired": lambda u, s: sign(claims(u, s, exp=int(time.time()) - 10), s),
    "missing exp": lambda u, s: sign(claims(u, s, exp=None), s),
    "wrong issuer": lambda u, s: sign(claims(u, s, iss="someone-else"), s),
    "wrong audience": lambda u, s: sign(claims(u, s, aud="another-api"), s),
    "unknown kid": lambda u, s: jwt.encode(
        claims(u, s), "whatever-secret-" + "9" * 60, algorithm="HS256", headers={"kid": "nope"}
    ),
    "not an access token": lambda u, s: sign(claims(u, s, typ="refresh"), s),
    "role not ours": lambda u, s: sign(claims(u, s, role="postgres"), s),
    "no session": lambda u, s: sign(claims(u, s, sid=None), s),
    "garbage": lambda u, s: "abc.def.ghi",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_token_is_401(case: str, client: TestClient, make_user: Any, settings: Settings) -> None:
    user = make_user("guest")
    token = CASES[case](user, settings)
    body = assert_problem(client.get("/api/users/me/", headers={"Authorization": f"Bearer {token}"}), 401)
    assert body["detail"] == "Invalid or expired token."


def test_refresh_token_used_as_access_token(client: TestClient) -> None:
    _, tokens = signed_up(client)
    body = assert_problem(client.get("/api/users/me/", headers={"Authorization": f"Bearer {tokens['refresh']}"}), 401)
    assert body["detail"] == "Invalid or expired token."


def test_no_bearer_prefix(client: TestClient, make_user: Any) -> None:
    user = make_user("guest")
    body = assert_problem(client.get("/api/users/me/", headers={"Authorization": user.token}), 401)
    assert body["detail"] == "Invalid or expired token."


def test_any_configured_key_verifies(client: TestClient, make_user: Any, settings: Settings) -> None:
    user = make_user("guest")
    old_key = sign(claims(user, settings), settings, kid="test-1")  # rotated out of signing, still verifies
    assert client.get("/api/users/me/", headers={"Authorization": f"Bearer {old_key}"}).status_code == 200


def test_token_of_a_deleted_user(client: TestClient, make_user: Any, owner: Any) -> None:
    user = make_user("guest")
    owner.execute("delete from app.users where id = %s", (user.id,))
    assert_problem(client.get("/api/users/me/", headers=user.auth), 401)


@pytest.mark.parametrize("subject", ["not-a-uuid", "", "00000000-0000-0000-0000-00000000000g"])
def test_a_signed_token_whose_subject_is_no_user_id_is_401(
    client: TestClient, settings: Settings, subject: str
) -> None:
    token = sign_access(settings, subject, "guest", "00000000-0000-4000-8000-000000000000")
    assert_problem(client.get("/api/users/me/", headers={"Authorization": f"Bearer {token}"}), 401)
