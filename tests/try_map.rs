//! `try_map` returns all results in order, or the error that was produced,
//! and stops early: after an error, the chunks not yet started are skipped.
//! Every test runs under a watchdog, so a hang fails it.

mod common;

use common::{spin, watchdog};
use std::sync::atomic::{AtomicUsize, Ordering};
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
