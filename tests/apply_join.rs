//! `Pool::apply` and `Pool::join`: where the closures run, inline execution on
//! the pool's own workers, panic propagation (payloads, which panic wins, and
//! whether the other half ran), deep and fine-grained recursion on 1, 2 and
//! 4 threads, nesting with `map`, and many plain threads calling at once.
//! Everything that could hang runs under a watchdog.

mod common;

use common::{custom, payload_code, quiet_expected_panics, watchdog, EXPECTED};
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use stealpool::{current_thread_index, Pool};

const WATCHDOG_SECS: u64 = 60;

/// Waits (sleeping briefly) until `flag` is set; `false` after `timeout`.
fn wait_flag(flag: &AtomicBool, timeout: Duration) -> bool {
    let start = Instant::now();
    while !flag.load(Ordering::SeqCst) {
        if start.elapsed() > timeout {
            return false;
        }
        thread::sleep(Duration::from_micros(200));
    }
    true
}

/// Counts its drops: a value captured by a closure that may or may not run.
#[derive(Debug)]
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------- apply ---

#[test]
fn apply_runs_on_a_worker() {
    watchdog(WATCHDOG_SECS, || {
        assert_eq!(current_thread_index(), None, "the test thread is no worker");
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            for _ in 0..50 {
                let index = pool.apply(current_thread_index);
                match index {
                    Some(i) => assert!(i < threads, "index {i} of a {threads}-thread pool"),
                    None => panic!("apply ran its closure off the pool"),
                }
            }
            assert_eq!(current_thread_index(), None);
        }
    });
}

#[test]
fn apply_borrows_locals_and_returns_the_result() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let data: Vec<u64> = (1..=100).collect();
        let mut out = String::new();
        let sum = pool.apply(|| {
            out.push_str("written on a worker");
            data.iter().sum::<u64>()
        });
        assert_eq!(sum, 5050);
        assert_eq!(out, "written on a worker");
    });
}

#[test]
fn apply_inside_apply_runs_inline() {
    watchdog(WATCHDOG_SECS, || {
        // A 1-thread pool: an apply that queued its closure instead of running
        // it inline would wait for the only worker, itself.
        for threads in [1, 3] {
            let pool = Pool::new(threads).unwrap();
            let (outer, inner, outer_thread, inner_thread) = pool.apply(|| {
                let outer_thread = thread::current().id();
                let (inner, inner_thread) =
                    pool.apply(|| (current_thread_index(), thread::current().id()));
                (current_thread_index(), inner, outer_thread, inner_thread)
            });
            assert!(outer.is_some());
            assert_eq!(outer, inner, "nested apply moved to another worker");
            assert_eq!(outer_thread, inner_thread);
            // Three deep.
            let depth = pool.apply(|| pool.apply(|| pool.apply(|| 3)));
            assert_eq!(depth, 3);
        }
    });
}

/// A worker of one pool that calls `apply` on another pool waits as a
/// foreign worker: it may go to sleep in its own pool's slots, and the
/// other pool's worker that finishes the closure must wake it there (a
/// wake-up sent to the worker of the same index in the *setter's* pool
/// leaves it asleep). The closure sleeps long enough for the waiter to have
/// gone to sleep: 20 ms, doubled until it did (a slow machine, valgrind).
#[test]
fn apply_on_another_pool_wakes_the_waiting_worker() {
    watchdog(WATCHDOG_SECS, || {
        let a = Pool::new(1).unwrap();
        let b = Pool::new(1).unwrap();
        let mut pause = Duration::from_millis(20);
        loop {
            // A's only worker: a park counted during its wait is its own.
            let (got, slept) = a.apply(|| {
                let before = a.stats().parks;
                let got = b.apply(|| {
                    thread::sleep(pause);
                    7
                });
                (got, a.stats().parks > before)
            });
            assert_eq!(got, 7);
            if slept {
                break;
            }
            assert!(
                pause < Duration::from_secs(2),
                "the waiting worker never slept"
            );
            pause *= 2;
        }
    });
}

