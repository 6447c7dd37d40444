"""Access tokens: short-lived JWTs a merchant's back end gets for a secret or restricted key
(POST /v1/oauth/token) and sends as its bearer token, checked without the database.

HS256 with the keys of GATEWAY_JWT_KEYS (`<kid>:<secret>`, comma separated): the first signs, every
one verifies (rotation: add the new key first, drop the old one once its tokens have expired, 15
minutes later). The key id travels in the header. Verification fixes the algorithm to HS256, so a
token saying `alg: none` (or RS256, signed with something public) is refused whatever it claims.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

import jwt

from gateway.errors import AccessTokenExpired, InvalidAccessToken
from gateway.merchants.scopes import KNOWN_SCOPES, scope_text

# How long a token lives, at most (it never outlives the key it was made from).
TOKEN_SECONDS = 900
AUDIENCE = "gateway-api"
# The issuer when GATEWAY_PUBLIC_URL is unset: one constant, so every replica accepts the others'.
DEFAULT_ISSUER = "gateway"
MIN_SECRET_BYTES = 32
_ALGORITHM = "HS256"
_KID = re.compile(r"[A-Za-z0-9._-]{1,40}")
_REQUIRED = ["exp", "iat", "iss", "aud", "sub", "jti"]
_KEY_TYPES = ("secret", "restricted")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    merchant_id: str
    livemode: bool
    key_id: str
    key_type: str
    # None: everything the key's type may (a secret key's token, not narrowed).
    scopes: frozenset[str] | None
    expires_at: float


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    scope: str


class TokenKeys:
    def __init__(self, keys: list[tuple[str, bytes]], issuer: str):
        if not keys:
            raise ValueError("GATEWAY_JWT_KEYS holds no key")
        self._signing = keys[0]
        self._by_kid = dict(keys)
        self.issuer = issuer

    @classmethod
    def parse(cls, text: str, issuer: str) -> TokenKeys:
        """`<kid>:<secret>,...`; raises ValueError (without the secrets) when it cannot be used."""
        keys: list[tuple[str, bytes]] = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            kid, sep, secret = item.partition(":")
            if not sep or not _KID.fullmatch(kid):
                raise ValueError("GATEWAY_JWT_KEYS: each key is `<kid>:<secret>`, kid of [A-Za-z0-9._-]")
            if len(secret.encode()) < MIN_SECRET_BYTES:
                raise ValueError(f"GATEWAY_JWT_KEYS: the secret of {kid!r} is under {MIN_SECRET_BYTES} bytes")
            if any(k == kid for k, _ in keys):
                raise ValueError(f"GATEWAY_JWT_KEYS: the key id {kid!r} appears twice")
            keys.append((kid, secret.encode()))
        return cls(keys, issuer)

    def issue(
        self,
        *,
        merchant_id: str,
        livemode: bool,
        key_id: str,
        key_type: str,
        scopes: frozenset[str] | None,
        key_expires_at: float | None,
        now: float,
    ) -> IssuedToken:
        exp = int(now) + TOKEN_SECONDS
        if key_expires_at is not None:
            exp = min(exp, int(key_expires_at))
        claims: dict[str, object] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": merchant_id,
            "mode": "live" if livemode else "test",
            "key_id": key_id,
            "key_type": key_type,
            "iat": int(now),
            "exp": exp,
            "jti": uuid.uuid4().hex,
        }
        if scopes is not None:  # RFC 9068's `scope`: space separated
            claims["scope"] = scope_text(scopes)
        kid, secret = self._signing
        token = jwt.encode(claims, secret, algorithm=_ALGORITHM, headers={"kid": kid})
        return IssuedToken(token=token, expires_in=max(exp - int(now), 0), scope=scope_text(scopes))

    def verify(self, token: str) -> TokenClaims:
        """The token's claims, or InvalidAccessToken / AccessTokenExpired."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise InvalidAccessToken("The access token is malformed.") from None
        secret = self._by_kid.get(kid) if isinstance(kid, str) else None
        if secret is None:
            raise InvalidAccessToken("The access token was not signed by this gateway (unknown key id).")
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=[_ALGORITHM],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={"require": _REQUIRED},
            )
        except jwt.ExpiredSignatureError:
            raise AccessTokenExpired(
                "The access token has expired; get a new one from POST /v1/oauth/token."
            ) from None
        except jwt.PyJWTError as e:
            raise InvalidAccessToken(f"The access token is not valid: {_reason(e)}.") from None
        return _claims(claims)


def _reason(e: jwt.PyJWTError) -> str:
    if isinstance(e, jwt.InvalidAudienceError):
        return "it is not meant for this API (audience)"
    if isinstance(e, jwt.InvalidIssuerError):
        return "it was not issued by this gateway (issuer)"
    if isinstance(e, jwt.InvalidAlgorithmError):
        return "its algorithm is not HS256"
    if isinstance(e, jwt.InvalidSignatureError):
        return "its signature does not verify"
    if isinstance(e, jwt.MissingRequiredClaimError):
        return f"it lacks the claim {e.claim!r}"
    return "it is malformed"


def _claims(c: dict[str, object]) -> TokenClaims:
    sub, mode, key_id, key_type, scope, exp = (
        c.get("sub"),
        c.get("mode"),
        c.get("key_id"),
        c.get("key_type"),
        c.get("scope"),
        c.get("exp"),
    )
    scopes = frozenset(scope.split()) if isinstance(scope, str) else None
    if (
        not isinstance(sub, str)
        or mode not in ("test", "live")
        or not isinstance(key_id, str)
        or key_type not in _KEY_TYPES
        or ("scope" in c and (scopes is None or not scopes <= KNOWN_SCOPES))
        or not isinstance(exp, int)
    ):
        raise InvalidAccessToken("The access token is not valid: its claims are not the gateway's.")
    assert isinstance(key_type, str)
    return TokenClaims(
        merchant_id=sub,
        livemode=mode == "live",
        key_id=key_id,
        key_type=key_type,
        scopes=scopes,
        expires_at=float(exp),
    )


def from_settings(jwt_keys: str | None, public_url: str) -> TokenKeys | None:
    """None when GATEWAY_JWT_KEYS is unset (POST /v1/oauth/token then answers 404)."""
    text = (jwt_keys or "").strip()
    return TokenKeys.parse(text, public_url.rstrip("/") or DEFAULT_ISSUER) if text else None


def expiry_of(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()
