//! Two pools calling into each other: a worker of pool A calls B's `map`,
//! `join`, `scope`, `apply`, `spawn(..).join()` and `imap`, whose closures
//! call back into A (1-thread pools, where A's only worker must keep running
//! A's jobs while it waits on B, and 2-thread pools); ping-pong several calls
//! deep; both directions at once from two plain threads; a panic crossing
//! both pools. Everything runs under a watchdog, so a deadlock fails.

mod common;

use common::{quiet_expected_panics, watchdog, CustomPayload, EXPECTED};
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use stealpool::{current_thread_index, Pool};

const WATCHDOG_SECS: u64 = 60;

fn pools(threads: usize) -> (Arc<Pool>, Arc<Pool>) {
    (
        Arc::new(Pool::new(threads).unwrap()),
        Arc::new(Pool::new(threads).unwrap()),
    )
}

/// `from` calls `to.map`, whose items call back into `from` with `apply`.
fn map_round_trip(from: &Pool, to: &Pool, n: u64) {
    let input: Vec<u64> = (0..n).collect();
    let out = from.apply(|| {
        to.map(&input, |&x| {
            let (doubled, index) = from.apply(|| (x * 2, current_thread_index()));
            assert!(index.is_some());
            doubled
        })
    });
    assert_eq!(out, input.iter().map(|x| x * 2).collect::<Vec<_>>());
}

/// `from` calls `to.join`, both halves of which call back into `from`.
fn join_round_trip(from: &Pool, to: &Pool) {
    let (a, b) = from.apply(|| {
        to.join(
            || from.apply(|| from.join(|| 1, || 2)),
            || from.map(&[3u32, 4], |x| x + 1),
        )
    });
    assert_eq!(a, (1, 2));
    assert_eq!(b, [4, 5]);
}

/// `from` opens a scope on `to` whose tasks call back into `from`.
fn scope_round_trip(from: &Pool, to: &Pool) {
    let mut out = vec![0u64; 32];
    from.apply(|| {
        to.scope(|s| {
            for (i, slot) in out.iter_mut().enumerate() {
                s.spawn(move || {
                    *slot = from.apply(|| i as u64 * 3);
                });
            }
        });
    });
    assert_eq!(out, (0..32u64).map(|i| i * 3).collect::<Vec<_>>());
}

/// apply ping-pong, `depth` calls deep, alternating pools.
fn apply_ping_pong(a: &Pool, b: &Pool, depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    a.apply(|| 1 + apply_ping_pong(b, a, depth - 1))
}

/// spawn on `to` from a task of `from`, whose task spawns back on `from`, all
/// joined inside the pools.
fn spawn_round_trip(from: &Arc<Pool>, to: &Arc<Pool>) {
    let (from2, to2) = (Arc::clone(from), Arc::clone(to));
    let value = from
        .spawn(move || {
            let back = Arc::clone(&from2);
            to2.spawn(move || back.spawn(|| 21).join() * 2).join()
        })
        .join();
    assert_eq!(value, 42);
}

/// An imap on `to` consumed on a worker of `from`, its items calling back
/// into `from`.
fn imap_round_trip(from: &Arc<Pool>, to: &Arc<Pool>) {
    let (back, to2) = (Arc::clone(from), Arc::clone(to));
    let out: Vec<u64> = from.apply(move || {
        to2.imap(0..200u64, move |x| back.apply(move || x + 1))
            .collect()
    });
    assert_eq!(out, (1..=200u64).collect::<Vec<_>>());
}

fn all_round_trips(threads: usize) {
    let (a, b) = pools(threads);
    for _ in 0..20 {
        map_round_trip(&a, &b, 500);
        map_round_trip(&b, &a, 500);
        join_round_trip(&a, &b);
        join_round_trip(&b, &a);
        scope_round_trip(&a, &b);
        scope_round_trip(&b, &a);
        assert_eq!(apply_ping_pong(&a, &b, 16), 16);
        spawn_round_trip(&a, &b);
        spawn_round_trip(&b, &a);
        imap_round_trip(&a, &b);
    }
}

#[test]
fn one_thread_pools_call_into_each_other() {
    watchdog(WATCHDOG_SECS, || all_round_trips(1));
}

#[test]
fn two_thread_pools_call_into_each_other() {
    watchdog(WATCHDOG_SECS, || all_round_trips(2));
}

#[test]
fn a_one_thread_pool_and_a_two_thread_pool() {
    watchdog(WATCHDOG_SECS, || {
        let a = Arc::new(Pool::new(1).unwrap());
        let b = Arc::new(Pool::new(2).unwrap());
        for _ in 0..5 {
            map_round_trip(&a, &b, 300);
            map_round_trip(&b, &a, 300);
            join_round_trip(&a, &b);
            scope_round_trip(&b, &a);
            assert_eq!(apply_ping_pong(&a, &b, 9), 9);
            spawn_round_trip(&b, &a);
        }
    });
}

/// Two plain threads, one entering A and calling B, the other entering B and
/// calling A, both at once, many times.
fn both_directions_at_once(threads: usize) {
    let (a, b) = pools(threads);
    let rounds = AtomicUsize::new(0);
    thread::scope(|s| {
        for (from, to) in [(&a, &b), (&b, &a)] {
            let rounds = &rounds;
            s.spawn(move || {
                for _ in 0..200 {
                    map_round_trip(from, to, 200);
                    join_round_trip(from, to);
                    scope_round_trip(from, to);
                    assert_eq!(apply_ping_pong(from, to, 6), 6);
                    spawn_round_trip(from, to);
                    rounds.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(rounds.into_inner(), 400);
}

#[test]
fn both_directions_at_once_on_one_thread_pools() {
    watchdog(WATCHDOG_SECS, || both_directions_at_once(1));
}

#[test]
fn both_directions_at_once_on_two_thread_pools() {
    watchdog(WATCHDOG_SECS, || both_directions_at_once(2));
}

#[test]
fn a_panic_crosses_both_pools_with_its_payload() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let (a, b) = pools(threads);
            let input: Vec<u32> = (0..100).collect();
            let err = catch_unwind(AssertUnwindSafe(|| {
                a.apply(|| {
                    b.map(&input, |&x| {
                        a.apply(|| {
                            if x == 42 {
                                panic_any(CustomPayload {
                                    code: 4242,
                                    text: EXPECTED.to_owned(),
                                });
                            }
                            x
                        })
                    })
                })
            }))
            .expect_err("the panic was lost between the pools");
            let payload = err
                .downcast_ref::<CustomPayload>()
                .expect("the payload changed type");
            assert_eq!(payload.code, 4242);
            // Both pools still work, in both directions.
            map_round_trip(&a, &b, 100);
            map_round_trip(&b, &a, 100);
        }
    });
}