#[test]
fn apply_reraises_the_payload_and_the_pool_survives() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let err = catch_unwind(AssertUnwindSafe(|| {
            pool.apply(|| -> u32 { panic_any(custom(17)) })
        }))
        .expect_err("the panic of apply's closure was lost");
        assert_eq!(payload_code(&*err), 17);
        let err = catch_unwind(AssertUnwindSafe(|| {
            pool.apply(|| -> u32 { panic!("{EXPECTED}: string payload") })
        }))
        .expect_err("the panic of apply's closure was lost");
        assert_eq!(
            common::panic_message(&*err),
            Some(format!("{EXPECTED}: string payload").as_str())
        );
        // Nested: the inner (inline) apply's panic crosses the outer one.
        let err = catch_unwind(AssertUnwindSafe(|| {
            pool.apply(|| pool.apply(|| -> u32 { panic_any(custom(18)) }))
        }))
        .expect_err("the panic of a nested apply was lost");
        assert_eq!(payload_code(&*err), 18);
        // The pool still works, on both workers.
        for i in 0..100u32 {
            assert_eq!(pool.apply(move || i * 2), i * 2);
        }
        assert_eq!(pool.map(&[1, 2, 3], |x| x + 1), [2, 3, 4]);
    });
}

#[test]
fn apply_from_eight_plain_threads_at_once() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            let barrier = std::sync::Barrier::new(8);
            thread::scope(|s| {
                for t in 0..8u64 {
                    let pool = &pool;
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        for i in 0..500u64 {
                            let (value, index) =
                                pool.apply(move || (t * 1_000_000 + i, current_thread_index()));
                            assert_eq!(value, t * 1_000_000 + i);
                            assert!(index.is_some_and(|i| i < threads));
                        }
                        assert_eq!(current_thread_index(), None);
                    });
                }
            });
        }
    });
}

// ----------------------------------------------------------------- join ---

fn fib(pool: &Pool, n: u64) -> u64 {
    if n < 2 {
        return n;
    }
    let (a, b) = pool.join(|| fib(pool, n - 1), || fib(pool, n - 2));
    a + b
}

#[test]
fn join_fib_20_on_one_and_two_threads() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            assert_eq!(fib(&pool, 20), 6765, "fib(20) on {threads} thread(s)");
            // Started on a worker, too.
            assert_eq!(pool.apply(|| fib(&pool, 18)), 2584);
        }
    });
}

#[test]
fn join_from_outside_runs_both_halves_on_workers() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            let local = [1u32, 2, 3];
            let (a, b) = pool.join(
                || (current_thread_index(), local.len()),
                || (current_thread_index(), local.iter().sum::<u32>()),
            );
            assert_eq!(a.1, 3);
            assert_eq!(b.1, 6);
            assert!(
                a.0.is_some_and(|i| i < threads),
                "a ran off the pool: {a:?}"
            );
            assert!(
                b.0.is_some_and(|i| i < threads),
                "b ran off the pool: {b:?}"
            );
            assert_eq!(current_thread_index(), None);
        }
    });
}

/// Sums the leaves `lo..hi` with a join at every inner node; each leaf
/// increments its own slot of `hits` and each inner node counts its halves.
fn tree_sum(
    pool: &Pool,
    lo: usize,
    hi: usize,
    hits: &[AtomicU8],
    a_runs: &AtomicUsize,
    b_runs: &AtomicUsize,
) -> u64 {
    if hi - lo == 1 {
        hits[lo].fetch_add(1, Ordering::Relaxed);
        return lo as u64;
    }
    let mid = lo + (hi - lo) / 2;
    let (left, right) = pool.join(
        || {
            a_runs.fetch_add(1, Ordering::Relaxed);
            tree_sum(pool, lo, mid, hits, a_runs, b_runs)
        },
        || {
            b_runs.fetch_add(1, Ordering::Relaxed);
            tree_sum(pool, mid, hi, hits, a_runs, b_runs)
        },
    );
    left + right
}

