#!/usr/bin/env bash
# The load benchmark in one command: builds doorman in release mode and prints the table, with
# doorman's pages against a bare Rocket floor; servers pinned to core 0, load to core 1 (taskset).
# BENCH_SECONDS (default 5), BENCH_CONNECTIONS (default 16) and BENCH_PG_CONNECTIONS (default 64,
# for the PostgreSQL scenario g) tune it; BENCH_ONLY picks scenarios
# by letter; BENCH_BASELINE=<another doorman binary> runs b, c and g's JSON refresh on it too,
# taking turns.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --bench load
