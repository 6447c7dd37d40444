"""Stateful fakes of providers' HTTP APIs on a respx router, for drivers and provider tests."""
