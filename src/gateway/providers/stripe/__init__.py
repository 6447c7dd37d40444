"""Stripe: cards (and every method Stripe offers) through PaymentIntents and the official SDK."""
