"""Paystack (api.paystack.co): redirect checkout, charges of saved cards, refunds, HMAC-SHA512 webhooks."""
