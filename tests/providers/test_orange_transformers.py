"""Orange Money Web Payment's pure functions and settings: exact amounts, the token answer, the
notif_token check against the payment's digest, status answers, per-mode configuration."""

from __future__ import annotations

import orjson
import pytest

from gateway.providers.base import WebhookPayloadError
from gateway.providers.orange import transformers as tf
from gateway.providers.orange.settings import OrangeSettings


def test_amounts_are_exact_in_either_unit() -> None:
    assert tf.amount_value(5_000, "XOF", "major") == 5_000
    assert tf.amount_value(5_000, "GNF", "minor") == 5_000
    assert orjson.dumps({"a": tf.amount_value(1_050, "LRD", "major")}) == b'{"a":10.50}'
    assert tf.amount_value(1_050, "LRD", "minor") == 1_050


def test_the_token_answer_s_lifetime_may_be_a_string() -> None:
    assert tf.access_token({"access_token": "t", "expires_in": "7776000"}) == ("t", 7_776_000)
    assert tf.access_token({"access_token": "t", "expires_in": 3600}) == ("t", 3600)
    for bad in ({"access_token": "t"}, {"expires_in": 1}, {"access_token": "t", "expires_in": "soon"}):
        with pytest.raises(tf.MalformedAnswer):
            tf.access_token(bad)


def test_a_notif_token_is_checked_against_the_digest_only() -> None:
    kept = {"pay_token": "v1abc", tf.NOTIF_DIGEST: tf.digest("dd497bda3b250e536186fc0663f32f40")}
    assert tf.notification_authentic("dd497bda3b250e536186fc0663f32f40", kept)
    assert not tf.notification_authentic("dd497bda3b250e536186fc0663f32f41", kept)
    assert not tf.notification_authentic(None, kept)
    assert not tf.notification_authentic("dd497bda3b250e536186fc0663f32f40", None)
    assert not tf.notification_authentic("dd497bda3b250e536186fc0663f32f40", {"pay_token": "v1abc"})


def test_a_status_answer_for_another_order_is_not_trusted() -> None:
    with pytest.raises(tf.MalformedAnswer):
        tf.status_result({"status": "SUCCESS", "order_id": "pay_other"}, "pay_ours")


def test_live_mode_needs_its_country_and_sends_the_payment_s_currency() -> None:
    creds = {"client_id": "id", "client_secret": "secret", "merchant_key": "mk"}
    settings = OrangeSettings(test=creds, live=creds)
    test, live = settings.accounts().test, settings.accounts().live
    assert test is not None
    assert (test.country, test.currency, test.complete) == ("dev", "OUV", True)
    assert live is not None
    assert (live.country, live.currency, live.complete) == (None, None, False)
    live = OrangeSettings(live={**creds, "country": "ci"}).accounts().live
    assert live is not None
    assert live.complete
    assert (
        settings.api_url("ci", "webpayment") == "https://api.orange.com/orange-money-webpay/ci/v1/webpayment"
    )
    assert "secret" not in repr(test)
    assert "'mk'" not in repr(test)


def test_a_stored_notification_keeps_no_notif_token_and_names_the_url_s_order() -> None:
    body = {"status": "SUCCESS", "notif_token": "dd497bda3b250e536186fc0663f32f40", "txnid": "MP1.2.A3"}
    payload, token = tf.stored_payload(body, "pay_01abc")
    assert (payload, token) == (
        {"status": "SUCCESS", "txnid": "MP1.2.A3", "order_id": "pay_01abc"},
        "dd497bda3b250e536186fc0663f32f40",
    )
    event = tf.interpret(payload)
    assert (event.event_id, event.event_type, event.payment_id) == (
        "pay_01abc:MP1.2.A3:SUCCESS",
        "webpayment.success",
        "pay_01abc",
    )
    assert event.result is not None
    assert event.result.status == "succeeded"
    assert event.proof is None  # the adapter adds it to the event it verifies, never to the payload
    # A body naming another order than its URL, or a URL naming none, is not read.
    with pytest.raises(WebhookPayloadError):
        tf.stored_payload({**body, "order_id": "pay_other"}, "pay_01abc")
    with pytest.raises(WebhookPayloadError):
        tf.stored_payload(body, "pay/../x")
    # A status we do not know is stored and moves nothing.
    assert tf.interpret({"status": "REVERSED", "order_id": "pay_01abc"}).result is None
