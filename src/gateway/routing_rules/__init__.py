"""A merchant's routing rules: which provider a payment made with `"provider": "auto"` goes to."""
