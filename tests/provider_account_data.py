"""Valid provider account credentials for the tests, fresh random secrets on every call, and the
checks that no secret leaks."""

from __future__ import annotations

import secrets
import string
import uuid
from typing import Any

from gateway.kit.ids import new_id
from gateway.merchants import repository as merchants
from gateway.merchants.service import generate_key
from support import Gateway, Merchant

# The fields each provider's account takes that are secrets (identifiers like a shortcode or an API
# user are credentials too, but a few digits of them may well appear elsewhere by chance).
SECRET_FIELDS = {
    "stripe": ("secret_key", "webhook_secret"),
    "paystack": ("secret_key",),
    "flutterwave": ("secret_key", "secret_hash"),
    "mpesa": ("consumer_key", "consumer_secret", "passkey", "security_credential"),
    "momo": ("subscription_key", "api_key", "disbursement_subscription_key", "disbursement_api_key"),
    "wave": ("api_key", "webhook_secret"),
    "paypal": ("client_secret",),
    "razorpay": ("key_secret", "webhook_secret"),
    "airtel": ("client_secret", "callback_hash_key"),
}


_ALNUM = string.ascii_letters + string.digits


def _r(n: int = 24) -> str:
    # Letters and digits: a six-character piece of one is not found in an id or a date by chance.
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def credentials(provider: str, *, live: bool = False) -> dict[str, str]:
    """A full set of valid credentials of the mode, every secret random."""
    mode = "live" if live else "test"
    if provider == "stripe":
        return {"secret_key": f"sk_{mode}_{_r(32)}", "webhook_secret": f"whsec_{_r(32)}"}
    if provider == "paystack":
        return {"secret_key": f"sk_{mode}_{_r(40)}"}
    if provider == "flutterwave":
        prefix = "FLWSECK-" if live else "FLWSECK_TEST-"
        return {"secret_key": f"{prefix}{_r(32)}-X", "secret_hash": f"hash-{_r(24)}"}
    if provider == "mpesa":
        return {
            "consumer_key": f"ck{_r(30)}",
            "consumer_secret": f"cs{_r(30)}",
            "shortcode": "174379",
            "passkey": _r(64),
            "initiator_name": "apiop37",
            "security_credential": f"sc{_r(40)}",
        }
    if provider == "momo":
        return {
            "subscription_key": _r(32),
            "api_user": str(uuid.uuid4()),
            "api_key": _r(32),
            "target_environment": "mtnuganda" if live else "sandbox",
            "disbursement_subscription_key": _r(32),
            "disbursement_api_user": str(uuid.uuid4()),
            "disbursement_api_key": _r(32),
        }
    if provider == "wave":
        return {
            "api_key": f"wave_sn_{'prod' if live else 'test'}_{_r(32)}",
            "webhook_secret": f"wave_sn_WHS_{_r(32)}",
        }
    if provider == "paypal":
        return {"client_id": f"A{_r(40)}", "client_secret": f"E{_r(40)}", "webhook_id": _r(17).upper()}
    if provider == "razorpay":
        return {
            "key_id": f"rzp_{mode}_{_r(14)}",
            "key_secret": _r(24),
            "webhook_secret": f"whs-{_r(24)}",
        }
    if provider == "airtel":
        return {"client_id": str(uuid.uuid4()), "client_secret": _r(36), "callback_hash_key": _r(32)}
    raise AssertionError(provider)


def settings_for(provider: str, *, live: bool = False) -> dict[str, Any]:
    if provider == "momo" and live:
        return {"base_url": "https://proxy.momoapi.mtn.co.ug"}
    if provider == "airtel":
        return {"country": "UG"}
    return {}


def secret_values(provider: str, creds: dict[str, str]) -> list[str]:
    return [creds[f] for f in SECRET_FIELDS[provider] if f in creds]


def assert_no_secret(text: str, secret_list: list[str], min_len: int = 6) -> None:
    """No substring of `min_len` characters of any secret appears in `text`."""
    for value in secret_list:
        for i in range(len(value) - min_len + 1):
            piece = value[i : i + min_len]
            assert piece not in text, f"a piece of a secret ({i}..{i + min_len}) appears"


def hint(value: str) -> str:
    return "…" + value[-4:] if len(value) > 8 else "…"


async def live_key(gateway: Gateway, merchant: Merchant) -> dict[str, str]:
    """A live-mode secret key of the same merchant."""
    key = generate_key(True)
    await merchants.add_key(gateway.ctx.db, new_id("key"), merchant.id, key, True)
    return {"Authorization": f"Bearer {key}"}
