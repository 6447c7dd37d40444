"""Flutterwave v3: hosted checkout, saved-card charges, verify, refunds and webhooks (see adapter.py)."""
