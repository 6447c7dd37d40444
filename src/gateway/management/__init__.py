"""The API that manages access: the operator's admin API, merchants' keys, provider accounts, tokens."""
