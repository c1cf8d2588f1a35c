//! `Pool::in_worker` and `Worker::join`: every closure gets the worker it
//! runs on (the joining one, or the thief of a stolen `b`), results and
//! panics as with `Pool::join`, an unrun `b` dropped exactly once, and
//! `in_worker` from outside, from its own pool's workers (inline) and from
//! another pool's. Everything that could hang runs under a watchdog.

mod common;

use common::{custom, payload_code, quiet_expected_panics, wait_for, watchdog, DropCount};
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use stealpool::{current_thread_index, Pool, Worker};

const WATCHDOG_SECS: u64 = 60;

/// The handle names the thread it is used on.
fn check_handle(w: &Worker<'_>) {
    assert_eq!(
        Some(w.index()),
        current_thread_index(),
        "a closure got another thread's worker"
    );
}

/// Sums `lo..hi` with a join at every split, checking every handle.
fn sum(w: &Worker<'_>, lo: u64, hi: u64, halves: &AtomicUsize) -> u64 {
    check_handle(w);
    halves.fetch_add(1, Ordering::Relaxed);
    if hi - lo == 1 {
        return lo;
    }
    let mid = lo + (hi - lo) / 2;
    let (a, b) = w.join(|w| sum(w, lo, mid, halves), |w| sum(w, mid, hi, halves));
    a + b
}

#[test]
fn every_closure_gets_the_worker_it_runs_on() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            for n in [1u64, 2, 3, 1000, 1 << 16] {
                let halves = AtomicUsize::new(0);
                let total = pool.in_worker(|w| sum(w, 0, n, &halves));
                assert_eq!(total, n * (n - 1) / 2, "{threads} threads, n = {n}");
                // A tree with n leaves has 2n - 1 nodes, each visited once.
                assert_eq!(halves.load(Ordering::Relaxed), 2 * n as usize - 1);
            }
        }
    });
}

#[test]
fn a_stolen_b_gets_the_thief() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        for _ in 0..5 {
            // The first join of a job looks at the heartbeat clock at once,
            // and offers `b` to thieves if the worker's last beat is a
            // heartbeat (100 µs) old: let any beat of the previous round age.
            thread::sleep(Duration::from_millis(1));
            let b_started = AtomicBool::new(false);
            let (a_index, (b_index, b_thread)) = pool.in_worker(|w| {
                w.join(
                    |w| {
                        // Wait until the other worker took `b`.
                        assert!(
                            wait_for(&b_started, Duration::from_secs(20)),
                            "the idle worker never took b within 20 s"
                        );
                        w.index()
                    },
                    |w| {
                        b_started.store(true, Ordering::SeqCst);
                        (w.index(), current_thread_index())
                    },
                )
            });
            assert_eq!(Some(b_index), b_thread);
            assert_ne!(a_index, b_index, "b was not stolen");
        }
    });
}

#[test]
fn in_worker_runs_inline_on_its_own_pool_and_moves_from_elsewhere() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let other = Pool::new(1).unwrap();
        // From outside: on one of the pool's workers.
        let outer = pool.in_worker(|w| {
            check_handle(w);
            // From its own worker: inline, the same worker.
            let inner = pool.in_worker(|inner| inner.index());
            assert_eq!(inner, w.index());
            // From another pool's worker: moves over, blocking meanwhile.
            let across = other.in_worker(|o| {
                check_handle(o);
                o.index()
            });
            assert_eq!(across, 0);
            format!("{w:?}")
        });
        assert!(outer.starts_with("Worker { index: "), "{outer}");
    });
}

#[test]
fn a_panic_in_a_is_reraised_and_the_unrun_b_dropped_once() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(1).unwrap();
        let b_drops = Arc::new(AtomicUsize::new(0));
        let b_ran = AtomicBool::new(false);
        for round in 1..=10 {
            let owned = DropCount(Arc::clone(&b_drops), 0);
            let err = catch_unwind(AssertUnwindSafe(|| {
                pool.in_worker(|w| {
                    w.join(
                        |_| -> u32 { panic_any(custom(4)) },
                        |_| {
                            let _owned = owned;
                            b_ran.store(true, Ordering::SeqCst);
                            2u32
                        },
                    )
                })
            }))
            .expect_err("a's panic was lost");
            assert_eq!(payload_code(&*err), 4);
            // The only worker was busy with `a`, so `b` never started.
            assert!(!b_ran.load(Ordering::SeqCst), "b ran although a panicked");
            assert_eq!(
                b_drops.load(Ordering::SeqCst),
                round,
                "b leaked or dropped twice"
            );
        }
        assert_eq!(pool.in_worker(|w| w.join(|_| 1, |_| 2)), (1, 2));
    });
}

#[test]
fn a_panic_in_b_is_reraised_after_a_finished() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            let a_finished = AtomicBool::new(false);
            let err = catch_unwind(AssertUnwindSafe(|| {
                pool.in_worker(|w| {
                    w.join(
                        |_| {
                            thread::sleep(Duration::from_millis(20));
                            a_finished.store(true, Ordering::SeqCst);
                        },
                        |_| -> u32 { panic_any(custom(6)) },
                    )
                })
            }))
            .expect_err("b's panic was lost");
            assert_eq!(payload_code(&*err), 6);
            assert!(
                a_finished.load(Ordering::SeqCst),
                "re-raised before a finished"
            );
        }
    });
}
