"""Rate limits (#13): per key, per client address, shared by every replica through Redis."""
