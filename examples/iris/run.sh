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

echo "==> serving: convert to ONNX, deploy, score online with a canary split, run a batch job"
ledger job submit iris-train -p n_estimators=5 -p seed=11 --wait --reason "a challenger" > /dev/null
ledger model convert iris-classifier:1 --to onnx      # -> iris-classifier:3, checked for parity
ledger model convert iris-classifier:2 --to onnx      # -> iris-classifier:4
ledger endpoint create shop --kind online
ledger endpoint deploy shop blue iris-classifier:3 --cpus 0.25
ledger endpoint deploy shop green iris-classifier:4 --cpus 0.25
ledger endpoint traffic shop blue=90 green=10 --reason canary
ledger endpoint score shop --input '[[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]'
ledger endpoint create nightly --kind batch
ledger endpoint deploy nightly main iris-classifier:3 --cpus 0.5 --replicas 2
ledger endpoint traffic nightly main=100
ledger endpoint invoke nightly --input "$here/iris.csv" --mini-batch-size 50 --wait \
    --out "$home/predictions.parquet"

echo "==> monitoring: shop/blue collects what it answers; a monitor compares it with the training data"
ledger endpoint collect shop blue --sampling-rate 1.0 --reason "watch production"
ledger monitor create shop-drift --endpoint shop --deployment blue --reference data:iris:1 \
    --features sepal_length,sepal_width,petal_length,petal_width --min-samples 50
# The iris rows as JSON, their petals SHIFT cm longer, REPEAT times over.
rows() { python3 -c 'import csv, json, sys
rows = [[float(r[k]) for k in ("sepal_length", "sepal_width", "petal_length", "petal_width")]
        for r in csv.DictReader(open(sys.argv[1]))]
print(json.dumps([[a, b, c + float(sys.argv[2]), d] for a, b, c, d in rows] * int(sys.argv[3])))
' "$here/iris.csv" "$1" "$2"; }
ledger endpoint score shop --deployment blue --input "$(rows 0 1)" > /dev/null
ledger monitor run shop-drift --current      # the training rows themselves: no drift
ledger endpoint score shop --deployment blue --input "$(rows 2.5 3)" > /dev/null
ledger monitor run shop-drift --current      # petals 2.5 cm longer: DriftDetected
ledger monitor history shop-drift
echo "==> explore: LEDGER_HOME=$LEDGER_HOME ledger job show $job"
