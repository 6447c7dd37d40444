"""PayPal Orders v2: approve redirect, capture by the gateway, refunds, webhooks verified by PayPal's API."""