#[test]
fn join_fine_grained_tree_runs_every_half_exactly_once() {
    watchdog(WATCHDOG_SECS, || {
        const LEAVES: usize = 1 << 16;
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            for round in 0..3 {
                let hits: Vec<AtomicU8> = (0..LEAVES).map(|_| AtomicU8::new(0)).collect();
                let a_runs = AtomicUsize::new(0);
                let b_runs = AtomicUsize::new(0);
                let sum = tree_sum(&pool, 0, LEAVES, &hits, &a_runs, &b_runs);
                let expected = (LEAVES as u64) * (LEAVES as u64 - 1) / 2;
                assert_eq!(sum, expected, "{threads} threads, round {round}");
                // A binary tree with LEAVES leaves has LEAVES - 1 inner nodes.
                assert_eq!(a_runs.load(Ordering::SeqCst), LEAVES - 1, "a runs");
                assert_eq!(b_runs.load(Ordering::SeqCst), LEAVES - 1, "b runs");
                let wrong: Vec<(usize, u8)> = hits
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (i, h.load(Ordering::Relaxed)))
                    .filter(|&(_, h)| h != 1)
                    .take(10)
                    .collect();
                assert!(wrong.is_empty(), "leaves not run exactly once: {wrong:?}");
            }
        }
    });
}

/// Leaves slow enough that heartbeats promote pending `b`s and idle workers
/// steal them: the stolen-`b` path, not only the inline one. A `b` counts as
/// stolen when it runs on another worker than the one that joined (an
/// unpromoted `b` always runs on its joiner). Every join runs on a worker
/// (the tree starts inside `apply`), so each has a joiner to compare with.
#[test]
fn join_with_slow_leaves_spreads_and_stays_correct() {
    fn slow_sum(pool: &Pool, lo: u64, hi: u64, stolen: &AtomicUsize) -> u64 {
        if hi - lo == 1 {
            // A join offers `b` only at a heartbeat (100 µs): leaves of
            // 20 µs leave pending joins to promote at every beat.
            let start = Instant::now();
            while start.elapsed() < Duration::from_micros(20) {
                std::hint::spin_loop();
            }
            return lo;
        }
        let mid = lo + (hi - lo) / 2;
        let joiner = current_thread_index().expect("a join of the tree ran off the pool");
        let (a, b) = pool.join(
            || slow_sum(pool, lo, mid, stolen),
            || {
                if current_thread_index() != Some(joiner) {
                    stolen.fetch_add(1, Ordering::Relaxed);
                }
                slow_sum(pool, mid, hi, stolen)
            },
        );
        a + b
    }
    watchdog(WATCHDOG_SECS, || {
        for threads in [2, 4] {
            let pool = Pool::new(threads).unwrap();
            let n = 8192u64;
            // Whether an idle worker gets to a promoted `b` before its
            // joiner takes it back depends on the OS scheduler (2 shared
            // cores): repeat the tree (for up to 30 s) until one is stolen.
            let start = Instant::now();
            let mut rounds = 0;
            let stolen = loop {
                rounds += 1;
                let stolen = AtomicUsize::new(0);
                let sum = pool.apply(|| slow_sum(&pool, 0, n, &stolen));
                assert_eq!(sum, n * (n - 1) / 2, "{threads} threads, round {rounds}");
                let stolen = stolen.into_inner();
                if stolen > 0 || start.elapsed() > Duration::from_secs(30) {
                    break stolen;
                }
            };
            eprintln!("slow join tree on {threads} threads: {stolen} b's stolen in round {rounds}");
            assert!(
                stolen > 0,
                "{threads} threads: no b ran on another worker than its joiner \
                 in {rounds} trees of {n} leaves of 20 µs"
            );
        }
    });
}

