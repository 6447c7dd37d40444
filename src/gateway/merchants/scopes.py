"""What a restricted key (or a narrowed access token) may be allowed to do.

A scope grants exactly what it names: `payments:write` does not imply `payments:read` (a key that
should read and write holds both). The `:write` scopes of webhook endpoints and provider accounts
cover their reads too: there is no separate read scope for them. Key management (/v1/api-keys) is
no scope: it takes a secret key, or an access token made from one without narrowing.
"""

from __future__ import annotations

PAYMENTS_READ = "payments:read"  # GET payments (and their events), refunds, providers
PAYMENTS_WRITE = "payments:write"  # create, cancel, sync payments
REFUNDS_WRITE = "refunds:write"  # create refunds
EVENTS_READ = "events:read"  # the events list and each event, the live streams
WEBHOOKS_WRITE = "webhooks:write"  # webhook endpoints and their deliveries, reads too
PROVIDER_ACCOUNTS_WRITE = "provider_accounts:write"  # provider accounts, reads too
PAYOUTS_READ = "payouts:read"  # GET payouts
PAYOUTS_WRITE = "payouts:write"  # create and cancel payouts (money going out: never implied by payments:*)

SCOPES: tuple[str, ...] = (
    PAYMENTS_READ,
    PAYMENTS_WRITE,
    REFUNDS_WRITE,
    EVENTS_READ,
    WEBHOOKS_WRITE,
    PROVIDER_ACCOUNTS_WRITE,
    PAYOUTS_READ,
    PAYOUTS_WRITE,
)
KNOWN_SCOPES = frozenset(SCOPES)


def scope_text(scopes: frozenset[str] | None) -> str:
    """Space separated, in SCOPES' order (RFC 6749's `scope`); None: every scope."""
    return " ".join(s for s in SCOPES if scopes is None or s in scopes)
