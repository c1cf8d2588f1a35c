#!/usr/bin/env bash
# A mutation run over the engine with cargo-mutants (issue 20): every file
# under src/ except the loom stand-in deque and the model hooks, each mutant
# checked by a fast but broad selection of the tests (the unit tests and
# every integration test except the long stress, cross-pool and imap
# soaks). Not part of CI: a full run takes hours on 2 cores.
#
# Usage: tools/mutants.sh [--name NAME] [SHARD [SHARDS]] [-- extra args]
#   NAME          a label for the run (default "all"); results go to
#                 target/mutants/NAME-S-of-N.
#   SHARD/SHARDS  run one slice of the mutants (default 0 1: all of them).
#   extra args    passed to cargo-mutants, e.g. `-f src/input.rs` to mutate
#                 one file.
#   Runs resume: a second run of the same shard skips the mutants already
#   caught (cargo-mutants' --iterate) and retries the rest.
# Environment: MUTANTS_TIMEOUT (seconds per test run, default 300),
#   MUTANTS_NICE (niceness, default 10).
# The report: python3 tools/mutants_report.py target/mutants/*/mutants.out
set -euo pipefail
cd "$(dirname "$0")/.."

name=all
if [ "${1:-}" = "--name" ]; then
  name="$2"
  shift 2
fi
shard=0
shards=1
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  shard="$1"
  shift
fi
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  shards="$1"
  shift
fi
[ "${1:-}" = "--" ] && shift

if ! command -v cargo-mutants >/dev/null; then
  cargo install --locked cargo-mutants@27.1.0
fi

# The tests each mutant must get past. The soaks left out (stress,
# cross_pool, imap) take 20-70 s each and cover no code the others miss
# by much; the watchdogs in these tests turn a hang into a failure.
tests=(
  --lib
  --test apply_join --test build --test control --test drop_matrix --test formats
  --test hooks_global --test idle --test idle_poll --test imap_unordered_wakeup
  --test imap_window --test inputs --test isolation --test lifecycle
  --test map_drops --test map_init --test map_nested --test map_order
  --test map_panics --test map_reduce --test scope --test shutdown_faults
  --test spawn_task --test task_future --test try_map --test worker_join
)
# Every size from 0 to 10,000 (4 s) adds nothing per mutant that the
# sampled sizes of the other order tests miss.
skips=(-- --skip every_input_kind_keeps_order_at_every_size)
cargo_test_args=()
for arg in "${tests[@]}" "${skips[@]}"; do
  cargo_test_args+=(--cargo-test-arg="$arg")
done

# Every test watchdog fires within 45 s (tests/common: watchdog_secs; the
# unit tests that run the engine arm one for their process,
# src/test_watchdog.rs), well inside the timeout: a mutant that hangs a test
# fails it, and is caught; a timeout is left only for a hang outside any
# watchdog.
# The timeout of the whole test phase is longer than one watchdog: a
# mutant that hangs several tests of one binary fails each at its
# watchdog, two at a time (a mutant of the sleep protocol hung four tests
# of tests/apply_join.rs at 45 s each, and a 120 s timeout reported as a
# timeout what the watchdogs had already failed).
export STEALPOOL_WATCHDOG_SECS="${STEALPOOL_WATCHDOG_SECS:-45}"
# tests/isolation.rs repeats each pattern 30 times (10 of the 22 s that the
# selection takes); a mutant that breaks isolation hung the patterns at
# attempt 0 to 34 before isolation existed, mostly before 10. Ten here; a
# survivor in the isolation, heartbeat, sleep or worker_thread files is
# re-run with the full count before it counts as missed.
export STEALPOOL_ISOLATION_ATTEMPTS="${STEALPOOL_ISOLATION_ATTEMPTS:-10}"

out="target/mutants/${name}-${shard}-of-${shards}"
mkdir -p "$out"
# Resume from any earlier run of this name and shard, finished or not: an
# interrupted run leaves no outcomes.json, but its caught.txt (and the
# previously_caught.txt carried from the runs before it) are what
# --iterate reads.
iterate=()
if [ -f "$out/mutants.out/caught.txt" ] || [ -f "$out/mutants.out/previously_caught.txt" ]; then
  iterate=(--iterate)
fi
exec nice -n "${MUTANTS_NICE:-10}" cargo mutants \
  --package stealpool \
  --exclude 'src/deque/stand_in.rs' --exclude 'src/model_hooks.rs' \
  --shard "${shard}/${shards}" --sharding slice \
  --jobs 1 \
  --timeout "${MUTANTS_TIMEOUT:-300}" --build-timeout 600 \
  --output "$out" \
  "${iterate[@]}" \
  "${cargo_test_args[@]}" \
  "$@"
