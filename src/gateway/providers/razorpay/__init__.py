"""Razorpay (api.razorpay.com): orders paid on Razorpay's Hosted Checkout, refunds, HMAC-SHA256 webhooks."""
