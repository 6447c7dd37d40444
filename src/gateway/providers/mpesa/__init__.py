"""Safaricom M-Pesa Daraja (STK Push): adapter.py (I/O), transformers.py (pure), tokens.py (OAuth)."""
