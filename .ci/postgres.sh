#!/usr/bin/env bash
# Install Debian's PostgreSQL server when it is missing, so the test of studies shared by
# several workers through a database (tests/test_studies.py) runs instead of skipping.
# The tests start their own throwaway server (one per test module, a fresh database per
# test, several worker processes against it); nothing is started or enabled here.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || command -v initdb > /dev/null; then
    exit 0
fi
if ! command -v apt-get > /dev/null; then
    echo "postgres.sh: no apt-get here; install PostgreSQL by hand (the test skips without it)" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo > /dev/null; then
        SUDO="sudo"
    else
        echo "postgres.sh: not root and no sudo; the PostgreSQL test will skip" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y postgresql
