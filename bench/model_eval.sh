#!/usr/bin/env bash
# The risk model on IBM's public late-payment sample, against scikit-learn.
#
# 1. `collect eval-ibm` (release build) converts the CSV to the data
#    contract, retrains monthly on what was known then (walk-forward), scores
#    every invoice still open 14 days before its due date, and exports each
#    month's exact feature matrices (train / valid / test rows, after
#    imputation) plus its own results to target/model-eval/.
# 2. bench/model_eval_sklearn.py fits scikit-learn's logistic regression and
#    random forest on the SAME rows and columns, month by month, and prints
#    the comparison table (target/model-eval/table.md) that goes into
#    BENCHMARKS.md.
#
# The CSV stays where it is (../shared/data); nothing is copied into the repo.
# Usage: bench/model_eval.sh [path/to/WA_Fn-UseC_-Accounts-Receivable.csv]
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${1:-../shared/data/WA_Fn-UseC_-Accounts-Receivable.csv}
OUT=target/model-eval
if [ ! -f "$DATA" ]; then
    echo "IBM's late-payment sample is not at $DATA" >&2
    exit 1
fi
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== Rust (smartcore) walk-forward"
cargo build --release -q -p collect-cli
./target/release/collect eval-ibm --data "$DATA" --export "$OUT" --contract-out "$OUT/contract" | tee "$OUT/rust.txt"

echo "== scikit-learn on the same rows"
if [ ! -x target/venv-eval/bin/python ]; then
    python3 -m venv target/venv-eval
fi
target/venv-eval/bin/pip install -q --disable-pip-version-check scikit-learn numpy
target/venv-eval/bin/python bench/model_eval_sklearn.py "$OUT"
echo "table: $OUT/table.md"
