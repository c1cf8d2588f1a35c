#!/usr/bin/env bash
# The model checkers against the survivors of a cargo-mutants run (issue 20).
#
# tools/mutants.sh checks each mutant with the ordinary tests only. A mutant
# of the protocol files that they miss may still be caught by a loom or
# shuttle model of the same code; this script finds out. For every mutant
# the run left missed or timed out in the chosen files, it applies the
# mutant's diff (from the run's diff/ folder) to a scratch worktree of HEAD,
# runs the loom models and then the shuttle models (the suites of CI, same
# bounds), and prints which model failed first, or that none did.
#
# Usage: tools/mutants_models.sh DIR [FILE ...]
#   DIR   a cargo-mutants output folder (outcomes.json and diff/), e.g.
#         target/mutants/engine2-0-of-1/mutants.out
#   FILE  the source files whose survivors to check; default the protocol
#         files: src/sleep.rs src/latch.rs src/worker.rs
#         src/worker_thread.rs src/registry.rs src/job.rs
# Environment: MODELS_TIMEOUT (seconds per suite and mutant, default 900).
#
# A diff that no longer applies to HEAD (the file changed since the run) is
# reported as stale and skipped. Each suite's output is kept in
# target/mutants-models/<mutant>.<suite>.log.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
  sed -n '2,21p' "$0" >&2
  exit 2
fi
dir="$1"
shift
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  files=(src/sleep.rs src/latch.rs src/worker.rs src/worker_thread.rs src/registry.rs src/job.rs)
fi
timeout_s="${MODELS_TIMEOUT:-900}"
work="$PWD/target/mutants-models"
tree="$work/tree"
mkdir -p "$work"
if [ ! -d "$tree" ]; then
  git worktree add -q --detach "$tree" HEAD
fi
git -C "$tree" checkout -q --detach HEAD 2>/dev/null
git -C "$tree" reset -q --hard "$(git rev-parse HEAD)"

# The survivors: "name<TAB>file<TAB>diff path", one per line.
survivors=$(python3 - "$dir" "${files[@]}" <<'EOF'
import json, os, sys
folder, files = sys.argv[1], set(sys.argv[2:])
with open(os.path.join(folder, "outcomes.json")) as f:
    outcomes = json.load(f)["outcomes"]
for o in outcomes:
    s = o["scenario"]
    if not isinstance(s, dict) or "Mutant" not in s:
        continue
    m = s["Mutant"]
    if o["summary"] in ("MissedMutant", "Timeout") and m["file"] in files:
        print(f'{m["name"]}\t{m["file"]}\t{os.path.join(folder, o["diff_path"])}')
EOF
)
if [ -z "$survivors" ]; then
  echo "no missed or timed-out mutant in ${files[*]}"
  exit 0
fi

# Runs one suite of the mutated tree; prints the first model that failed
# (or the one running when the process died: a loom deadlock aborts it)
# and why.
run_suite() {
  local label="$1" log="$2"
  shift 2
  (cd "$tree" && timeout "$timeout_s" "$@") >"$log" 2>&1
  local status=$?
  if [ "$status" -eq 0 ]; then
    return 1
  fi
  if grep -q "could not compile" "$log"; then
    echo "$label: BUILD FAILED (see $log)"
    return 0
  fi
  local failed
  # libtest's closing list of failures, else the model running when the
  # process died.
  failed=$(awk '/^failures:$/ { list = 1; next } list && /^    [a-z0-9_]+$/ { print $1; exit }' "$log")
  if [ -z "$failed" ]; then
    failed=$(grep -Eo '^test [a-z0-9_]+ \.\.\.' "$log" | tail -1 | awk '{print $2}')
  fi
  # The first panic's message (the line after "panicked at"), or loom's
  # deadlock report.
  local why
  why=$(grep -A1 -m1 "panicked at" "$log" | tail -1 | cut -c1-100)
  if [ "$status" -eq 124 ]; then
    echo "$label ${failed:-?} (timed out after ${timeout_s} s)"
  else
    echo "$label ${failed:-?} (${why:-no message})"
  fi
  return 0
}

export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true CARGO_TERM_COLOR=never
while IFS=$'\t' read -r name file diff; do
  git -C "$tree" checkout -q -- .
  slug=$(echo "$name" | tr -c 'A-Za-z0-9_.\n' '_' | cut -c1-120)
  if ! patch -s -p0 -F0 "$tree/$file" <"$diff" >"$work/$slug.patch.log" 2>&1; then
    echo "STALE    $name (its diff does not apply to HEAD)"
    continue
  fi
  if verdict=$(RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$work/loom" run_suite loom \
    "$work/$slug.loom.log" \
    cargo test --release -p stealpool-loom-tests --test models -- --test-threads=1 --nocapture); then
    echo "CAUGHT   $name: $verdict"
  elif verdict=$(RUSTFLAGS="--cfg shuttle" CARGO_TARGET_DIR="$work/shuttle" run_suite shuttle \
    "$work/$slug.shuttle.log" \
    cargo test --release -p stealpool-loom-tests --test shuttle_models -- --test-threads=1 --nocapture); then
    echo "CAUGHT   $name: $verdict"
  else
    echo "MISSED   $name: every loom and shuttle model passed"
  fi
done <<<"$survivors"
git -C "$tree" checkout -q -- .
