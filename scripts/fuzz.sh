#!/usr/bin/env bash
# Runs each fuzz target for a bounded time: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). cargo fuzz wants nightly features;
# RUSTC_BOOTSTRAP=1 lets the stable toolchain provide them. Without a sanitizer (safe Rust),
# with debug assertions (overflow checks) on. The committed corpus (fuzz/corpus/TARGET) seeds
# each run read-only; new inputs go to fuzz/new-corpus/TARGET (add the useful ones with
# `cargo fuzz cmin`). A crash leaves its input in fuzz/artifacts/TARGET and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(parse dispatch s2s)
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
    mkdir -p "fuzz/new-corpus/$t"
    echo "fuzz: $t for ${secs}s"
    log="fuzz/new-corpus/$t.log"
    status=0
    cargo fuzz run --sanitizer none -O -a "$t" "fuzz/new-corpus/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -max_len=4096 -print_final_stats=1 >"$log" 2>&1 || status=$?
    # libFuzzer's chatter stays in the log; its summary and any crash are shown.
    grep -E '^(#[0-9]+\s+DONE|stat::number_of_executed_units|thread .* panicked|SUMMARY|Failing input)|fuzz/artifacts' "$log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log"
        echo "fuzz: $t FAILED (exit $status)"
        exit 1
    fi
done
echo "fuzz: all targets clean"
