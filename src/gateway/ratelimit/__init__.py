"""Rate limits in the shared Redis: `limits`' moving window (script.py), decided by a process
alone where the answer cannot be no (limiter.py)."""

from gateway.ratelimit.limiter import Check, Granted, Quota, RateLimiter

__all__ = ["Check", "Granted", "Quota", "RateLimiter"]
