//! `Pool::imap` and `Pool::imap_unordered`: input order (and the same multiset
//! for the unordered variant) over 0, 1, 10 and 10 000 items (the window's
//! bounds are in `imap_window.rs`); dropping the iterator early (prompt, skips work not started, drops every
//! result once); panics of `f` and of the input iterator re-raised in turn;
//! an iterator that outlives its pool; use from inside a worker;
//! and, in its own section at the end, bounded memory over millions of items.
//! Everything that could hang runs under a watchdog.

mod common;

use common::{
    counted_input, custom, payload_code, quiet_expected_panics, status_bytes, watchdog, DropCount,
};
use std::collections::HashSet;
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};
use stealpool::{current_thread_index, Pool, DEFAULT_WINDOW_PER_THREAD};

/// The watchdog's limit: a minute, five under valgrind (`.ci/memcheck` sets
/// `STEALPOOL_UNDER_VALGRIND=1`), where threads run one at a time 20-50 times
/// slower and `imap_unordered_yields_the_same_multiset` alone took 36 s.
static WATCHDOG_SECS: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
    if std::env::var_os("STEALPOOL_UNDER_VALGRIND").is_some_and(|v| v == "1") {
        300
    } else {
        60
    }
});

/// The memory test at the end runs alone: every other test holds this lock
/// shared, the memory test exclusively, so that the resident set it measures
/// is its own.
static MEMORY_LOCK: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    MEMORY_LOCK.read().unwrap_or_else(PoisonError::into_inner)
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    MEMORY_LOCK.write().unwrap_or_else(PoisonError::into_inner)
}

/// A little uneven work, so that items complete out of order.
fn uneven(x: u64) -> u64 {
    let start = Instant::now();
    let micros = (x * 7919) % 13;
    while start.elapsed() < Duration::from_micros(micros) {
        std::hint::spin_loop();
    }
    x * 3 + 1
}

// --------------------------------------------------------------- order ---

#[test]
fn imap_keeps_input_order() {
    let _memory = shared();
    watchdog(*WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            for n in [0u64, 1, 10, 10_000] {
                let expected: Vec<u64> = (0..n).map(|x| x * 3 + 1).collect();
                let out: Vec<u64> = pool.imap(0..n, uneven).collect();
                assert_eq!(out, expected, "n = {n}, {threads} threads, default window");
                for window in [1, 7] {
                    let out: Vec<u64> = pool.imap(0..n, uneven).window(window).collect();
                    assert_eq!(out, expected, "n = {n}, {threads} threads, window {window}");
                }
            }
            // Owned, non-Copy items and results.
            let words: Vec<String> = (0..500).map(|i| format!("w{i}")).collect();
            let out: Vec<String> = pool.imap(words.clone(), |w| w + "!").collect();
            let expected: Vec<String> = words.iter().map(|w| format!("{w}!")).collect();
            assert_eq!(out, expected);
        }
    });
}

#[test]
fn imap_unordered_yields_the_same_multiset() {
    let _memory = shared();
    watchdog(*WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            for n in [0u64, 1, 10, 10_000] {
                // Duplicates in the input: a multiset, not a set.
                let mut expected: Vec<u64> = (0..n).map(|x| (x % 97) * 3 + 1).collect();
                expected.sort_unstable();
                for window in [None, Some(1), Some(7)] {
                    let iter = pool.imap_unordered((0..n).map(|x| x % 97), uneven);
                    let iter = match window {
                        Some(w) => iter.window(w),
                        None => iter,
                    };
                    let mut out: Vec<u64> = iter.collect();
                    out.sort_unstable();
                    assert_eq!(
                        out, expected,
                        "n = {n}, {threads} threads, window {window:?}"
                    );
                }
            }
        }
    });
}

/// Many unordered iterators drained one after the other by the same thread:
/// each `next()` that waits must be woken by the completion it waits for.
#[test]
fn imap_unordered_many_rounds_on_one_consumer_thread() {
    let _memory = shared();
    watchdog(*WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            for round in 0..6u64 {
                let mut out: Vec<u64> = pool.imap_unordered(0..3000u64, uneven).window(7).collect();
                out.sort_unstable();
                assert_eq!(
                    out,
                    (0..3000u64).map(|x| x * 3 + 1).collect::<Vec<_>>(),
                    "{threads} threads, round {round}"
                );
            }
        }
    });
}

