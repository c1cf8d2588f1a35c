//! The inputs of the map family beyond a borrowed slice: index ranges, owned
//! vectors (each item moved into `f` once; on a failure, the items not yet
//! moved and the results made each dropped once), mutable slices (each
//! element handed out once), zero-sized items and empty or reversed ranges.

mod common;

use common::{quiet_expected_panics, sample_sizes, spin, watchdog, Counts, Tracked, EXPECTED};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use stealpool::Pool;

const THREADS: [usize; 3] = [1, 2, 4];

/// Every size from 0 to 10,000 over a range, an owned vector and a mutable
/// slice, on a 3-thread pool: results in input order.
#[test]
fn every_input_kind_keeps_order_at_every_size() {
    watchdog(300, || {
        let pool = Pool::new(3).unwrap();
        for len in 0..=10_000usize {
            let expected: Vec<usize> = (0..len).map(|i| i * 3).collect();
            assert_eq!(pool.map(0..len, |i| i * 3), expected, "range of {len}");
            let owned: Vec<usize> = (0..len).collect();
            assert_eq!(pool.map(owned, |i| i * 3), expected, "owned of {len}");
            let mut values: Vec<usize> = (0..len).collect();
            assert_eq!(
                pool.map(&mut values, |v| {
                    *v *= 3;
                    *v
                }),
                expected,
                "mutable slice of {len}"
            );
            assert_eq!(values, expected, "mutable slice of {len} written");
        }
    });
}

#[test]
fn a_range_gives_its_own_indices() {
    let pool = Pool::new(2).unwrap();
    assert_eq!(pool.map(5..9, |i| i), [5, 6, 7, 8]);
    let top = usize::MAX - 3..usize::MAX;
    assert_eq!(pool.map(top, |i| usize::MAX - i), [3, 2, 1]);
    let sum = pool.map_reduce(1..101, |i| i, || 0, |a, b| a + b);
    assert_eq!(sum, 5050);
}

#[test]
#[allow(clippy::reversed_empty_ranges)] // the point of the test
fn empty_and_reversed_ranges_run_nothing() {
    let pool = Pool::new(2).unwrap();
    let calls = AtomicUsize::new(0);
    let count = |i: usize| {
        calls.fetch_add(1, Ordering::Relaxed);
        i
    };
    assert!(pool.map(7..7, count).is_empty());
    assert!(pool.map(9..2, count).is_empty());
    pool.for_each(usize::MAX..0, |i| {
        count(i);
    });
    assert_eq!(pool.map_reduce(3..1, count, || 42, |a, b| a + b), 42);
    assert_eq!(calls.into_inner(), 0);
}

/// The longest range there is: the claims and the clean-up after a panic do
/// not overflow, and the call stops at once.
#[test]
fn a_range_of_usize_max_indices_stops_at_a_panic() {
    quiet_expected_panics();
    watchdog(60, || {
        let pool = Pool::new(2).unwrap();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            pool.for_each(0..usize::MAX, |_| panic!("{EXPECTED}"));
        }));
        assert!(caught.is_err());
        let caught = catch_unwind(AssertUnwindSafe(|| {
            pool.map_reduce(
                0..usize::MAX,
                |_| -> () { panic!("{EXPECTED}") },
                || (),
                |(), ()| (),
            )
        }));
        assert!(caught.is_err());
    });
}

#[test]
fn zero_sized_items_and_results() {
    let pool = Pool::new(2).unwrap();
    let units = vec![(); 1000];
    assert_eq!(pool.map(&units, |&()| 1u8).len(), 1000);
    assert_eq!(pool.map(units, |()| ()).len(), 1000);
    let mut units = [(); 64];
    pool.for_each(&mut units, |unit| *unit = ());
    assert_eq!(
        pool.map_reduce(vec![(); 5000], |()| 1, || 0, |a, b| a + b),
        5000
    );
}

/// The strings of an owned vector are moved into `f`, not cloned: the
/// results keep the very heap buffers of the input.
#[test]
fn owned_items_are_moved_not_copied() {
    let pool = Pool::new(2).unwrap();
    let words: Vec<String> = (0..1000).map(|i| format!("word {i}")).collect();
    let buffers: Vec<*const u8> = words.iter().map(|w| w.as_ptr()).collect();
    let out = pool.map(words, |mut w| {
        w.push('!');
        w
    });
    assert_eq!(out[7], "word 7!");
    // `push` may reallocate a full buffer; `format!` leaves spare room for
    // most, so compare only those that did not grow.
    let kept = out
        .iter()
        .zip(&buffers)
        .filter(|(w, &p)| w.as_ptr() == p)
        .count();
    assert!(kept > 0, "no output string kept its input buffer");
}

