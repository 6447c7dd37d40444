"""The benchmark harness (`make bench`, `make profile`): not part of the product."""
