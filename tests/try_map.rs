//! `try_map` returns all results in order, or the error that was produced,
//! and stops early: after an error, the chunks not yet started are skipped;
//! a panic wins over an error.
//! Every test runs under a watchdog, so a hang fails it.

mod common;

use common::{custom, payload_code, quiet_expected_panics, spin, wait_for, watchdog};
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::{self, ThreadId};
use std::time::Duration;
use stealpool::Pool;

/// A hang fails the test instead of waiting for CI's global timeout.
const WATCHDOG_SECS: u64 = 60;

#[test]
fn try_map_returns_all_results_in_order() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            for len in common::sample_sizes() {
                let input: Vec<u64> = (0..len as u64).collect();
                let out: Result<Vec<u64>, String> = pool.try_map(&input, |&x| Ok(x * 7));
                let out = out.unwrap();
                assert_eq!(out.len(), len);
                assert!(out.iter().enumerate().all(|(i, &y)| y == i as u64 * 7));
            }
        }
    });
}

/// Runs `attempt` (which returns how many items ran) up to five times until
/// one run stays under `bound`, and returns every count seen. Chunks already
/// running when the error comes still finish, so a thread preempted just
/// before its error lets the others go on: any single run may legitimately
/// run many items, but a pool that does stop early does so in some run.
fn counts_until_below(bound: usize, mut attempt: impl FnMut() -> usize) -> Vec<usize> {
    let mut counts = Vec::new();
    for _ in 0..5 {
        counts.push(attempt());
        if counts.last() < Some(&bound) {
            break;
        }
    }
    counts
}

/// An error at item 10 of a million cheap items: the error comes back, and
/// most of the items were never looked at.
#[test]
fn try_map_stops_early_after_an_error() {
    watchdog(WATCHDOG_SECS, || {
        let len = 1_000_000;
        let input: Vec<u32> = (0..len as u32).collect();
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            let counts = counts_until_below(len / 2, || {
                let calls = AtomicUsize::new(0);
                let out: Result<Vec<u32>, String> = pool.try_map(&input, |&x| {
                    calls.fetch_add(1, Ordering::Relaxed);
                    if x == 10 {
                        Err(format!("bad item {x}"))
                    } else {
                        Ok(x)
                    }
                });
                assert_eq!(out, Err("bad item 10".to_owned()), "{threads} threads");
                calls.into_inner()
            });
            assert!(
                counts.iter().any(|&calls| calls < len / 2),
                "{threads} threads: items run after an error at item 10 of {len}: {counts:?}"
            );
        }
    });
}

/// The same with items slow enough that the workers are busy when the error
/// comes: at item 10 (most items are skipped) and at item 2000 (with guided
/// chunks, the chunks in flight can cover about half of what is left, but
/// not everything).
#[test]
fn try_map_stops_early_with_workers_busy() {
    watchdog(WATCHDOG_SECS, || {
        let len = 20_000;
        let input: Vec<usize> = (0..len).collect();
        for threads in [2, 4] {
            let pool = Pool::new(threads).unwrap();
            for (bad, bound) in [(10, len / 2), (2000, len)] {
                let counts = counts_until_below(bound, || {
                    let calls = AtomicUsize::new(0);
                    let out: Result<Vec<usize>, usize> = pool.try_map(&input, |&x| {
                        calls.fetch_add(1, Ordering::Relaxed);
                        spin(Duration::from_micros(1));
                        if x == bad {
                            Err(x)
                        } else {
                            Ok(x)
                        }
                    });
                    assert_eq!(out, Err(bad));
                    calls.into_inner()
                });
                assert!(
                    counts.iter().any(|&calls| calls < bound),
                    "{threads} threads, error at {bad}: items run of {len}: {counts:?}"
                );
            }
        }
    });
}

/// With many failing items, the error returned is one of those produced.
#[test]
fn try_map_returns_an_error_that_was_produced() {
    watchdog(WATCHDOG_SECS, || {
        let len = 10_000;
        let input: Vec<usize> = (0..len).collect();
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            let out: Result<Vec<usize>, (usize, &str)> = pool.try_map(&input, |&x| {
                spin(Duration::from_nanos(200));
                if x % 1000 == 999 {
                    Err((x, "odd one out"))
                } else {
                    Ok(x)
                }
            });
            let (x, text) = out.expect_err("no error came back");
            assert_eq!(x % 1000, 999, "error {x} was never produced");
            assert_eq!(text, "odd one out");
        }
    });
}

/// An error in the last item, after everything else succeeded.
#[test]
fn try_map_error_at_the_last_item() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let input: Vec<usize> = (0..5000).collect();
        let out: Result<Vec<usize>, String> = pool.try_map(&input, |&x| {
            if x == 4999 {
                Err("last".to_owned())
            } else {
                Ok(x)
            }
        });
        assert_eq!(out, Err("last".to_owned()));
        // And the pool still works.
        let out: Result<Vec<usize>, String> = pool.try_map(&input, |&x| Ok(x + 1));
        assert_eq!(out.unwrap(), (1..5001).collect::<Vec<_>>());
    });
}

