"""The `gateway` command's sub-commands, one module per group (registered in gateway/cli.py)."""
