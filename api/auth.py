"""Sign and verify access tokens. Python's only job in auth: the rules live in SQL.

Access tokens are HS256 JWTs (the algorithm is pinned) carrying iss, aud, sub, role,
iat, exp, jti, sid (the sign-in session: the refresh-token family, live while the token is
used, app.check_session), sev (the user's session epoch) and a `kid` header. JWT_KEYS may hold several keys: the first signs,
every one verifies, so keys rotate without logging anyone out. Refresh tokens are
opaque strings handled entirely by the database (api.token_refresh).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from api.errors import Problem
from api.settings import Settings

ALGORITHM = "HS256"
ROLES = frozenset({"guest", "host", "admin"})
INVALID = "Invalid or expired token."


def sign_access(settings: Settings, user_id: str, role: str, session: str, epoch: int = 0) -> str:
    kid, secret = next(iter(settings.jwt_keys.items()))
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user_id,
        "role": role,
        "iat": now,
        "exp": now + settings.access_ttl,
        "jti": str(uuid.uuid4()),
        "typ": "access",
        "sid": session,
        "sev": epoch,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})


def sign_outcome(settings: Settings, outcome: dict[str, Any]) -> str:
    """The access token of a successful sign-in outcome from SQL (app_private.sign_in_outcome)."""
    return sign_access(settings, outcome["user_id"], outcome["role"], outcome["session"], int(outcome["epoch"]))


def verify(settings: Settings, authorization: str | None) -> dict[str, Any] | None:
    """The verified claims of an `Authorization: Bearer` header, None without one; 401 if wrong."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(401, INVALID)
    try:
        header = jwt.get_unverified_header(token.strip())
        secret = settings.jwt_keys.get(str(header.get("kid")))
        if header.get("alg") != ALGORITHM or secret is None:
            raise Problem(401, INVALID)
        claims: dict[str, Any] = jwt.decode(
            token.strip(),
            secret,
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "iss", "aud", "jti", "sid"]},
        )
    except jwt.PyJWTError as exc:
        raise Problem(401, INVALID) from exc
    if claims.get("typ") != "access" or claims.get("role") not in ROLES:
        raise Problem(401, INVALID)
    return claims
