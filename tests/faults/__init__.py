"""The fault suite: the money guarantees under killed and stopped processes (issue #12).

Every test here runs the gateway as real processes (`gateway serve`, `gateway worker`) against a
PostgreSQL and a Redis of the suite's own, which it kills, stops and restarts; see harness.py.
"""