#[test]
fn imap_over_an_endless_input() {
    let _memory = shared();
    watchdog(*WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let out: Vec<u64> = pool.imap(0u64.., |x| x * x).take(100).collect();
        assert_eq!(out, (0..100u64).map(|x| x * x).collect::<Vec<_>>());
        let mut out: Vec<u64> = pool.imap_unordered(0u64.., |x| x).take(100).collect();
        out.sort_unstable();
        assert_eq!(out.len(), 100);
        assert_eq!(
            out.iter().collect::<HashSet<_>>().len(),
            100,
            "duplicates: {out:?}"
        );
    });
}

// ---------------------------------------------------------- early drop ---

/// Takes 3 of 1000 items that take 100 ms each, then drops the iterator.
fn early_drop(unordered: bool) {
    let pool = Pool::new(2).unwrap();
    let window = DEFAULT_WINDOW_PER_THREAD * pool.threads();
    let calls = Arc::new(AtomicUsize::new(0));
    let pulls = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let f = {
        let calls = Arc::clone(&calls);
        let made = Arc::clone(&made);
        let dropped = Arc::clone(&dropped);
        move |x: u64| {
            calls.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(100));
            made.fetch_add(1, Ordering::SeqCst);
            DropCount(Arc::clone(&dropped), x)
        }
    };
    let input = counted_input(1000, &pulls);
    let start = Instant::now();
    let mut taken = Vec::new();
    if unordered {
        let mut iter = pool.imap_unordered(input, f);
        taken.extend(iter.by_ref().take(3).map(|d| d.1));
        let before_drop = Instant::now();
        drop(iter);
        let drop_time = before_drop.elapsed();
        assert!(
            drop_time < Duration::from_secs(2),
            "drop took {drop_time:?}"
        );
    } else {
        let mut iter = pool.imap(input, f);
        taken.extend(iter.by_ref().take(3).map(|d| d.1));
        assert_eq!(taken, [0, 1, 2]);
        let before_drop = Instant::now();
        drop(iter);
        let drop_time = before_drop.elapsed();
        assert!(
            drop_time < Duration::from_secs(2),
            "drop took {drop_time:?}"
        );
    }
    let before_pool_drop = Instant::now();
    drop(pool);
    let pool_drop_time = before_pool_drop.elapsed();
    let total = start.elapsed();
    let calls = calls.load(Ordering::SeqCst);
    let pulls = pulls.load(Ordering::SeqCst);
    eprintln!(
        "early drop (unordered: {unordered}): f called {calls} times, {pulls} pulled, \
         pool drop {pool_drop_time:?}, total {total:?}"
    );
    assert_eq!(taken.len(), 3);
    assert!(pulls <= 3 + window, "{pulls} items pulled for 3 returned");
    // The first `next()` filled the window (one-item batches while the cost
    // is unknown), so dozens of items were pulled; the workers ran the three
    // returned and the few started before the drop (two at a time, 100 ms
    // each), and skipped the rest: at most half of what was pulled ran,
    // unless the consumer was held up for over a second. (`calls <= pulls`
    // held whether or not anything was skipped.)
    assert!(
        pulls >= window,
        "{pulls} items pulled: the first next() did not fill the window of {window}"
    );
    assert!(
        calls <= pulls / 2,
        "f ran {calls} times on {pulls} items pulled: the items not started \
         when the iterator was dropped were not skipped"
    );
    assert!(
        pool_drop_time < Duration::from_secs(2),
        "the pool's drop ran the skipped items: {pool_drop_time:?}"
    );
    // Every result made, returned or not, is dropped exactly once.
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        made.load(Ordering::SeqCst),
        "results leaked or dropped twice"
    );
}

#[test]
fn dropping_imap_early_returns_promptly_and_skips_work() {
    let _memory = shared();
    watchdog(*WATCHDOG_SECS, || early_drop(false));
}

#[test]
fn dropping_imap_unordered_early_returns_promptly_and_skips_work() {
    let _memory = shared();
    watchdog(*WATCHDOG_SECS, || early_drop(true));
}

// -------------------------------------------------------------- panics ---

