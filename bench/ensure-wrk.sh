#!/bin/sh
# `make bench` and `make profile` need Debian's wrk (the HTTP load generator): install it if missing.
set -eu
command -v wrk >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "wrk is missing: installing Debian's wrk (apt-get install wrk)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    command -v wrk >/dev/null 2>&1 && exit 0
fi
cat >&2 <<'MSG'
wrk (the HTTP load generator the bench drives the gateway with) is not installed, and it can only be
installed automatically as root on Debian/Ubuntu. Install it, then run the bench again:
  Debian/Ubuntu:  sudo apt-get install -y wrk
  macOS:          brew install wrk
MSG
exit 1
