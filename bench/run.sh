#!/usr/bin/env bash
# The load benchmark in one command: builds doorman in release mode and prints the table.
# BENCH_SECONDS (default 5) and BENCH_CONNECTIONS (default 16) tune it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench load
