"""The checkout's protections: its response headers, its CSRF token and the return_url signature
(docs/api.md, "Hosted checkout").

- CSRF: a signed double-submit. The page sets a random nonce in an HttpOnly, SameSite=Strict cookie
  scoped to the checkout's path, and puts HMAC-SHA256(client secret, checkout id + nonce) in its form.
  A post is accepted only with both, matching. The client secret is the server's key here: the
  browser never sees it, so no other page can forge the token, and no new deployment secret is needed.
- return_url: `payment_id` and `signature` = hex HMAC-SHA256(client secret, payment id). The merchant's
  back end received the client secret when it created the payment; nobody else who sees the URL has it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

CSRF_COOKIE = "checkout_csrf"
CSRF_FIELD = "csrf_token"


def headers(extra_script_origins: tuple[str, ...] = ()) -> dict[str, str]:
    """Every checkout response's security headers: no inline script, no third party (but a rail's
    own script origin where it needs one), never framed, no Referer leaves the page."""
    scripts = " ".join(("'self'", *extra_script_origins))
    csp = (
        "default-src 'none'; "
        f"script-src {scripts}; "
        "style-src 'self'; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        "form-action 'self' https:; "
        "base-uri 'none'; "
        "frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def csrf_token(client_secret: str, checkout_id: str, nonce: str) -> str:
    msg = f"csrf\n{checkout_id}\n{nonce}".encode()
    return hmac.new(client_secret.encode(), msg, hashlib.sha256).hexdigest()


def csrf_ok(client_secret: str, checkout_id: str, nonce: str | None, token: str | None) -> bool:
    if not nonce or not token:
        return False
    return hmac.compare_digest(csrf_token(client_secret, checkout_id, nonce), token)


def return_signature(client_secret: str, payment_id: str) -> str:
    return hmac.new(client_secret.encode(), payment_id.encode(), hashlib.sha256).hexdigest()


def signed_return_url(return_url: str, payment_id: str, client_secret: str) -> str:
    """The merchant's return_url with `payment_id` and `signature` added to its query (any of the
    same names it had are replaced)."""
    parts = urlsplit(return_url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k not in ("payment_id", "signature")
    ]
    query += [("payment_id", payment_id), ("signature", return_signature(client_secret, payment_id))]
    return urlunsplit(parts._replace(query=urlencode(query)))
