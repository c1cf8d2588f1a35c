//! The window of `Pool::imap` and `Pool::imap_unordered`: the input is pulled
//! only by `next()` and at most a window ahead of the consumer, for a fixed
//! window and for the default one, which grows for cheap items within its
//! bound; `window(0)` panics. Everything that could hang runs under a
//! watchdog.

mod common;

use common::{counted_input, watchdog};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use stealpool::{Pool, DEFAULT_WINDOW_PER_THREAD, MAX_WINDOW_PER_THREAD};

const WATCHDOG_SECS: u64 = 60;

#[test]
fn imap_pulls_lazily_and_at_most_a_window_ahead() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            // The default window grows for cheap items, up to this.
            let default_window = MAX_WINDOW_PER_THREAD * threads;
            for window in [None, Some(1), Some(3), Some(50)] {
                let w = window.unwrap_or(default_window);
                // Several windows' worth of input, so that the bound binds:
                // a pool that ignored the window could run past it.
                let n = 2000.max(4 * w) as u64;
                let pulls = Arc::new(AtomicUsize::new(0));
                let iter = pool.imap(counted_input(n, &pulls), |x| x * 2);
                let iter = match window {
                    Some(w) => iter.window(w),
                    None => iter,
                };
                thread::sleep(Duration::from_millis(5));
                assert_eq!(pulls.load(Ordering::SeqCst), 0, "pulled before any next()");
                let mut consumed = 0usize;
                for v in iter {
                    assert_eq!(v, consumed as u64 * 2);
                    consumed += 1;
                    if consumed == 1 {
                        let pulled = pulls.load(Ordering::SeqCst);
                        assert!((1..=w).contains(&pulled), "{pulled} pulled, window {w}");
                    }
                    let pulled = pulls.load(Ordering::SeqCst);
                    assert!(
                        pulled <= consumed + w,
                        "{pulled} items pulled after {consumed} returned, window {w}"
                    );
                    if consumed % 100 == 0 {
                        // Give the pool time to run ahead, if it would.
                        thread::sleep(Duration::from_millis(1));
                        let pulled = pulls.load(Ordering::SeqCst);
                        assert!(pulled <= consumed + w, "pulled in the background");
                    }
                }
                assert_eq!(consumed, n as usize);
                assert_eq!(pulls.load(Ordering::SeqCst), n as usize);
            }
        }
    });
}

#[test]
fn imap_unordered_pulls_lazily_and_at_most_a_window_ahead() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            // The default window grows for cheap items, up to this.
            let default_window = MAX_WINDOW_PER_THREAD * threads;
            for window in [None, Some(1), Some(3), Some(50)] {
                let w = window.unwrap_or(default_window);
                // Several windows' worth of input, so that the bound binds:
                // a pool that ignored the window could run past it.
                let n = 2000.max(4 * w) as u64;
                let pulls = Arc::new(AtomicUsize::new(0));
                let iter = pool.imap_unordered(counted_input(n, &pulls), |x| x * 2);
                let iter = match window {
                    Some(w) => iter.window(w),
                    None => iter,
                };
                thread::sleep(Duration::from_millis(5));
                assert_eq!(pulls.load(Ordering::SeqCst), 0, "pulled before any next()");
                let mut seen = HashSet::new();
                for v in iter {
                    assert!(seen.insert(v), "{v} returned twice");
                    let pulled = pulls.load(Ordering::SeqCst);
                    assert!(
                        pulled <= seen.len() + w,
                        "{pulled} items pulled after {} returned, window {w}",
                        seen.len()
                    );
                }
                assert_eq!(seen.len(), n as usize);
            }
        }
    });
}

#[test]
fn the_default_window_grows_for_cheap_items_within_its_bound() {
    watchdog(WATCHDOG_SECS, || {
        let threads = 2;
        let pool = Pool::new(threads).unwrap();
        for unordered in [false, true] {
            let n = 50_000u64;
            let pulls = Arc::new(AtomicUsize::new(0));
            let input = counted_input(n, &pulls);
            let iter: Box<dyn Iterator<Item = u64>> = if unordered {
                Box::new(pool.imap_unordered(input, |x| x + 1))
            } else {
                Box::new(pool.imap(input, |x| x + 1))
            };
            let (mut consumed, mut most_ahead, mut sum) = (0usize, 0usize, 0u64);
            for v in iter {
                sum += v;
                consumed += 1;
                most_ahead = most_ahead.max(pulls.load(Ordering::SeqCst) - consumed);
            }
            assert_eq!(sum, n * (n + 1) / 2, "unordered: {unordered}");
            // Items of a few ns: batches of ~30 µs need far more than the
            // default 32 per thread in flight, and get them, but never more
            // than the bound.
            assert!(
                most_ahead > DEFAULT_WINDOW_PER_THREAD * threads,
                "the window never grew: at most {most_ahead} items ahead (unordered: {unordered})"
            );
            assert!(
                most_ahead <= MAX_WINDOW_PER_THREAD * threads,
                "{most_ahead} items ahead, past the bound (unordered: {unordered})"
            );
        }
    });
}

#[test]
#[should_panic(expected = "window must be at least 1")]
fn imap_window_zero_panics() {
    let pool = Pool::new(1).unwrap();
    let _ = pool.imap(0..10, |x: i32| x).window(0);
}

#[test]
#[should_panic(expected = "window must be at least 1")]
fn imap_unordered_window_zero_panics() {
    let pool = Pool::new(1).unwrap();
    let _ = pool.imap_unordered(0..10, |x: i32| x).window(0);
}
