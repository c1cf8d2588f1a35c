#!/usr/bin/env bash
# The 16-core run of issue 15, for the lent device machine: the engine
# before and after a change, side by side, in under 8 minutes. Needs no
# registry: it runs the binaries benches/device-prepare.sh built.
#
# Usage: bash benches/device.sh [DIR]   (DIR: default target/device)
# Writes JSON lines (the compare runner's --json rows) and text logs to
# $OUT (default target/device/out): ceiling.txt first (the machine's own
# ceiling: short bursts), then per thread count 1, 2, 4, 8, 16, for each
# group of workloads, old then new then old then new (interleaved, so that
# a drift of the machine shows in both). Import the rows here with
#   cargo bench --bench compare -- --import OUT/new-*.jsonl --write-docs
set -uo pipefail
dir="$(cd "${1:-target/device}" && pwd)" || exit 1
out="${OUT:-$dir/out}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cd "$(dirname "$0")"   # the runners read benches/-relative paths
cat "$dir/revs" > "$out/revs" 2>/dev/null
nproc > "$out/nproc"
start=$SECONDS
# Seconds left of the 8-minute plan (DEVICE_SECONDS, default 470, for a
# smoke test here); a step that would overrun is skipped.
left() { echo $(( ${DEVICE_SECONDS:-470} - (SECONDS - start) )); }

# 1. The machine's ceiling, short bursts (one run, ~40 s at most).
timeout 60 "$dir/new/ceiling" 20 > "$out/ceiling.txt" 2>&1

# 2. Maps, fork-join and tick, per thread count, old and new interleaved:
# a first pass over every thread count (16 first: the rows the issue lacks),
# then a second pass while time is left. Only the systems the targets
# name run (seq is timed for the efficiencies; chili for tree-sum).
groups=(
  "uniform,skewed,skewed-rare,nested,seq,stealpool,rayon"
  "fib-join,tree-sum-24,seq,stealpool,rayon,chili"
  "tick,seq,stealpool,rayon,polling"
)
for pass in 1 2; do
  for threads in 16 8 4 2 1; do
    for group in "${groups[@]}"; do
      for engine in old new; do
        budget=$(left)
        if [ "$budget" -lt 15 ]; then
          echo "skipped: $engine $group at $threads threads (time)" >> "$out/skipped.txt"
          continue
        fi
        limit=$(( budget < 60 ? budget : 60 ))
        timeout "$limit" "$dir/$engine/compare" --json --threads "$threads" \
          --rounds 7 --warmup 1 --only "$group" \
          >> "$out/$engine-$threads.jsonl" 2>> "$out/$engine-$threads.log"
        echo "$engine $threads $group pass $pass: rc $? at $((SECONDS - start)) s" >> "$out/steps.txt"
      done
    done
  done
done
echo "done in $((SECONDS - start)) s" >> "$out/steps.txt"
cat "$out/steps.txt"