#[test]
fn join_panic_in_a_reraised_and_b_not_run_on_one_thread() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(1).unwrap();
        for _ in 0..20 {
            let b_ran = AtomicBool::new(false);
            let b_drops = Arc::new(AtomicUsize::new(0));
            let guard = DropCount(Arc::clone(&b_drops));
            let err = catch_unwind(AssertUnwindSafe(|| {
                pool.join(
                    || -> u32 { panic_any(custom(1)) },
                    || {
                        let _guard = &guard;
                        b_ran.store(true, Ordering::SeqCst);
                        2u32
                    },
                )
            }))
            .expect_err("a's panic was lost");
            assert_eq!(payload_code(&*err), 1);
            // The only worker was busy with `a`, so `b` had not started.
            assert!(
                !b_ran.load(Ordering::SeqCst),
                "b ran although a panicked first"
            );
            drop(guard);
            assert_eq!(b_drops.load(Ordering::SeqCst), 1);
        }
        // The same, nested inside a join on the worker.
        let b_ran = AtomicBool::new(false);
        let err = catch_unwind(AssertUnwindSafe(|| {
            pool.join(
                || {
                    pool.join(
                        || -> u32 { panic_any(custom(5)) },
                        || {
                            b_ran.store(true, Ordering::SeqCst);
                            0u32
                        },
                    )
                },
                || 7u32,
            )
        }))
        .expect_err("a nested a's panic was lost");
        assert_eq!(payload_code(&*err), 5);
        assert!(!b_ran.load(Ordering::SeqCst));
        assert_eq!(fib(&pool, 15), 610, "the pool is still usable");
    });
}

/// When `a` panics before `b` was offered to thieves, the unrun `b` (and
/// everything it owns) is dropped exactly once: the join keeps `b` in its
/// frame without a drop flag, so the unwinding path must drop it by hand.
#[test]
fn join_panic_in_a_drops_the_unrun_b_once() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(1).unwrap();
        let b_drops = Arc::new(AtomicUsize::new(0));
        for round in 1..=20 {
            let owned = DropCount(Arc::clone(&b_drops));
            let err = catch_unwind(AssertUnwindSafe(|| {
                pool.join(
                    || -> u32 { panic_any(custom(3)) },
                    move || {
                        let _owned = owned;
                        2u32
                    },
                )
            }))
            .expect_err("a's panic was lost");
            assert_eq!(payload_code(&*err), 3);
            assert_eq!(
                b_drops.load(Ordering::SeqCst),
                round,
                "b leaked or dropped twice"
            );
        }
    });
}

#[test]
fn join_panic_in_a_waits_for_a_stolen_b() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        for _ in 0..5 {
            let b_started = AtomicBool::new(false);
            let b_finished = AtomicBool::new(false);
            let stolen = AtomicBool::new(true);
            let err = catch_unwind(AssertUnwindSafe(|| {
                pool.join(
                    || -> u32 {
                        // `b` of an outermost join is offered at once; the
                        // idle worker should take it.
                        if !wait_flag(&b_started, Duration::from_secs(20)) {
                            stolen.store(false, Ordering::SeqCst);
                        }
                        panic_any(custom(2))
                    },
                    || {
                        b_started.store(true, Ordering::SeqCst);
                        thread::sleep(Duration::from_millis(100));
                        b_finished.store(true, Ordering::SeqCst);
                        3u32
                    },
                )
            }))
            .expect_err("a's panic was lost");
            assert!(
                stolen.load(Ordering::SeqCst),
                "the idle worker never took b within 20 s"
            );
            assert_eq!(payload_code(&*err), 2);
            assert!(
                b_finished.load(Ordering::SeqCst),
                "join re-raised a's panic before the stolen b had finished"
            );
        }
    });
}

#[test]
fn join_panic_in_b_reraised_after_a_finished() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            for _ in 0..10 {
                let a_finished = AtomicBool::new(false);
                let a_result_drops = Arc::new(AtomicUsize::new(0));
                let err = catch_unwind(AssertUnwindSafe(|| {
                    pool.join(
                        || {
                            thread::sleep(Duration::from_millis(20));
                            a_finished.store(true, Ordering::SeqCst);
                            DropCount(Arc::clone(&a_result_drops))
                        },
                        || -> u32 { panic_any(custom(3)) },
                    )
                }))
                .expect_err("b's panic was lost");
                assert_eq!(payload_code(&*err), 3);
                assert!(
                    a_finished.load(Ordering::SeqCst),
                    "re-raised before a finished"
                );
                assert_eq!(
                    a_result_drops.load(Ordering::SeqCst),
                    1,
                    "a's result must be dropped exactly once"
                );
            }
            assert_eq!(pool.join(|| 1, || 2), (1, 2));
        }
    });
}

