#!/usr/bin/env bash
# Compare Criterion benchmarks against a saved baseline; exit 1 on a regression beyond the
# threshold.
#
#   scripts/bench-compare.sh --save main                 # record a baseline named "main"
#   scripts/bench-compare.sh --baseline main --threshold 5 [-- <criterion args>]
#
# A benchmark regresses when its mean time grew by more than THRESHOLD percent and Criterion's
# confidence interval for the change lies entirely above zero (so noise alone does not fail).
set -euo pipefail
cd "$(dirname "$0")/.."

THRESHOLD=5
BASELINE=""
SAVE=""
BENCHES=(--bench protocol --bench core)
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --threshold) THRESHOLD=$2; shift 2 ;;
    --baseline) BASELINE=$2; shift 2 ;;
    --save) SAVE=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench-compare: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -n "$SAVE" ]; then
  cargo bench "${BENCHES[@]}" -- --save-baseline "$SAVE" "${EXTRA[@]}"
  echo "bench-compare: baseline '$SAVE' saved"
  exit 0
fi
[ -n "$BASELINE" ] || { echo "bench-compare: give --baseline NAME (or --save NAME)" >&2; exit 2; }

# Stale comparisons from an earlier run must not count.
find target/criterion -path '*/change/estimates.json' -delete 2>/dev/null || true
cargo bench "${BENCHES[@]}" -- --baseline "$BASELINE" "${EXTRA[@]}"

python3 - "$THRESHOLD" <<'PY'
import json, pathlib, sys
threshold = float(sys.argv[1]) / 100
rows, bad = [], 0
for f in sorted(pathlib.Path("target/criterion").glob("**/change/estimates.json")):
    name = str(f.parent.parent.relative_to("target/criterion"))
    mean = json.loads(f.read_text())["mean"]
    change, lo, hi = mean["point_estimate"], mean["confidence_interval"]["lower_bound"], mean["confidence_interval"]["upper_bound"]
    verdict = "ok"
    if change > threshold and lo > 0:
        verdict = "REGRESSION"
        bad += 1
    elif change < -threshold and hi < 0:
        verdict = "faster"
    rows.append((name, change * 100, lo * 100, hi * 100, verdict))
if not rows:
    print("bench-compare: no comparisons found (was the baseline saved?)", file=sys.stderr)
    sys.exit(2)
w = max(len(r[0]) for r in rows)
for name, c, lo, hi, v in rows:
    print(f"{name:<{w}}  {c:+7.2f}%  [{lo:+.2f}%, {hi:+.2f}%]  {v}")
print(f"bench-compare: {bad} regression(s) beyond {threshold*100:.1f}% in {len(rows)} benchmarks")
sys.exit(1 if bad else 0)
PY
