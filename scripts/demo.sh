#!/usr/bin/env bash
# Set everything up and run the lifecycle demo on the embedded store (no servers needed).
source "$(dirname "$0")/bootstrap.sh"
exec ledger demo "$@"
