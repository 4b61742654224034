#!/usr/bin/env bash
# Set everything up and run the demos on the embedded store (no servers needed): the model
# lifecycle (`ledger demo`), then the example pipeline on Ray (examples/iris/run.sh).
source "$(dirname "$0")/bootstrap.sh" examples  # no test tools: only what the demo runs
ledger demo "$@"
exec bash examples/iris/run.sh
