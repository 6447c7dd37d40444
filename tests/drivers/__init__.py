"""Provider drivers for the contract suite: how to make each provider answer each scenario.

Each module here defines `DRIVER`, an instance of a `Driver` subclass; tests/providers/test_contract.py
runs every scenario against every driver it finds.
"""