#[test]
fn join_both_panic_a_wins() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        // b panics first, then a; and a first, then b: a's payload either way.
        for a_first in [false, true] {
            for _ in 0..3 {
                let b_started = AtomicBool::new(false);
                let a_panicking = AtomicBool::new(false);
                let b_panicking = AtomicBool::new(false);
                let stolen = AtomicBool::new(true);
                let err = catch_unwind(AssertUnwindSafe(|| {
                    pool.join(
                        || -> u32 {
                            if !wait_flag(&b_started, Duration::from_secs(20)) {
                                stolen.store(false, Ordering::SeqCst);
                            }
                            if !a_first {
                                wait_flag(&b_panicking, Duration::from_secs(20));
                                thread::sleep(Duration::from_millis(20));
                            }
                            a_panicking.store(true, Ordering::SeqCst);
                            panic_any(custom(10))
                        },
                        || -> u32 {
                            b_started.store(true, Ordering::SeqCst);
                            if a_first {
                                wait_flag(&a_panicking, Duration::from_secs(20));
                                thread::sleep(Duration::from_millis(20));
                            }
                            b_panicking.store(true, Ordering::SeqCst);
                            panic_any(custom(20))
                        },
                    )
                }))
                .expect_err("both halves panicked and nothing was re-raised");
                assert!(stolen.load(Ordering::SeqCst), "b was never stolen");
                assert!(b_panicking.load(Ordering::SeqCst));
                assert_eq!(
                    payload_code(&*err),
                    10,
                    "a's payload must win (a_first = {a_first})"
                );
            }
        }
        assert_eq!(fib(&pool, 12), 144, "the pool is still usable");
    });
}

#[test]
fn join_results_are_dropped_exactly_once() {
    watchdog(WATCHDOG_SECS, || {
        let drops = Arc::new(AtomicUsize::new(0));
        let pool = Pool::new(2).unwrap();
        for _ in 0..1000 {
            let (a, b) = pool.join(
                || DropCount(Arc::clone(&drops)),
                || DropCount(Arc::clone(&drops)),
            );
            drop((a, b));
        }
        assert_eq!(drops.load(Ordering::SeqCst), 2000);
    });
}

#[test]
fn join_nested_inside_map_and_map_inside_join() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            let input: Vec<u64> = (0..200).collect();
            // join inside map.
            let out = pool.map(&input, |&x| {
                let (f, d) = pool.join(|| fib(&pool, 10 + x % 5), || x * 2);
                f + d
            });
            let fibs = [55, 89, 144, 233, 377];
            let expected: Vec<u64> = input
                .iter()
                .map(|&x| fibs[(x % 5) as usize] + x * 2)
                .collect();
            assert_eq!(out, expected, "join in map, {threads} threads");

            // map inside join, from outside and from a worker.
            let run = || {
                pool.join(
                    || pool.map(&input, |x| x + 1),
                    || pool.map(&input, |&x| pool.join(|| x, || x).0 * 3),
                )
            };
            for (left, right) in [run(), pool.apply(run)] {
                assert_eq!(left, input.iter().map(|x| x + 1).collect::<Vec<_>>());
                assert_eq!(right, input.iter().map(|x| x * 3).collect::<Vec<_>>());
            }
        }
    });
}

#[test]
fn join_from_eight_plain_threads_at_once() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            thread::scope(|s| {
                for t in 0..8u64 {
                    let pool = &pool;
                    s.spawn(move || {
                        for i in 0..20u64 {
                            assert_eq!(
                                fib(pool, 12 + (t + i) % 3),
                                [144, 233, 377][((t + i) % 3) as usize]
                            );
                        }
                    });
                }
            });
        }
    });
}
