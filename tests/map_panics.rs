//! A panic in the closure reaches the caller with its original payload
//! (`&str`, `String`, a custom struct), only once every chunk has stopped,
//! without running the chunks not yet started; the pool stays usable, even
//! after a thousand panicking calls. Every test runs under a watchdog, so a
//! hang fails it.

mod common;

use common::{panic_message, quiet_expected_panics, spin, watchdog, CustomPayload, EXPECTED};
use std::any::Any;
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use stealpool::Pool;

/// A hang fails the test instead of waiting for CI's global timeout.
const WATCHDOG_SECS: u64 = 60;

const THREADS: [usize; 3] = [1, 2, 4];

/// The four entry points, with a closure that panics by `boom(i)` for the
/// items where `bad(i)`.
fn each_entry_point(
    pool: &Pool,
    input: &[usize],
    bad: impl Fn(usize) -> bool + Sync,
    boom: impl Fn(usize) + Sync,
) -> Vec<Box<dyn Any + Send>> {
    let f = |&i: &usize| {
        spin(Duration::from_micros(1));
        if bad(i) {
            boom(i);
        }
        i
    };
    let calls: [&dyn Fn(); 4] = [
        &|| drop(pool.map(input, f)),
        &|| drop(pool.options().chunk_size(3).map(input, f)),
        &|| drop(pool.try_map(input, |i| Ok::<usize, ()>(f(i)))),
        &|| {
            pool.for_each(input, |i| {
                let _ = f(i);
            })
        },
    ];
    calls
        .iter()
        .map(|call| catch_unwind(AssertUnwindSafe(call)).expect_err("the panic was lost"))
        .collect()
}

#[test]
fn str_payload_is_preserved() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let input: Vec<usize> = (0..2000).collect();
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            for bad in [0, 1000, 1999] {
                let payloads = each_entry_point(
                    &pool,
                    &input,
                    |i| i == bad,
                    |_| panic!("expected test panic: a static str"),
                );
                for payload in payloads {
                    assert_eq!(
                        payload.downcast_ref::<&str>(),
                        Some(&"expected test panic: a static str"),
                        "{threads} threads, bad {bad}"
                    );
                }
            }
        }
    });
}

#[test]
fn string_payload_is_preserved() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let input: Vec<usize> = (0..2000).collect();
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            for bad in [0, 1000, 1999] {
                let payloads = each_entry_point(
                    &pool,
                    &input,
                    |i| i == bad,
                    |i| panic!("{EXPECTED}: formatted {i}"),
                );
                for payload in payloads {
                    assert_eq!(
                        payload.downcast_ref::<String>(),
                        Some(&format!("{EXPECTED}: formatted {bad}")),
                        "{threads} threads, bad {bad}"
                    );
                }
            }
        }
    });
}

#[test]
fn custom_payload_is_preserved() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let input: Vec<usize> = (0..2000).collect();
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            for bad in [0, 1000, 1999] {
                let payloads = each_entry_point(
                    &pool,
                    &input,
                    |i| i == bad,
                    |i| {
                        panic_any(CustomPayload {
                            code: i as u32,
                            text: format!("custom {i}"),
                        })
                    },
                );
                for payload in payloads {
                    let custom = payload
                        .downcast::<CustomPayload>()
                        .expect("the payload is no longer a CustomPayload");
                    assert_eq!(
                        *custom,
                        CustomPayload {
                            code: bad as u32,
                            text: format!("custom {bad}"),
                        }
                    );
                }
            }
        }
    });
}

