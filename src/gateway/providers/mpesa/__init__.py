"""Safaricom M-Pesa Daraja (STK Push): adapter.py (I/O), transformers.py (requests and answers, pure),
callbacks.py (callbacks, pure), reversal.py (refunds through the Reversal API, pure), kept.py (what is
kept in Redis), settings.py."""