#[test]
fn a_panic_in_f_is_reraised_after_the_earlier_items() {
    let _memory = shared();
    quiet_expected_panics();
    watchdog(*WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            for window in [1, 4, 64] {
                let mut iter = pool
                    .imap(0..100u64, |x| {
                        if x == 37 {
                            panic_any(custom(37));
                        }
                        uneven(x)
                    })
                    .window(window);
                for x in 0..37 {
                    assert_eq!(iter.next(), Some(x * 3 + 1), "item {x} before the panic");
                }
                let err = catch_unwind(AssertUnwindSafe(|| iter.next()))
                    .expect_err("the panic of item 37 was lost");
                assert_eq!(payload_code(&*err), 37);
            }
            // The pool is still usable.
            assert_eq!(
                pool.imap(0..5u64, uneven).collect::<Vec<_>>(),
                [1, 4, 7, 10, 13]
            );
        }
    });
}

#[test]
fn a_panic_in_f_is_reraised_by_imap_unordered() {
    let _memory = shared();
    quiet_expected_panics();
    watchdog(*WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            let mut iter = pool
                .imap_unordered(0..100u64, |x| {
                    if x == 37 {
                        panic_any(custom(37));
                    }
                    x
                })
                .window(8);
            let mut seen = HashSet::new();
            let err = loop {
                match catch_unwind(AssertUnwindSafe(|| iter.next())) {
                    Ok(Some(x)) => assert!(seen.insert(x), "{x} twice"),
                    Ok(None) => panic!("the panic of item 37 was lost"),
                    Err(err) => break err,
                }
            };
            assert_eq!(payload_code(&*err), 37);
            assert!(!seen.contains(&37));
        }
    });
}

/// The numbers from 0, panicking when asked for `at`.
fn panicking_input(at: u64) -> impl Iterator<Item = u64> + Send + 'static {
    (0u64..).inspect(move |&i| {
        if i == at {
            panic_any(custom(1000 + at as u32));
        }
    })
}

#[test]
fn a_panic_of_the_input_is_reraised_after_the_items_before_it() {
    let _memory = shared();
    quiet_expected_panics();
    watchdog(*WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            for at in [0u64, 1, 20] {
                for window in [1, 3, 100] {
                    let mut iter = pool.imap(panicking_input(at), uneven).window(window);
                    for x in 0..at {
                        assert_eq!(iter.next(), Some(x * 3 + 1), "item {x} before the panic");
                    }
                    let err = catch_unwind(AssertUnwindSafe(|| iter.next()))
                        .expect_err("the input's panic was lost");
                    assert_eq!(payload_code(&*err), 1000 + at as u32);

                    let mut iter = pool
                        .imap_unordered(panicking_input(at), uneven)
                        .window(window);
                    let mut seen = HashSet::new();
                    for _ in 0..at {
                        let x = iter.next().expect("an item before the panic");
                        assert!(seen.insert(x), "{x} twice");
                    }
                    assert_eq!(seen, (0..at).map(|x| x * 3 + 1).collect::<HashSet<_>>());
                    let err = catch_unwind(AssertUnwindSafe(|| iter.next()))
                        .expect_err("the input's panic was lost (unordered)");
                    assert_eq!(payload_code(&*err), 1000 + at as u32);
                }
            }
        }
    });
}

// ----------------------------------------------------- pool interplay ---

/// Where each item's `f` ran: (item, worker index, thread).
type Places = Arc<Mutex<Vec<(u64, Option<usize>, thread::ThreadId)>>>;

fn recording(places: &Places) -> impl Fn(u64) -> u64 + Send + Sync + 'static {
    let places = Arc::clone(places);
    move |x| {
        thread::sleep(Duration::from_micros(200));
        places
            .lock()
            .unwrap()
            .push((x, current_thread_index(), thread::current().id()));
        x * 10
    }
}

#[test]
fn an_imap_outlives_its_pool() {
    let _memory = shared();
    watchdog(*WATCHDOG_SECS, || {
        const WINDOW: usize = 4;
        let consumer = thread::current().id();
        let places: Places = Arc::default();
        let pool = Pool::new(2).unwrap();
        let mut iter = pool.imap(0..100u64, recording(&places)).window(WINDOW);
        assert_eq!(iter.next(), Some(0));
        assert_eq!(iter.next(), Some(10));
        let before = Instant::now();
        drop(pool); // must not hang: it finishes the items already started
        assert!(before.elapsed() < Duration::from_secs(10));
        let rest: Vec<u64> = iter.collect();
        assert_eq!(rest, (2..100u64).map(|x| x * 10).collect::<Vec<_>>());
        let places = places.lock().unwrap();
        assert_eq!(places.len(), 100, "every item ran exactly once");
        for &(x, index, thread) in places.iter() {
            if x <= WINDOW as u64 {
                // Taken before the drop (the window, then one more).
                assert!(
                    index.is_some(),
                    "item {x} started on the pool ran elsewhere"
                );
            } else {
                assert_eq!(index, None, "item {x} ran on a worker after the drop");
                assert_eq!(thread, consumer, "item {x} did not run on the consumer");
            }
        }
    });
}

