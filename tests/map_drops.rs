//! Every input, result, error and panic payload is dropped exactly once:
//! after a successful call, after a call whose closure panics (once or many
//! times, on the caller and on the workers) and after a `try_map` that fails
//! in the middle. Every test runs under a watchdog, so a hang fails it.

mod common;

use common::{quiet_expected_panics, spin, watchdog, CountedPayload, Counts, Tracked, EXPECTED};
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use stealpool::Pool;

/// A hang fails the test instead of waiting for CI's global timeout.
const WATCHDOG_SECS: u64 = 60;

const THREADS: [usize; 3] = [1, 2, 4];

fn tracked_inputs(counts: &Counts, len: usize) -> Vec<Tracked<'_>> {
    (0..len).map(|i| counts.make(i)).collect()
}

/// A slow enough item that workers join in.
fn work() {
    spin(Duration::from_micros(2));
}

#[test]
fn successful_calls_drop_each_value_once() {
    watchdog(WATCHDOG_SECS, || {
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            for len in [0, 1, 100, 3000] {
                let inputs = Counts::default();
                let results = Counts::default();
                let input = tracked_inputs(&inputs, len);

                let out = pool.map(&input, |x| {
                    work();
                    results.make(x.value * 2)
                });
                assert_eq!(results.created(), len, "map: one result per item");
                assert_eq!(results.dropped(), 0, "map dropped a result it returned");
                assert!(out.iter().enumerate().all(|(i, r)| r.value == 2 * i));
                drop(out);
                assert_eq!(results.dropped(), len);

                let out = pool
                    .options()
                    .chunk_size(7)
                    .map(&input, |x| results.make(x.value));
                assert_eq!(results.created(), 2 * len);
                assert_eq!(results.dropped(), len);
                drop(out);
                assert_eq!(results.dropped(), 2 * len);

                let out: Result<Vec<Tracked<'_>>, ()> = pool.try_map(&input, |x| {
                    work();
                    Ok(results.make(x.value))
                });
                let out = out.unwrap();
                assert_eq!(out.len(), len);
                assert_eq!(results.created(), 3 * len);
                drop(out);
                assert_eq!(results.dropped(), 3 * len);

                assert_eq!(inputs.dropped(), 0, "a call dropped a borrowed input");
                drop(input);
                assert_eq!(inputs.created(), len);
                assert_eq!(inputs.dropped(), len, "inputs dropped once each");
            }
        }
    });
}

/// One panicking item, at the start, in the middle or at the end, with
/// expensive items so that several threads are producing results when it
/// happens: every result produced is dropped once, by the library.
#[test]
fn a_panic_drops_the_results_already_produced_once() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let len = 3000;
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            for bad in [0, 1, len / 2, len - 1] {
                let inputs = Counts::default();
                let results = Counts::default();
                let input = tracked_inputs(&inputs, len);

                for chunked in [false, true] {
                    let created_before = results.created();
                    let f = |x: &Tracked<'_>| {
                        work();
                        if x.value == bad {
                            panic!("{EXPECTED}: item {bad}");
                        }
                        results.make(x.value)
                    };
                    let caught = catch_unwind(AssertUnwindSafe(|| {
                        if chunked {
                            pool.options().chunk_size(16).map(&input, f)
                        } else {
                            pool.map(&input, f)
                        }
                    }));
                    let payload = caught.expect_err("the panic was not re-raised");
                    assert_eq!(
                        common::panic_message(&*payload),
                        Some(format!("{EXPECTED}: item {bad}").as_str())
                    );
                    let made = results.created() - created_before;
                    assert!(made < len, "a panicking call produced {made} results");
                    assert_eq!(
                        results.created(),
                        results.dropped(),
                        "{threads} threads, panic at {bad}, chunked {chunked}: \
                         results created != results dropped"
                    );
                }

                assert_eq!(inputs.dropped(), 0, "a panicking call dropped an input");
                drop(input);
                assert_eq!(inputs.dropped(), len);
            }
        }
    });
}

