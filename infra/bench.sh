#!/usr/bin/env bash
# Benchmarks of the Lambda functions against the local endpoint (moto):
# builds the release binaries (host architecture; the deployed ones are
# built for arm64 by cargo-lambda), then measures cold start to the first
# handled event, binary sizes and sweep throughput. Figures go to
# BENCHMARKS.md ("AWS functions").
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p collect-sweep -p collect-events -p collect-train
cargo bench -p collect-e2e --bench lambda
