"""MTN MoMo Collection (shared/providers.md §5): adapter.py does the I/O, transformers.py the mapping."""
