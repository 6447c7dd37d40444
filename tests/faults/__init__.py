"""The fault suite: the money guarantees under killed and stopped processes (issue #12).

Every test here runs the gateway as real processes (`gateway serve`, `gateway worker`) against a
PostgreSQL and a Redis of the suite's own, which it kills, stops and restarts (processes.py), with
its peers on 127.0.0.1 (peers.py), counting every answer, row, event and provider call (counting.py).
"""
