"""Airtel Money Collections (USSD push): docs/providers/airtel.md."""
