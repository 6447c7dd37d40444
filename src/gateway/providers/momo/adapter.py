"""MTN MoMo Collection: request to pay, status, callbacks; refunds through the Disbursement product.

I/O only; bodies are shaped by transformers.py (shared/providers.md §5).

- Access tokens are per product (`POST /collection/token/`, `POST /disbursement/token/`), cached in
  Redis so every worker and replica shares one, and fetched under a Redis lock, one fetch at a time.
  A 401 on a call drops the cached token and fetches a new one once.
- The X-Reference-Id of a request to pay is uuid5(our payment id). Before it is sent the first time a
  Redis marker records it; a retried create (the first one timed out) asks the status GET first and
  sends nothing if MoMo knows the reference. Without the marker (Redis flushed) it is sent again,
  MoMo answers 409 for the duplicate reference, and the status GET answers instead.
- Callbacks are unsigned: the path token is checked here, and the gateway then asks the status GET
  (capabilities.query_before_acting) and applies that answer, never the callback's.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from gateway.kit.signing import constant_time_equal
from gateway.providers.base import (
    CALLBACK_TOKEN_HEADER,
    Capabilities,
    Flow,
    PaymentRef,
    PaymentRequest,
    PaymentResult,
    ProviderFailure,
    ProviderMisconfigured,
    ProviderTimedOut,
    ProviderUnavailable,
    RefundRef,
    RefundRequest,
    RefundResult,
    WebhookEvent,
    WebhookVerificationError,
    json_object,
)
from gateway.providers.momo import transformers as tf
from gateway.settings import MomoSettings

log = structlog.get_logger("gateway.providers.momo")

COLLECTION, DISBURSEMENT = "collection", "disbursement"
TOKEN_KEY_PREFIX = "momo:token:"
SENT_KEY_PREFIX = "momo:sent:"
# How long the "already sent" marker of a reference is kept: far beyond any retry of a create.
SENT_MARKER_SECONDS = 30 * 86_400


class NoRequestYet(ProviderUnavailable):
    """MoMo does not know the reference (yet): the request to pay never reached it, or is not stored yet."""


@dataclass(frozen=True)
class Product:
    """One MoMo product's credentials in one mode."""

    name: str
    mode: str
    base_url: str
    target_environment: str
    subscription_key: str = field(repr=False)
    api_user: str
    api_key: str = field(repr=False)

    @property
    def token_key(self) -> str:
        # The credentials' fingerprint, not the credentials: a rotated key gets a token of its own.
        raw = f"{self.base_url}|{self.api_user}|{self.api_key}|{self.subscription_key}".encode()
        return f"{TOKEN_KEY_PREFIX}{self.name}:{self.mode}:{hashlib.sha256(raw).hexdigest()[:24]}"

    @property
    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.api_user}:{self.api_key}".encode()).decode()


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return text or None


def _body(r: httpx.Response) -> Any:
    try:
        return orjson.loads(r.content) if r.content else None
    except orjson.JSONDecodeError:
        return None