/// Which of the two happens first in [`panic_and_error_in_one_call`].
#[derive(Clone, Copy, Debug)]
enum First {
    Error,
    Panic,
}

/// What an item does in [`panic_and_error_in_one_call`].
enum Role {
    Error,
    Panic,
    Plain,
}

/// One `try_map` call on `pool`, made on the calling thread, in which an item
/// returns an error and another panics, in the order `first`; `Some` with
/// what the caller got (`Ok` the call's result, `Err` the panic's payload),
/// or `None` if the two could not be brought together in time.
///
/// An error stops the claims of new chunks, so the error and the panic meet
/// in one call only in chunks that run at once on different threads: the
/// first item after item 0 returns the error, the first item on another
/// thread panics, and each waits until the other is under way (and the
/// second until the first is done), so both happen, in that order. Item 0
/// is slow, so that the call asks for help at once.
fn panic_and_error_in_one_call(
    pool: &Pool,
    first: First,
) -> Option<std::thread::Result<Result<Vec<usize>, usize>>> {
    // The thread of the error item, and whether the panic item was chosen.
    let chosen: Mutex<(Option<ThreadId>, bool)> = Mutex::new((None, false));
    let flags = [(); 4].map(|()| AtomicBool::new(false));
    let [error_in, error_done, panic_in, panic_done] = &flags;
    let gave_up = AtomicBool::new(false);
    let timeout = Duration::from_secs(5);
    let input: Vec<usize> = (0..1000).collect();
    let result = catch_unwind(AssertUnwindSafe(|| {
        pool.try_map(&input, |&x| {
            if x == 0 {
                spin(Duration::from_micros(50));
                return Ok(x);
            }
            let me = thread::current().id();
            let role = match &mut *chosen.lock().unwrap() {
                (error_thread @ None, _) => {
                    *error_thread = Some(me);
                    Role::Error
                }
                (Some(error_thread), panic_chosen @ false) if *error_thread != me => {
                    *panic_chosen = true;
                    Role::Panic
                }
                _ => Role::Plain,
            };
            match role {
                Role::Error => {
                    error_in.store(true, Ordering::SeqCst);
                    let ready = wait_for(panic_in, timeout)
                        && (matches!(first, First::Error) || wait_for(panic_done, timeout));
                    if !ready {
                        gave_up.store(true, Ordering::SeqCst);
                        return Ok(x);
                    }
                    if matches!(first, First::Panic) {
                        // Let the panic be recorded first.
                        thread::sleep(Duration::from_millis(20));
                    }
                    error_done.store(true, Ordering::SeqCst);
                    Err(x)
                }
                Role::Panic => {
                    panic_in.store(true, Ordering::SeqCst);
                    let ready = wait_for(error_in, timeout)
                        && (matches!(first, First::Panic) || wait_for(error_done, timeout));
                    if !ready {
                        gave_up.store(true, Ordering::SeqCst);
                        return Ok(x);
                    }
                    if matches!(first, First::Error) {
                        // Let the error be recorded first.
                        thread::sleep(Duration::from_millis(20));
                    }
                    panic_done.store(true, Ordering::SeqCst);
                    panic_any(custom(7))
                }
                Role::Plain => Ok(x),
            }
        })
    }));
    if gave_up.load(Ordering::SeqCst) || !error_done.load(Ordering::SeqCst) {
        return None;
    }
    assert!(
        panic_done.load(Ordering::SeqCst),
        "the panicking item did not panic"
    );
    Some(result)
}

/// `try_map`'s docs: "a panic wins over an error". Calls in which one item
/// returned an error and another panicked (the error first, and the panic
/// first), on 2 and 4 threads, made from outside the pool and from one of
/// its workers: the caller gets the panic, with its payload, not the error.
///
/// (On a 1-thread pool the two never meet in one call: the caller runs the
/// items alone, in order, so whichever comes first ends the call before the
/// other item runs.)
#[test]
fn a_panic_wins_over_an_error() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        for threads in [2, 4] {
            let pool = Pool::new(threads).unwrap();
            for first in [First::Error, First::Panic] {
                for on_worker in [false, true] {
                    let what =
                        format!("{threads} threads, {first:?} first, on a worker: {on_worker}");
                    let mut attempts = 0;
                    let result = loop {
                        attempts += 1;
                        let result = if on_worker {
                            pool.apply(|| panic_and_error_in_one_call(&pool, first))
                        } else {
                            panic_and_error_in_one_call(&pool, first)
                        };
                        if let Some(result) = result {
                            break result;
                        }
                        assert!(
                            attempts < 5,
                            "{what}: the error and the panic never met in one call"
                        );
                    };
                    eprintln!("{what}: the error and the panic met in attempt {attempts}");
                    match result {
                        Err(payload) => assert_eq!(payload_code(&*payload), 7, "{what}"),
                        Ok(out) => panic!("{what}: the caller got {out:?}, not the panic"),
                    }
                }
            }
        }
    });
}
