#!/usr/bin/env bash
# rustc wrapper for loom-tests/run-mutants.sh (as RUSTC_WORKSPACE_WRAPPER, so
# cargo runs it for the workspace's own crates only): when STEALPOOL_MUTANT is
# set, it compiles the stealpool library with
# `--cfg stealpool_mutant="$STEALPOOL_MUTANT"`. The dependencies keep the
# suite's RUSTFLAGS, so every mutant reuses their build. (src/model_hooks.rs
# reads STEALPOOL_MUTANT with `option_env!`, which makes cargo rebuild the
# library whenever the variable changes.)
rustc="$1"
shift
if [ -n "${STEALPOOL_MUTANT:-}" ]; then
  prev=""
  for arg in "$@"; do
    if [ "$prev" = "--crate-name" ] && [ "$arg" = "stealpool" ]; then
      exec "$rustc" "$@" --cfg "stealpool_mutant=\"$STEALPOOL_MUTANT\""
    fi
    prev="$arg"
  done
fi
exec "$rustc" "$@"