/// `&mut` elements are handed out once each, over `for_each`, `map`,
/// `map_init` and `try_map`.
#[test]
fn each_mutable_element_is_seen_once() {
    for threads in THREADS {
        let pool = Pool::new(threads).unwrap();
        for len in sample_sizes() {
            let mut seen = vec![0u32; len];
            pool.for_each(&mut seen, |s| *s += 1);
            pool.map(&mut seen, |s| *s += 1);
            pool.map_init(&mut seen, || (), |(), s| *s += 1);
            let ok: Result<Vec<()>, ()> = pool.try_map(&mut seen, |s| {
                *s += 1;
                Ok(())
            });
            assert!(ok.is_ok());
            let mut array = [0u8; 100];
            pool.for_each(&mut array, |a| *a += 1);
            assert!(array.iter().all(|&a| a == 1));
            assert!(
                seen.iter().all(|&s| s == 4),
                "{threads} threads, {len} items: {:?}",
                seen.iter().filter(|&&s| s != 4).count()
            );
        }
    }
}

/// A slow enough item that workers join in.
fn work() {
    spin(Duration::from_micros(2));
}

fn owned(counts: &Counts, len: usize) -> Vec<Tracked<'_>> {
    (0..len).map(|i| counts.make(i)).collect()
}

/// Owned inputs, with no failure: every item is moved into `f` and dropped
/// there (or returned), once.
#[test]
fn owned_items_are_each_dropped_once() {
    for threads in THREADS {
        let pool = Pool::new(threads).unwrap();
        for len in [0, 1, 100, 3000] {
            let inputs = Counts::default();
            let out = pool.map(owned(&inputs, len), |item| {
                work();
                item.value
            });
            assert_eq!(out, (0..len).collect::<Vec<_>>());
            assert_eq!(inputs.dropped(), len, "map: {threads} threads, {len} items");

            let kept = pool.map(owned(&inputs, len), |item| item);
            assert_eq!(inputs.dropped(), len, "map dropped an item it returned");
            drop(kept);
            assert_eq!(inputs.dropped(), 2 * len);

            pool.for_each(owned(&inputs, len), |_| work());
            let sum = pool.map_reduce(owned(&inputs, len), |item| item.value, || 0, |a, b| a + b);
            assert_eq!(sum, len * len.saturating_sub(1) / 2);
            assert_eq!(inputs.created(), 4 * len);
            assert_eq!(inputs.dropped(), 4 * len);
        }
    }
}

/// Owned inputs, with a panic (or an error) at one item: the items never
/// moved into `f` and the results already made are each dropped once, and
/// the panic is re-raised.
#[test]
fn a_failed_call_drops_the_items_it_never_moved() {
    quiet_expected_panics();
    watchdog(120, || {
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            // 10,000 items: blocks of 3 in `map_reduce`, so a panic can stop one part way.
            for len in [1, 100, 3000, 10_000] {
                let mut positions = vec![0, 1, len / 2, len - 1];
                positions.retain(|&at| at < len);
                positions.dedup();
                for at in positions {
                    let inputs = Counts::default();
                    let results = Counts::default();
                    let what = format!("{threads} threads, {len} items, failing at {at}");
                    let fails = |item: &Tracked<'_>| item.value == at;

                    let caught = catch_unwind(AssertUnwindSafe(|| {
                        pool.map(owned(&inputs, len), |item| {
                            work();
                            assert!(!fails(&item), "{EXPECTED}");
                            results.make(item.value)
                        })
                    }));
                    assert!(caught.is_err(), "map: {what}");
                    assert_eq!(inputs.dropped(), len, "map inputs: {what}");
                    assert_eq!(results.dropped(), results.created(), "map results: {what}");

                    let failed: Result<Vec<Tracked<'_>>, usize> =
                        pool.try_map(owned(&inputs, len), |item| {
                            work();
                            if fails(&item) {
                                Err(item.value)
                            } else {
                                Ok(results.make(item.value))
                            }
                        });
                    assert_eq!(failed.err(), Some(at), "try_map: {what}");
                    assert_eq!(inputs.dropped(), 2 * len, "try_map inputs: {what}");
                    assert_eq!(results.dropped(), results.created(), "try_map: {what}");

                    let caught = catch_unwind(AssertUnwindSafe(|| {
                        pool.for_each(owned(&inputs, len), |item| {
                            work();
                            assert!(!fails(&item), "{EXPECTED}");
                        })
                    }));
                    assert!(caught.is_err(), "for_each: {what}");
                    assert_eq!(inputs.dropped(), 3 * len, "for_each inputs: {what}");

                    let caught = catch_unwind(AssertUnwindSafe(|| {
                        pool.map_reduce(
                            owned(&inputs, len),
                            |item| {
                                work();
                                assert!(!fails(&item), "{EXPECTED}");
                                results.make(item.value)
                            },
                            || results.make(0),
                            |a, b| results.make(a.value + b.value),
                        )
                    }));
                    assert!(caught.is_err(), "map_reduce: {what}");
                    assert_eq!(inputs.dropped(), 4 * len, "map_reduce inputs: {what}");
                    assert_eq!(results.dropped(), results.created(), "map_reduce: {what}");
                    assert_eq!(inputs.created(), 4 * len);
                }
            }
        }
    });
}
