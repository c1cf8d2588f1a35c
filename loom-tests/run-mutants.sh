#!/usr/bin/env bash
# Runs every mutant of the loom suite and checks that its model kills it.
#
# A mutant is a deliberately broken variant of the engine (or of the loom
# stand-in for crossbeam-deque), compiled in only with
# `--cfg stealpool_mutant="<name>"`. Each one runs in its own process (a loom
# deadlock can abort the process, so `#[should_panic]` could not catch it),
# with the same bounds as the suite, and must FAIL for the expected reason: a
# line of its output must match the expected pattern. The script fails if any
# mutant survives, times out, or fails for another reason.
#
# Usage: loom-tests/run-mutants.sh [mutant ...]   (default: all)
# Environment: LOOM_MAX_PREEMPTIONS and LOOM_MAX_BRANCHES as for the suite;
# MUTANT_TIMEOUT (seconds per mutant, default 300).
#
# The cfg reaches the stealpool library only, through loom-tests/mutant-rustc.sh
# (cargo's RUSTC_WORKSPACE_WRAPPER) and STEALPOOL_MUTANT: the dependencies
# keep the suite's RUSTFLAGS, so a mutant costs a rebuild of the two
# workspace crates (a few seconds), not of loom and its dependencies. By hand,
# `RUSTFLAGS='--cfg loom --cfg stealpool_mutant="<name>"'` does the same with
# a full build.
set -uo pipefail
cd "$(dirname "$0")/.."

# checker | name | model | expected failure (ERE, to the end of the line)
#
# checker loom: the model is a test in loom-tests/tests/models.rs; shuttle: a
# test in loom-tests/tests/shuttle_models.rs, for the mutants that need more
# threads than loom can explore.
MUTANTS='
loom    | deque_steal_unclaimed       | exactly_once                | exactly once: task [0-9] ran 2 times
loom    | sleep_check_before_announce | no_lost_wakeup              | deadlock; threads
loom    | sleep_no_fence              | no_lost_wakeup              | deadlock; threads
loom    | new_work_no_fence           | no_lost_wakeup              | deadlock; threads
loom    | gate_relaxed                | map_completion              | Causality violation
loom    | gate_relaxed                | panic_is_reraised           | Causality violation
loom    | panic_payload_lost          | panic_is_reraised           | panic: the caller got another payload
loom    | panic_skips_wait            | panic_is_reraised           | Causality violation|a job unwound out of the scheduler
loom    | shutdown_skips_drain        | shutdown_drains             | shutdown: a task queued before the drop did not run
loom    | latch_wake_no_fence         | nested_map                  | deadlock; threads
loom    | latch_relaxed               | join_both_paths             | Causality violation
loom    | take_back_skips_wait        | join_both_paths             | Causality violation|taken before it ran
loom    | baton_dropped               | burst_wakes_a_second_worker | deadlock; threads
loom    | baton_no_fence              | burst_wakes_a_second_worker | deadlock; threads
loom    | completion_takes_waiter     | imap_unordered_wakeups | deadlock; threads
loom    | scope_count_relaxed         | scope_waits_for_its_tasks | Causality violation
loom    | late_latch_take_first       | task_join_from_outside    | deadlock; threads
loom    | latch_wake_no_fence         | task_join_on_worker       | deadlock; threads
loom    | late_latch_take_first       | imap_in_order             | deadlock; threads
loom    | foreign_wake_wrong_pool     | cross_pool_wait           | deadlock; threads
loom    | latch_wake_no_fence         | cross_pool_wait           | deadlock; threads
loom    | submit_no_fence             | late_submit_races_close   | deadlock; threads
loom    | close_no_fence              | late_submit_races_close   | deadlock; threads
loom    | late_latch_relaxed          | task_is_finished_publishes | Causality violation
loom    | outside_waiter_parks_the_thread | calls_from_the_models_main_thread | assertion failed: state.notified
loom    | task_future_skips_recheck   | task_awaited_from_the_main_thread | deadlock; threads
loom    | waiter_runs_foreign         | nested_map                | isolation: a worker waiting on its inner map ran another call
loom    | waiters_never_poked         | callback_into_a_waiting_pool | deadlock; threads
loom    | waiter_skips_queues         | callback_into_a_waiting_pool | deadlock; threads
loom    | waiting_sleep_no_fence      | callback_into_a_waiting_pool | deadlock; threads
loom    | poke_no_fence               | poke_wakes_a_foreign_waiter | deadlock; threads
loom    | waiters_never_poked         | poke_wakes_a_foreign_waiter | deadlock; threads
loom    | set_aside_unannounced       | foreign_wait_sets_aside_its_scope_task | deadlock; threads
loom    | waiter_runs_foreign         | foreign_wait_sets_aside_its_scope_task | isolation: a foreign wait ran a task of the scope around it
loom    | calls_skip_pending_joins    | join_b_stays_out_of_a_foreign_wait | isolation: a foreign wait in a join.s .a. ran its .b.
loom    | wave_wakes_one              | wave_wakes_every_sleeper_it_needs | deadlock; threads
loom    | new_work_no_fence           | wave_wakes_every_sleeper_it_needs | deadlock; threads
shuttle | batch_not_announced         | burst_wakes_every_worker  | deadlock! blocked tasks
shuttle | close_skips_submitters      | imap_outlives_its_pool    | deadlock! blocked tasks
shuttle | exiting_worker_pushes       | exit_hook_work_runs_on_the_hook | deadlock! blocked tasks
shuttle | waiter_runs_foreign         | locks_held_across_nested_calls | tried to acquire a Mutex it already holds
shuttle | deep_waits_over_accept      | deep_waits_refuse_a_task_once | deep waits set the task aside
shuttle | nested_wait_forgets_below   | nested_foreign_waits_refuse_the_outer_loop | tried to acquire a Mutex it already holds
shuttle | foreign_wait_ignores_its_context | lock_across_a_task_join_on_another_pool | tried to acquire a Mutex it already holds
shuttle | set_aside_unannounced       | set_aside_job_reaches_an_idle_worker | deadlock! blocked tasks
shuttle | waiter_steals_once_per_victim | waiter_steals_past_refused_jobs | deadlock! blocked tasks
'

