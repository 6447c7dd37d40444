"""The access-management API: the admin API, merchants' keys, their CLI."""
