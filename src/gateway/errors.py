"""The GatewayError tree: every error the API answers with, its status, stable `code` and title.
gateway/problems.py renders them (and FastAPI's and Starlette's own) as RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra


class AuthenticationError(GatewayError):
    status, code, title = 401, "authentication_required", "Authentication required"


class InvalidApiKey(GatewayError):
    status, code, title = 401, "invalid_api_key", "Invalid API key"


class InvalidAdminToken(GatewayError):
    status, code, title = 401, "invalid_admin_token", "Invalid admin token"


class InvalidAccessToken(GatewayError):
    status, code, title = 401, "invalid_access_token", "Invalid access token"


class AccessTokenExpired(GatewayError):
    status, code, title = 401, "access_token_expired", "The access token has expired"


class MerchantDisabled(GatewayError):
    status, code, title = 403, "merchant_disabled", "The merchant is disabled"


class InsufficientScope(GatewayError):
    status, code, title = 403, "insufficient_scope", "The key may not do this"


class InvalidScopes(GatewayError):
    status, code, title = 422, "invalid_scopes", "The key's scopes are not valid for its type"


class ApiKeyNotRollable(GatewayError):
    status, code, title = 409, "api_key_not_rollable", "The API key can no longer be rolled"


# POST /v1/oauth/token (RFC 6749's error names; the body also carries them as `error`).
class InvalidClient(GatewayError):
    status, code, title = 401, "invalid_client", "Send your key as HTTP Basic credentials"


class UnauthorizedClient(GatewayError):
    status, code, title = 403, "unauthorized_client", "This key cannot be exchanged for an access token"


class UnsupportedGrantType(GatewayError):
    status, code, title = 400, "unsupported_grant_type", "The grant type is not supported"


class InvalidTokenRequest(GatewayError):
    status, code, title = 400, "invalid_request", "The token request is not valid"


class InvalidScope(GatewayError):
    status, code, title = 400, "invalid_scope", "The scope is not valid for this key"


class AccessTokensDisabled(GatewayError):
    status, code, title = 404, "access_tokens_disabled", "Access tokens are not enabled on this gateway"


class RateLimited(GatewayError):
    status, code, title = 429, "rate_limited", "Too many requests"


class PayloadTooLarge(GatewayError):
    status, code, title = 413, "payload_too_large", "The request body is too large"


class UnsupportedMediaType(GatewayError):
    status, code, title = 415, "unsupported_media_type", "The request body is not JSON"


class ServiceUnavailable(GatewayError):
    status, code, title = 503, "service_unavailable", "A service the gateway needs is unavailable"


class NotFound(GatewayError):
    status, code, title = 404, "resource_missing", "No such object"


class MalformedJson(GatewayError):
    status, code, title = 400, "malformed_json", "The request body is not valid JSON"


class InvalidRequest(GatewayError):
    status, code, title = 422, "validation_error", "The request is not valid"


class InvalidEmail(GatewayError):
    status, code, title = 422, "invalid_email", "The request is not valid"


class InvalidPhone(GatewayError):
    status, code, title = 422, "invalid_phone", "The provider cannot take this phone number"


class InvalidCursor(GatewayError):
    status, code, title = 422, "invalid_cursor", "The pagination cursor is not valid"


class ProviderUnknown(GatewayError):
    status, code, title = 422, "provider_unknown", "No such provider"


class CurrencyNotSupported(GatewayError):
    status, code, title = 422, "currency_not_supported", "The provider does not take this currency"


class ProviderNotConfigured(GatewayError):
    status, code, title = 422, "provider_not_configured", "The provider is not configured for this mode"


class ProviderAccountNotSupported(GatewayError):
    status, code, title = (
        422,
        "provider_account_not_supported",
        "This provider runs in the gateway and takes no account of a merchant's own",
    )


class SecretsKeyMissing(GatewayError):
    # The operator's configuration, not the request: GATEWAY_SECRETS_KEYS is unset, or lacks the key
    # that sealed this account. 409: the request is fine, the server's state forbids it for now.
    status, code, title = 409, "secrets_key_missing", "The gateway has no key to encrypt or decrypt secrets"


class IdempotencyKeyMissing(GatewayError):
    status, code, title = 400, "idempotency_key_missing", "An Idempotency-Key header is required"


class IdempotencyKeyInvalid(GatewayError):
    status, code, title = 400, "idempotency_key_invalid", "The Idempotency-Key header is not valid"


class IdempotencyKeyInUse(GatewayError):
    status, code, title = 409, "idempotency_key_in_use", "A request with this Idempotency-Key is in progress"


class IdempotencyKeyReused(GatewayError):
    status, code, title = (
        422,
        "idempotency_key_reused",
        "This Idempotency-Key was used with a different request",
    )


class PaymentNotCancelable(GatewayError):
    status, code, title = 409, "payment_not_cancelable", "The payment can no longer be canceled"


class PaymentAlreadyConfirmed(GatewayError):
    status, code, title = 409, "payment_already_confirmed", "The payment was already confirmed"


class PaymentNotRefundable(GatewayError):
    status, code, title = 409, "payment_not_refundable", "The payment cannot be refunded"


class RefundExceedsRemaining(GatewayError):
    status, code, title = 422, "refund_exceeds_remaining", "The refund exceeds what is left to refund"


class RefundNotSupported(GatewayError):
    status, code, title = 422, "refund_not_supported", "The provider cannot refund"


class PartialRefundNotSupported(GatewayError):
    status, code, title = 422, "partial_refund_not_supported", "The provider refunds only whole payments"


class PaymentLinkExpired(GatewayError):
    status, code, title = 410, "payment_link_expired", "The payment link has expired"


class PaymentLinkInactive(GatewayError):
    status, code, title = 410, "payment_link_inactive", "The payment link no longer takes payments"


class AmountOutOfRange(GatewayError):
    status, code, title = 422, "amount_out_of_range", "The amount is outside what the payment link allows"


class UnsafeWebhookUrl(GatewayError):
    status, code, title = 422, "url_not_allowed", "The URL points at a private or local address"


class TooManyEndpoints(GatewayError):
    status, code, title = 422, "too_many_endpoints", "The merchant has as many endpoints as allowed"


class NoRoute(GatewayError):
    status, code, title = 422, "no_route", "No routing rule sends this payment to a provider that can take it"


class ProviderError(GatewayError):
    status, code, title = 502, "provider_error", "The payment provider failed"


class ProviderMisconfiguredError(GatewayError):
    status, code, title = 502, "provider_misconfigured", "The payment provider rejected our configuration"


class ProviderTimeout(GatewayError):
    status, code, title = 504, "provider_timeout", "The payment provider did not answer in time"


class WebhookSignatureInvalid(GatewayError):
    status, code, title = 401, "webhook_signature_invalid", "The webhook signature is not valid"


class WebhookMalformed(GatewayError):
    status, code, title = 400, "webhook_malformed", "The webhook body is not valid"


class InvalidDestination(GatewayError):
    status, code, title = 422, "invalid_destination", "The provider cannot pay out to this destination"


class PayoutsNotSupported(GatewayError):
    status, code, title = 422, "payouts_not_supported", "The provider cannot pay out"


class PayoutLimitExceeded(GatewayError):
    status, code, title = 422, "payout_limit_exceeded", "The payout exceeds the merchant's payout limit"


class PayoutNotCancelable(GatewayError):
    status, code, title = 409, "payout_not_cancelable", "The payout was already submitted to its provider"


# Cash drawer sessions (gateway/cash_drawers/, docs/api.md "Cash drawer sessions").
class CashSessionAlreadyOpen(GatewayError):
    status, code, title = 409, "cash_session_already_open", "The drawer already has an open session"


class CashSessionClosed(GatewayError):
    status, code, title = 409, "cash_session_closed", "The cash session is closed"


class CashDrawerNotOpen(GatewayError):
    status, code, title = 409, "cash_drawer_not_open", "The drawer has no open session"


class CashSessionNotAllowed(GatewayError):
    status, code, title = (
        422,
        "cash_session_not_allowed",
        "Only cash payments and refunds name a cash session",
    )


class CashSessionCurrencyMismatch(GatewayError):
    status, code, title = 422, "cash_session_currency_mismatch", "The cash session counts another currency"
