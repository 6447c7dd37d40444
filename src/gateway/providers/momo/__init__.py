"""MTN MoMo Collection (docs/providers/momo.md): adapter.py does the I/O, transformers.py the mapping."""