/// Many items panic, on every thread: the caller gets one payload; every
/// other payload, and every result, is dropped exactly once.
#[test]
fn many_panics_drop_every_payload_and_result_once() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let len = 4000;
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            let input: Vec<usize> = (0..len).collect();
            for every in [1, 3, 97] {
                let payloads = Arc::new(Counts::default());
                let results = Counts::default();
                let caught = catch_unwind(AssertUnwindSafe(|| {
                    pool.options().chunk_size(5).map(&input, |&i| {
                        work();
                        if i % every == every - 1 {
                            panic_any(CountedPayload::new(&payloads));
                        }
                        results.make(i)
                    })
                }));
                let payload = caught.expect_err("the panic was not re-raised");
                assert!(payload.is::<CountedPayload>(), "wrong payload type");
                assert!(payloads.created() >= 1);
                assert_eq!(
                    payloads.dropped(),
                    payloads.created() - 1,
                    "{threads} threads: the extra payloads must be dropped once each, \
                     and the one handed back not at all"
                );
                drop(payload);
                assert_eq!(payloads.dropped(), payloads.created());
                assert_eq!(
                    results.created(),
                    results.dropped(),
                    "{threads} threads, every {every}: results created != dropped"
                );
            }
        }
    });
}

/// `try_map` with an error in the middle: the results produced are dropped
/// once, and so is every error but the one returned.
#[test]
fn try_map_error_drops_results_and_extra_errors_once() {
    watchdog(WATCHDOG_SECS, || {
        let len = 5000;
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            let inputs = Counts::default();
            let input = tracked_inputs(&inputs, len);

            // One error, in the middle.
            let results = Counts::default();
            let errors = Counts::default();
            let out = pool.try_map(&input, |x| {
                work();
                if x.value == len / 2 {
                    Err(errors.make(x.value))
                } else {
                    Ok(results.make(x.value))
                }
            });
            let error = out.expect_err("try_map missed the error");
            assert_eq!(error.value, len / 2, "not the error produced");
            assert_eq!(errors.created(), 1);
            assert_eq!(results.created(), results.dropped(), "{threads} threads");
            assert_eq!(errors.dropped(), 0);
            drop(error);
            assert_eq!(errors.dropped(), 1);

            // Errors from the middle on, so that several threads may fail.
            let results = Counts::default();
            let errors = Counts::default();
            let out = pool.try_map(&input, |x| {
                work();
                if x.value >= len / 2 {
                    Err(errors.make(x.value))
                } else {
                    Ok(results.make(x.value))
                }
            });
            let error = out.expect_err("try_map missed the errors");
            assert!(error.value >= len / 2, "an error never produced");
            assert_eq!(results.created(), results.dropped(), "{threads} threads");
            assert_eq!(errors.dropped(), errors.created() - 1);
            drop(error);
            assert_eq!(errors.dropped(), errors.created());

            assert_eq!(inputs.dropped(), 0);
            drop(input);
            assert_eq!(inputs.dropped(), len);
        }
    });
}

/// A panic in `for_each` leaves the borrowed inputs alone. And it stops only
/// the chunk it hits: chunks are claimed in input order and each chunk that
/// does not panic runs to its end, so every item up to the panicking one
/// ran exactly once, and no item ran twice.
#[test]
fn for_each_panic_drops_no_input() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let len = 2000;
        let bad = 1500;
        let pool = Pool::new(2).unwrap();
        let inputs = Counts::default();
        let input = tracked_inputs(&inputs, len);
        let visits: Vec<AtomicUsize> = (0..len).map(|_| AtomicUsize::new(0)).collect();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            pool.for_each(&input, |x| {
                visits[x.value].fetch_add(1, Ordering::Relaxed);
                work();
                if x.value == bad {
                    panic!("{EXPECTED}: for_each");
                }
            })
        }));
        let payload = caught.expect_err("the panic was not re-raised");
        assert_eq!(
            common::panic_message(&*payload),
            Some(format!("{EXPECTED}: for_each").as_str())
        );
        let visits: Vec<usize> = visits.into_iter().map(AtomicUsize::into_inner).collect();
        if let Some(i) = (0..=bad).find(|&i| visits[i] != 1) {
            panic!(
                "item {i} (panic at {bad}) ran {} times, not once",
                visits[i]
            );
        }
        if let Some(i) = (bad..len).find(|&i| visits[i] > 1) {
            panic!("item {i} ran {} times", visits[i]);
        }
        assert_eq!(inputs.dropped(), 0);
        drop(input);
        assert_eq!(inputs.dropped(), len);
    });
}