#[test]
fn an_imap_unordered_outlives_its_pool() {
    let _memory = shared();
    watchdog(*WATCHDOG_SECS, || {
        let places: Places = Arc::default();
        let pool = Pool::new(2).unwrap();
        let mut iter = pool.imap_unordered(0..100u64, recording(&places)).window(4);
        let mut out = vec![iter.next().unwrap(), iter.next().unwrap()];
        drop(pool);
        out.extend(iter);
        out.sort_unstable();
        assert_eq!(out, (0..100u64).map(|x| x * 10).collect::<Vec<_>>());
        assert_eq!(places.lock().unwrap().len(), 100);
    });
}

#[test]
fn imap_consumed_inside_a_worker() {
    let _memory = shared();
    watchdog(*WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            let out = pool.apply(|| pool.imap(0..1000u64, uneven).collect::<Vec<_>>());
            assert_eq!(out, (0..1000u64).map(|x| x * 3 + 1).collect::<Vec<_>>());
            let mut out =
                pool.apply(|| pool.imap_unordered(0..1000u64, uneven).collect::<Vec<_>>());
            out.sort_unstable();
            assert_eq!(out, (0..1000u64).map(|x| x * 3 + 1).collect::<Vec<_>>());
            // From a spawned task, with a window of 1.
            let pool = Arc::new(pool);
            let inner = Arc::clone(&pool);
            let out = pool
                .spawn(move || inner.imap(0..300u64, |x| x + 1).window(1).sum::<u64>())
                .join();
            assert_eq!(out, 300 * 301 / 2);
        }
    });
}

#[test]
fn imap_from_four_plain_threads_at_once() {
    let _memory = shared();
    watchdog(*WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        thread::scope(|s| {
            for t in 0..4u64 {
                let pool = &pool;
                s.spawn(move || {
                    let out: Vec<u64> = pool.imap(0..2000u64, move |x| x + t).collect();
                    assert_eq!(out, (0..2000u64).map(|x| x + t).collect::<Vec<_>>());
                });
            }
        });
    });
}

// ----------------------------------------------------- bounded memory ---
//
// This test takes `MEMORY_LOCK` exclusively: no other test of this file runs
// meanwhile, so the growth of the resident set measured here is its own.

#[test]
fn imap_over_millions_of_items_keeps_memory_bounded() {
    let _memory = exclusive();
    // An imap that buffered the input or the results would hold at least
    // n * item_bytes: 640 MB in release builds, 400 MB in debug ones.
    let (n, item_bytes) = if cfg!(debug_assertions) {
        (200_000u64, 2048usize)
    } else {
        (10_000_000u64, 64usize)
    };
    const LIMIT: u64 = 64 << 20;
    let (base, peak, hwm, elapsed) = watchdog(300, move || {
        let pool = Pool::new(2).unwrap();
        let base = status_bytes("VmRSS:");
        let mut peak = base;
        let start = Instant::now();
        let input = (0..n).map(move |i| vec![i as u8; item_bytes]);
        let mut count = 0u64;
        for (i, len) in pool.imap(input, |v| v.len() + v[0] as usize).enumerate() {
            assert_eq!(len, item_bytes + (i as u8) as usize);
            count += 1;
            if count % 10_000 == 0 {
                peak = peak.max(status_bytes("VmRSS:"));
                assert!(
                    peak - base.min(peak) < LIMIT,
                    "resident set grew by {} MiB after {count} items",
                    (peak - base) >> 20
                );
            }
        }
        assert_eq!(count, n);
        peak = peak.max(status_bytes("VmRSS:"));
        (base, peak, status_bytes("VmHWM:"), start.elapsed())
    });
    eprintln!(
        "imap over {n} items of {item_bytes} bytes in {elapsed:?}: VmRSS {} MiB before, \
         peak {} MiB (growth {} KiB); process VmHWM {} MiB",
        base >> 20,
        peak >> 20,
        (peak - base.min(peak)) >> 10,
        hwm >> 20
    );
    assert!(
        peak - base.min(peak) < LIMIT,
        "resident set grew by {} MiB",
        (peak - base) >> 20
    );
}
