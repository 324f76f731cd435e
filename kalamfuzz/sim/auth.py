"""Users' passwords and JWTs (HS256, issuer "kalamdb"), as KalamDB's auth crate issues them."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from typing import Any

import jwt

COMMON_PASSWORDS = {
    "password",
    "password1",
    "12345678",
    "123456789",
    "qwerty123",
    "iloveyou",
    "admin123",
    "letmein1",
    "welcome1",
    "passw0rd",
    "abc12345",
    "11111111",
    "00000000",
}


def hash_password(password: str, cost: int) -> str:
    # pbkdf2 stands in for bcrypt; the config's bcrypt_cost scales its work the same way
    salt = os.urandom(16)
    rounds = 2 ** max(4, min(cost, 16))
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds)
    return f"pbkdf2${rounds}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    if not stored:
        return False
    _, rounds, salt, digest = stored.split("$")
    check = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(rounds))
    return hmac.compare_digest(check.hex(), digest)


#: KalamDB's password policy (kalamdb-auth security/password.rs), in bytes: bcrypt reads only
#: the first 72, so a longer password would let any other with the same start in.
MIN_PASSWORD_BYTES = 8
MAX_PASSWORD_BYTES = 72


def password_problem(password: str) -> str | None:
    size = len(password.encode())
    if size < MIN_PASSWORD_BYTES:
        return f"Password must be at least {MIN_PASSWORD_BYTES} characters (weak)"
    if size > MAX_PASSWORD_BYTES:
        return f"Password must be at most {MAX_PASSWORD_BYTES} characters (bcrypt limit, weak)"
    if password.lower() in COMMON_PASSWORDS:
        return "Password is too common"
    return None


class TokenError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code  # TOKEN_EXPIRED | INVALID_CREDENTIALS


def issue(secret: str, user_id: str, role: str, hours: float, kind: str) -> tuple[str, int]:
    now = int(time.time())
    exp = now + int(hours * 3600) * (7 if kind == "refresh" else 1)
    claims = {
        "sub": user_id,
        "role": role,
        "iss": "kalamdb",
        "iat": now,
        "exp": exp,
        "token_type": kind,
        "jti": os.urandom(8).hex(),
    }
    return jwt.encode(claims, secret, algorithm="HS256"), exp


#: Tokens already verified, with their claims: a client sends one token with every request, and
#: verifying it again was a tenth of a statement's time on the sim. Only expiry can change.
_VERIFIED: dict[tuple[str, str], dict[str, Any]] = {}


def decode(secret: str, token: str, *, check_issuer: bool = True) -> dict[str, Any]:
    claims = _VERIFIED.get((secret, token))
    if claims is not None:
        if time.time() >= claims.get("exp", float("inf")):  # as PyJWT: expired at exp
            raise TokenError("TOKEN_EXPIRED")
        return claims
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer="kalamdb" if check_issuer else None,
            options={"require": ["exp", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenError("TOKEN_EXPIRED") from None
    except jwt.PyJWTError:
        raise TokenError("INVALID_CREDENTIALS") from None
    if len(_VERIFIED) >= 4096:
        _VERIFIED.clear()
    _VERIFIED[secret, token] = claims
    return claims
