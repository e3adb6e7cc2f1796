"""API tokens: ``foley token create`` stores the SHA-256 of a random token; requests carry
``Authorization: Bearer <token>``. With auth off (open mode, one local user) every caller is the same owner."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets

from fastapi import Request
from sqlalchemy import select

from ..errors import RequestError
from .db import ApiToken, Database, now

TOKEN_PREFIX = "foley_"
COOKIE = "foley_token"  # the studio's copy of the token, so <audio src=...> downloads carry it (GET only)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(db: Database, name: str | None = None, quota_seconds: float | None = None,
                 rate_per_minute: int | None = None) -> tuple[str, ApiToken]:
    """A new token (returned once, never stored) and its row; its own limits (None: the server's)."""
    _check_limits(quota_seconds, rate_per_minute)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.session() as s:
        taken = set(s.scalars(select(ApiToken.name)))
        if name is None:
            name = next(f"token-{i}" for i in range(1, len(taken) + 2) if f"token-{i}" not in taken)
        name = name.strip()
        if not name or len(name) > 100:
            raise RequestError("a token name must be 1 to 100 characters")
        if name in taken:
            raise RequestError(f"a token named '{name}' exists; choose another --name or revoke it first")
        row = ApiToken(name=name, token_hash=hash_token(token), quota_seconds=quota_seconds,
                       rate_per_minute=rate_per_minute)
        s.add(row)
        s.commit()
    return token, row


def revoke_token(db: Database, name: str) -> None:
    with db.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.name == name))
        if row is None:
            raise RequestError(f"no token named '{name}'; see foley token list")
        row.revoked_at = row.revoked_at or now()
        s.commit()


def _check_limits(quota_seconds: float | None, rate_per_minute: int | None) -> None:
    if quota_seconds is not None and not quota_seconds >= 0:
        raise RequestError(f"--quota must be 0 or more audio-seconds per day, got {quota_seconds:g}")
    if rate_per_minute is not None and rate_per_minute < 0:
        raise RequestError(f"--rate must be 0 or more generations per minute, got {rate_per_minute}")


def set_limits(db: Database, name: str, quota_seconds: float | None = None, rate_per_minute: int | None = None,
               default: bool = False) -> ApiToken:
    """Set a token's own quota and/or rate (``default``: back to the server's limits)."""
    _check_limits(quota_seconds, rate_per_minute)
    with db.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.name == name))
        if row is None:
            raise RequestError(f"no token named '{name}'; see foley token list")
        if default:
            row.quota_seconds = row.rate_per_minute = None
        if quota_seconds is not None:
            row.quota_seconds = quota_seconds
        if rate_per_minute is not None:
            row.rate_per_minute = rate_per_minute
        s.commit()
        return row


def list_tokens(db: Database) -> list[ApiToken]:
    with db.session() as s:
        return list(s.scalars(select(ApiToken).order_by(ApiToken.created_at)))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def caller(request: Request) -> str | None:
    """The id of the calling token (a FastAPI dependency), or None in open mode.

    401 without a token or with an unknown one, 403 with a revoked one. The studio's cookie counts only for
    GET (media elements cannot send headers; a cross-site form cannot use it to change anything).
    """
    from .jobs import ApiError

    svc = request.app.state.svc
    if not svc.settings.auth:
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    if not token and request.method == "GET":
        token = request.cookies.get(COOKIE, "")
    if not token:
        raise ApiError(401, "this server needs an API token: send 'Authorization: Bearer <token>' "
                            "(the server's owner makes one with: foley token create --name NAME)")
    with svc.db.session() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None:
        raise ApiError(401, "unknown API token; check it, or ask for a new one (foley token create)")
    if row.revoked_at is not None:
        raise ApiError(403, f"API token '{row.name}' was revoked; ask for a new one (foley token create)")
    return row.id