/// When the panic reaches the caller, no call of the closure is still
/// running anywhere; and the chunks not started were skipped.
#[test]
fn panic_is_raised_after_every_chunk_stopped() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        /// Counts the closure calls in progress, unwinding included.
        struct InFlight<'a>(&'a AtomicUsize);
        impl Drop for InFlight<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }

        let len = 4000;
        let input: Vec<usize> = (0..len).collect();
        for threads in THREADS {
            let pool = Pool::new(threads).unwrap();
            for bad in [10, 1000] {
                // Chunks of 4, so once the panic stops the claims, at most a
                // chunk per thread runs on. A thread preempted right before its
                // panic lets the others go on meanwhile, so the early stop is
                // asserted for the best of a few runs.
                let mut counts = Vec::new();
                while counts.len() < 5 && counts.iter().all(|&calls| calls >= len / 2) {
                    let in_flight = AtomicUsize::new(0);
                    let calls = AtomicUsize::new(0);
                    let caught = catch_unwind(AssertUnwindSafe(|| {
                        pool.options().chunk_size(4).map(&input, |&i| {
                            in_flight.fetch_add(1, Ordering::SeqCst);
                            let _guard = InFlight(&in_flight);
                            calls.fetch_add(1, Ordering::SeqCst);
                            // Items after the panicking one are slow, so that
                            // other threads are still in a chunk when it comes.
                            spin(Duration::from_micros(if i > bad { 20 } else { 1 }));
                            if i == bad {
                                panic!("{EXPECTED}: stop");
                            }
                            i
                        })
                    }));
                    assert!(caught.is_err());
                    assert_eq!(
                        in_flight.load(Ordering::SeqCst),
                        0,
                        "{threads} threads: the panic reached the caller \
                         while the closure still ran"
                    );
                    counts.push(calls.into_inner());
                }
                assert!(
                    counts.iter().any(|&calls| calls < len / 2),
                    "{threads} threads, panic at {bad}: items run of {len}: {counts:?}"
                );
            }
        }
    });
}

/// The same pool, after a thousand calls alternating panicking ones and
/// correct ones, still computes right results.
#[test]
fn pool_is_reused_1000_times_after_panics() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let input: Vec<u64> = (0..96).collect();
        for round in 0..1000u64 {
            if round % 2 == 0 {
                let bad = round % 96;
                let caught = catch_unwind(AssertUnwindSafe(|| {
                    let f = |&x: &u64| {
                        if x == bad {
                            panic!("{EXPECTED}: round {round}");
                        }
                        x + 1
                    };
                    if round % 4 == 0 {
                        pool.map(&input, f)
                    } else {
                        pool.options().chunk_size(8).map(&input, f)
                    }
                }));
                let payload = caught.expect_err("the panic was lost");
                assert_eq!(
                    panic_message(&*payload),
                    Some(format!("{EXPECTED}: round {round}").as_str())
                );
            } else {
                let out = if round % 4 == 1 {
                    pool.map(&input, |&x| x * round)
                } else {
                    pool.options().chunk_size(8).map(&input, |&x| x * round)
                };
                assert!(
                    out.iter().enumerate().all(|(i, &y)| y == i as u64 * round),
                    "round {round}: wrong results after panics"
                );
            }
        }
        // A big call that uses the workers still works.
        let big: Vec<u64> = (0..20_000).collect();
        let out = pool.map(&big, |&x| {
            spin(Duration::from_nanos(500));
            x ^ 0x55
        });
        assert!(out.iter().enumerate().all(|(i, &y)| y == i as u64 ^ 0x55));
    });
}

/// A panic in a nested call, raised on a worker, reaches the outer caller.
#[test]
fn nested_panic_reaches_the_outer_caller() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let outer: Vec<usize> = (0..8).collect();
        let inner: Vec<usize> = (0..100).collect();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            pool.options().chunk_size(1).map(&outer, |&o| {
                pool.map(&inner, |&i| {
                    spin(Duration::from_micros(1));
                    if o == 5 && i == 50 {
                        panic_any(CustomPayload {
                            code: 55,
                            text: "nested".to_owned(),
                        });
                    }
                    o * i
                })
            })
        }));
        let payload = caught.expect_err("the nested panic was lost");
        assert_eq!(
            payload.downcast_ref::<CustomPayload>(),
            Some(&CustomPayload {
                code: 55,
                text: "nested".to_owned()
            })
        );
        let out = pool.map(&outer, |&o| o + 1);
        assert_eq!(out, (1..9).collect::<Vec<_>>());
    });
}