class MomoProvider:
    name = "momo"

    def __init__(self, settings: MomoSettings, redis: Redis, public_url: str, timeout_seconds: float):
        self._settings = settings
        self._redis = redis
        self._timeout = timeout_seconds
        token = _secret(settings.callback_token)
        self._callback_token = token
        self._callback_url = f"{public_url.rstrip('/')}/v1/webhooks/momo/{token}" if token else None
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=10, keepalive_expiry=30),
            headers={"Accept": "application/json", "User-Agent": "gateway-momo/1"},
        )
        refunds = any(self._product(DISBURSEMENT, live) is not None for live in (False, True))
        self.capabilities = Capabilities(
            currencies=frozenset(settings.currencies),
            flows=frozenset({Flow.MOBILE_PROMPT}),
            refunds=refunds,
            partial_refunds=refunds and settings.partial_refunds,
            # A request to pay cannot be withdrawn; it ends FAILED (EXPIRED) at MoMo [U].
            cancel=False,
            query_before_acting=True,
            reconcile_after_seconds=settings.reconcile_after_seconds,
            action_ttl_seconds=settings.action_ttl_seconds,
            check_phone=self.phone_problem,
        )

    # --- configuration -----------------------------------------------------------------------------

    def _product(self, name: str, livemode: bool) -> Product | None:
        s = self._settings
        mode = "live" if livemode else "test"
        base_url = s.live_base_url if livemode else s.test_base_url
        environment = s.live_target_environment if livemode else s.test_target_environment
        if name == COLLECTION:
            key, user, secret = (
                (s.live_subscription_key, s.live_api_user, s.live_api_key)
                if livemode
                else (s.test_subscription_key, s.test_api_user, s.test_api_key)
            )
        else:
            key, user, secret = (
                (
                    s.live_disbursement_subscription_key,
                    s.live_disbursement_api_user,
                    s.live_disbursement_api_key,
                )
                if livemode
                else (
                    s.test_disbursement_subscription_key,
                    s.test_disbursement_api_user,
                    s.test_disbursement_api_key,
                )
            )
        key_text, secret_text = _secret(key), _secret(secret)
        if not (base_url and environment and key_text and user and secret_text):
            return None
        return Product(name, mode, base_url.rstrip("/"), environment, key_text, user, secret_text)

    def _require(self, name: str, livemode: bool) -> Product:
        product = self._product(name, livemode)
        if product is None:
            mode = "live" if livemode else "test"
            raise ProviderMisconfigured(f"momo: the {name} product has no {mode}-mode credentials")
        return product

    def is_configured(self, livemode: bool) -> bool:
        return self._product(COLLECTION, livemode) is not None

    def phone_problem(self, phone: str | None, livemode: bool) -> str | None:
        """Checked before a payment exists (a 422 invalid_phone): a payer MoMo cannot take."""
        environment = (
            self._settings.live_target_environment if livemode else self._settings.test_target_environment
        )
        return tf.phone_problem(phone, environment)

    # --- tokens --------------------------------------------------------------------------------------

    async def _token(self, product: Product) -> str:
        """The product's token from Redis; else one fetch at a time across every process."""
        key = product.token_key
        wait = self._timeout * 2 + 5
        try:
            cached = await self._redis.get(key)
            if cached:
                return cached.decode() if isinstance(cached, bytes) else str(cached)
            async with self._redis.lock(
                key + ":lock", timeout=wait, sleep=0.05, blocking_timeout=wait, thread_local=False
            ):
                cached = await self._redis.get(key)
                if cached:
                    return cached.decode() if isinstance(cached, bytes) else str(cached)
                token, lifetime = await self._fetch_token(product)
                # Renewed a little before MoMo's expiry, so no call carries a token about to lapse.
                margin = max(30, lifetime // 10)
                await self._redis.set(key, token, ex=lifetime - margin if lifetime > margin else lifetime)
                return token
        except LockError as e:
            raise ProviderUnavailable("momo: another process is fetching the access token; retry") from e
        except RedisError as e:
            raise ProviderUnavailable(f"momo: the token cache is unavailable ({type(e).__name__})") from e

    async def _fetch_token(self, product: Product) -> tuple[str, int]:
        url = f"{product.base_url}/{product.name}/token/"
        headers = {"Authorization": product.basic, "Ocp-Apim-Subscription-Key": product.subscription_key}
        r = await self._request("POST", url, headers)
        if r.status_code in (400, 401, 403, 404):
            log.error(
                "momo_credentials_rejected",
                product=product.name,
                mode=product.mode,
                status=r.status_code,
                error=tf.error_code(_body(r)),
            )
            raise ProviderMisconfigured(
                f"momo rejected the {product.mode}-mode {product.name} credentials ({r.status_code})"
            )
        if r.status_code != 200:
            raise ProviderUnavailable(f"momo: POST /{product.name}/token/ answered {r.status_code}")
        try:
            token, lifetime = tf.access_token(_body(r))
        except tf.MalformedAnswer as e:
            raise ProviderUnavailable(f"momo: {e}") from e
        log.info("momo_token_fetched", product=product.name, mode=product.mode, expires_in=lifetime)
        return token, lifetime

    async def _drop_token(self, product: Product, token: str) -> None:
        try:
            if await self._redis.get(product.token_key) == token.encode():
                await self._redis.delete(product.token_key)
        except RedisError as e:
            raise ProviderUnavailable(f"momo: the token cache is unavailable ({type(e).__name__})") from e

    # --- HTTP ----------------------------------------------------------------------------------------

    async def _request(
        self, method: str, url: str, headers: dict[str, str], body: dict[str, Any] | None = None
    ) -> httpx.Response:
        content = None
        if body is not None:
            content = orjson.dumps(body)
            headers = {**headers, "Content-Type": "application/json"}
        path = httpx.URL(url).path
        try:
            return await self._http.request(method, url, content=content, headers=headers)
        except httpx.TimeoutException as e:
            raise ProviderTimedOut(f"momo: {method} {path} timed out") from e
        except httpx.HTTPError as e:
            raise ProviderUnavailable(f"momo: {method} {path} failed: {type(e).__name__}") from e

    async def _call(
        self,
        product: Product,
        method: str,
        path: str,
        *,
        reference: str | None = None,
        body: dict[str, Any] | None = None,
        callback: bool = False,
    ) -> httpx.Response:
        """A call with the product's Bearer token. Outages and timeouts raise; a token MoMo no longer
        takes is replaced once; any other answer comes back for the caller to read."""
        for attempt in (1, 2):
            token = await self._token(product)
            headers = {
                "Authorization": f"Bearer {token}",
                "X-Target-Environment": product.target_environment,
                "Ocp-Apim-Subscription-Key": product.subscription_key,
            }
            if reference is not None:
                headers["X-Reference-Id"] = reference
            if callback and self._callback_url is not None:
                headers["X-Callback-Url"] = self._callback_url
            r = await self._request(method, product.base_url + path, headers, body)
            if r.status_code not in (401, 403):
                break
            await self._drop_token(product, token)
            if attempt == 2:
                log.error(
                    "momo_credentials_rejected",
                    product=product.name,
                    mode=product.mode,
                    status=r.status_code,
                    path=path,
                    error=tf.error_code(_body(r)),
                )
                raise ProviderMisconfigured(
                    f"momo rejected the {product.mode}-mode {product.name} token ({r.status_code})"
                )
        if r.status_code >= 500 or r.status_code == 429:
            raise ProviderUnavailable(f"momo: {method} {path} answered {r.status_code}")
        return r

    async def _first_send(self, reference: str) -> bool:
        """Records that `reference` is being sent; False if it was sent before (this is a retry)."""
        try:
            return bool(
                await self._redis.set(SENT_KEY_PREFIX + reference, "1", nx=True, ex=SENT_MARKER_SECONDS)
            )
        except RedisError as e:
            raise ProviderUnavailable(f"momo: Redis is unavailable ({type(e).__name__})") from e

    async def _status(self, product: Product, path: str, external_id: str) -> dict[str, Any] | None:
        """A status GET's body; None for 404 (MoMo does not know the reference)."""
        r = await self._call(product, "GET", path)
        if r.status_code == 404:
            return None
        data = _body(r)
        if r.status_code != 200 or not isinstance(data, dict):
            raise ProviderUnavailable(f"momo: GET {path} answered {r.status_code} without a status body")
        named = data.get("externalId")
        if named is not None and named != external_id:
            # The reference is derived from our id: anything else is not our request.
            log.error("momo_reference_mismatch", path=path, external_id=str(named)[:100], ours=external_id)
            raise ProviderUnavailable(f"momo: GET {path} answered for another externalId")
        return data

    # --- payments ------------------------------------------------------------------------------------

    async def create_payment(self, request: PaymentRequest) -> PaymentResult:
        product = self._require(COLLECTION, request.livemode)
        reference = tf.reference_id(request.payment_id)
        if not await self._first_send(reference):
            # A retry: the first attempt may have reached MoMo although we never heard back.
            found = await self._payment_status(product, reference, request.payment_id)
            if found is not None:
                log.info("momo_request_to_pay_found", payment_id=request.payment_id, reference=reference)
                return found
        r = await self._call(
            product,
            "POST",
            "/collection/v1_0/requesttopay",
            reference=reference,
            body=tf.request_to_pay_body(request),
            callback=True,
        )
        waiting = PaymentResult(
            status="requires_action",
            provider_reference=reference,
            next_action=tf.prompt(request.customer.phone, request.amount, request.currency),
        )
        if r.status_code == 409:
            # MoMo already has this reference [U: the duplicate answer]: that is our request to pay.
            log.info("momo_request_to_pay_duplicate", payment_id=request.payment_id, reference=reference)
            return await self._confirm(product, reference, request.payment_id, waiting, always=True)
        if 200 <= r.status_code < 300:
            return await self._confirm(product, reference, request.payment_id, waiting)
        if r.status_code == 404:
            raise ProviderMisconfigured(
                f"momo: POST /collection/v1_0/requesttopay answered 404 at {product.base_url}"
            )
        # 400 and the like: MoMo refused the request itself; nothing was created.
        code = tf.error_code(_body(r))
        failure_code, message = tf.REASONS.get(
            code or "", ("payment_rejected", "MTN MoMo refused the request.")
        )
        log.warning("momo_request_to_pay_refused", status=r.status_code, error=code)
        return PaymentResult(
            status="failed", provider_reference=reference, failure_code=failure_code, failure_message=message
        )

    async def _confirm(
        self,
        product: Product,
        reference: str,
        payment_id: str,
        waiting: PaymentResult,
        *,
        always: bool = False,
    ) -> PaymentResult:
        """Right after MoMo took the request: its status now, so an immediate refusal is a decline.
        Any trouble asking leaves the payment waiting (the reconciler and callbacks carry on)."""
        if not (always or self._settings.confirm_after_create):
            return waiting
        try:
            found = await self._payment_status(product, reference, payment_id)
        except ProviderFailure as e:
            log.warning("momo_confirm_failed", payment_id=payment_id, error=str(e))
            return waiting
        if found is None or found.status == "requires_action":
            # Not stored yet, or waiting: keep the phone as the customer gave it and the amount we asked.
            return waiting
        return found

    async def _payment_status(
        self, product: Product, reference: str, payment_id: str
    ) -> PaymentResult | None:
        data = await self._status(product, f"/collection/v1_0/requesttopay/{reference}", payment_id)
        if data is None:
            return None
        try:
            return tf.payment_result(data, reference)
        except tf.MalformedAnswer as e:
            raise ProviderUnavailable(f"momo: {e}") from e

    async def fetch_payment(self, ref: PaymentRef) -> PaymentResult:
        product = self._require(COLLECTION, ref.livemode)
        reference = ref.provider_reference or tf.reference_id(ref.payment_id)
        found = await self._payment_status(product, reference, ref.payment_id)
        if found is not None:
            return found
        ttl = self.capabilities.action_ttl_seconds or 0
        if datetime.now(UTC) >= ref.created_at + timedelta(seconds=ttl):
            # Long past any answer: the request to pay never reached MoMo, and nothing can come of it.
            return PaymentResult(
                status="failed",
                provider_reference=reference,
                failure_code="request_not_received",
                failure_message="MTN MoMo never received the request to pay.",
            )
        raise NoRequestYet(f"momo does not know request to pay {reference} (yet)")

    async def cancel_payment(self, ref: PaymentRef) -> PaymentResult:
        # Never called (capabilities.cancel is False): a request to pay can only lapse.
        return await self.fetch_payment(ref)

    # --- refunds (Disbursement) ----------------------------------------------------------------------

    async def refund_payment(self, request: RefundRequest) -> RefundResult:
        payment = request.payment
        product = self._require(DISBURSEMENT, payment.livemode)
        reference = tf.refund_reference_id(request.refund_id)
        if not await self._first_send(reference):
            found = await self._refund_status(product, reference, request.refund_id)
            if found is not None:
                return found
        payment_reference = payment.provider_reference or tf.reference_id(payment.payment_id)
        # No X-Callback-Url: an unsigned refund callback is no ground for acting; the status GET is.
        r = await self._call(
            product,
            "POST",
            "/disbursement/v1_0/refund",
            reference=reference,
            body=tf.refund_body(request, payment_reference),
        )
        pending = RefundResult(status="pending", provider_reference=reference)
        if 200 <= r.status_code < 300 or r.status_code == 409:
            try:
                found = await self._refund_status(product, reference, request.refund_id)
            except ProviderFailure as e:
                log.warning("momo_refund_confirm_failed", refund_id=request.refund_id, error=str(e))
                return pending
            return found or pending
        if r.status_code == 404:
            raise ProviderMisconfigured(
                f"momo: POST /disbursement/v1_0/refund answered 404 at {product.base_url}"
            )
        code = tf.error_code(_body(r))
        log.warning("momo_refund_refused", status=r.status_code, error=code)
        message = tf.REASONS.get(code or "", ("", "MTN MoMo refused the refund."))[1]
        return RefundResult(
            status="failed",
            provider_reference=reference,
            failure_code=tf.REFUND_FAILURE[0],
            failure_message=message,
        )

    async def _refund_status(self, product: Product, reference: str, refund_id: str) -> RefundResult | None:
        data = await self._status(product, f"/disbursement/v1_0/refund/{reference}", refund_id)
        if data is None:
            return None
        try:
            return tf.refund_result(data, reference)
        except tf.MalformedAnswer as e:
            raise ProviderUnavailable(f"momo: {e}") from e

    async def fetch_refund(self, ref: RefundRef) -> RefundResult:
        product = self._require(DISBURSEMENT, ref.payment.livemode)
        reference = ref.provider_reference or tf.refund_reference_id(ref.refund_id)
        found = await self._refund_status(product, reference, ref.refund_id)
        if found is None:
            raise NoRequestYet(f"momo does not know refund {reference} (yet)")
        return found

    # --- callbacks -----------------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookEvent]:
        if self._callback_token is None:
            raise WebhookVerificationError("no MoMo callback token is configured")
        given = headers.get(CALLBACK_TOKEN_HEADER)
        if given is None or not constant_time_equal(given, self._callback_token):
            raise WebhookVerificationError("the callback URL's token is missing or wrong")
        payload = json_object(body)
        return [tf.interpret(payload)]

    def interpret_webhook(self, payload: dict[str, Any]) -> WebhookEvent:
        return tf.interpret(payload)

    async def aclose(self) -> None:
        await self._http.aclose()
