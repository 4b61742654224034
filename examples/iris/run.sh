#!/usr/bin/env bash
# The example pipeline end to end: register the data and the pipeline, start a worker,
# run a job with a live progress view, then show the job, the model and its lineage.
#   examples/iris/run.sh [DIR]     the store goes in DIR/.ledger (default: a new temp dir)
# LEDGER_EXECUTOR picks the executor (default here: ray; `local` runs steps on threads).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
home="${1:-$(mktemp -d -t ledger-pipeline-XXXXXX)}"
export LEDGER_HOME="$home/.ledger"
export LEDGER_EXECUTOR="${LEDGER_EXECUTOR:-ray}"

echo "==> pipeline demo in $home (executor: $LEDGER_EXECUTOR)"
ledger data register iris "$here/iris.csv" --description "Fisher's iris measurements"
ledger pipeline register "$here/pipeline.yaml"
ledger pipeline show iris-train

ledger worker 2> "$home/worker.log" &
worker=$!
trap 'kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null || true' EXIT

ledger job submit iris-train -p n_estimators=200 --wait --reason "pipeline demo"
job=$(ledger job list -n 1 --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
ledger job logs "$job" --step register
ledger model show iris-classifier:1
ledger lineage model:iris-classifier:1
echo "==> explore: LEDGER_HOME=$LEDGER_HOME ledger job show $job"