export RUSTC_WORKSPACE_WRAPPER="$PWD/loom-tests/mutant-rustc.sh"
export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true
export CARGO_TERM_COLOR=never
timeout_s="${MUTANT_TIMEOUT:-300}"
log_dir="target/mutants"
mkdir -p "$log_dir"

wanted=" $* "
survivors=()
total=0
while IFS='|' read -r checker name model expected; do
  name="$(echo "$name" | xargs)"
  model="$(echo "$model" | xargs)"
  expected="$(echo "$expected" | sed 's/^ *//; s/ *$//')"
  checker="$(echo "$checker" | xargs)"
  [ -z "$name" ] && continue
  case "$checker" in
    loom) export RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom; suite=models ;;
    shuttle) export RUSTFLAGS="--cfg shuttle" CARGO_TARGET_DIR=target/shuttle; suite=shuttle_models ;;
    *) echo "mutant $name: unknown checker $checker" >&2; exit 2 ;;
  esac
  if [ $# -gt 0 ] && [[ "$wanted" != *" $name "* ]]; then
    continue
  fi
  total=$((total + 1))
  log="$log_dir/$name.$model.log"
  export STEALPOOL_MUTANT="$name"
  if ! cargo test --release -q -p stealpool-loom-tests --test "$suite" --no-run >"$log" 2>&1; then
    echo "mutant $name: BUILD FAILED (see $log)"
    survivors+=("$name (build failed)")
    continue
  fi
  start=$(date +%s.%N)
  timeout "$timeout_s" cargo test --release -q -p stealpool-loom-tests --test "$suite" \
    -- --exact "$model" --nocapture >>"$log" 2>&1
  status=$?
  secs=$(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)")
  if ! grep -q "(mutant $name)" "$log"; then
    echo "mutant $name: the model did not run with the mutant compiled in (see $log)"
    survivors+=("$name (not compiled in)")
  elif [ "$status" -eq 0 ]; then
    echo "mutant $name: SURVIVED model $model (${secs} s)"
    survivors+=("$name")
  elif [ "$status" -eq 124 ]; then
    echo "mutant $name: TIMED OUT after ${timeout_s} s in model $model"
    survivors+=("$name (timeout)")
  elif grep -Eq -- "$expected" "$log"; then
    echo "mutant $name: killed by $model in ${secs} s ($(grep -Eo -m1 -- "$expected" "$log"))"
  else
    echo "mutant $name: model $model failed, but not with /$expected/ (see $log)"
    survivors+=("$name (unexpected failure)")
  fi
done <<<"$MUTANTS"

if [ "$total" -eq 0 ]; then
  echo "no such mutant: $*" >&2
  exit 2
fi
if [ ${#survivors[@]} -gt 0 ]; then
  echo "FAILED: ${#survivors[@]} of $total mutants not killed as expected: ${survivors[*]}" >&2
  exit 1
fi
echo "all $total mutants killed"
