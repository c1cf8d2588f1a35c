//! Calls that could deadlock, each under a watchdog: maps nested two and
//! three deep on 1- and 2-thread pools (also from `for_each`), eight plain
//! threads calling one pool at once, and two pools calling into each other
//! (from their workers where the pools have 2 threads), in one direction and
//! in both at once.

mod common;

use common::{current_thread_named, spin, unique_prefix, wait_for, watchdog};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use stealpool::Pool;

const WATCHDOG_SECS: u64 = 60;

fn named_pool(threads: usize, prefix: &str) -> Pool {
    let prefix = prefix.to_owned();
    Pool::builder()
        .threads(threads)
        .thread_name(move |i| format!("{prefix}{i}"))
        .build()
        .unwrap()
}

fn sum_below(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// `map` inside `map`, with the outer items offered to the workers at once
/// (a fixed-chunk `map`) and adaptively (`map`).
///
/// On a pool of 2 or more threads, the caller waits in its first outer item
/// until a worker has started one, so that an inner map really is called
/// from a worker of the same pool. A 1-thread pool runs an outside call on
/// the caller alone (as `Pool::map` documents: at most `threads()` threads
/// per call, the caller included), so there every item, outer and inner,
/// must run on the calling thread.
fn nested_two_deep(threads: usize) {
    let prefix = unique_prefix("n2");
    let pool = named_pool(threads, &prefix);
    let caller = thread::current().id();
    let off_caller = AtomicBool::new(false);
    let note_thread = || {
        if thread::current().id() != caller {
            off_caller.store(true, Ordering::Relaxed);
        }
    };
    let outer: Vec<u64> = (0..16).collect();
    let inner: Vec<u64> = (0..300).collect();
    let worker_started = AtomicBool::new(false);
    let inner_on_worker = AtomicBool::new(false);
    let out = pool.options().chunk_size(1).map(&outer, |&o| {
        note_thread();
        if current_thread_named(&prefix) {
            worker_started.store(true, Ordering::Release);
            inner_on_worker.store(true, Ordering::Relaxed);
        } else if threads > 1 {
            // Bounded: the assertion below reports a worker that never came.
            wait_for(&worker_started, Duration::from_secs(10));
        }
        let v = pool.map(&inner, |&i| {
            note_thread();
            spin(Duration::from_micros(1));
            o * 1000 + i
        });
        assert_eq!(v.len(), inner.len());
        assert!(v.iter().enumerate().all(|(i, &x)| x == o * 1000 + i as u64));
        v.iter().sum::<u64>()
    });
    for (o, &s) in out.iter().enumerate() {
        assert_eq!(s, o as u64 * 1000 * 300 + sum_below(300));
    }
    if threads > 1 {
        assert!(
            inner_on_worker.load(Ordering::Relaxed),
            "no nested map was called from a worker of the pool"
        );
    }

    // Adaptive outer map, expensive enough to be promoted.
    let outer: Vec<u64> = (0..200).collect();
    let out = pool.map(&outer, |&o| {
        note_thread();
        pool.map(&inner[..50], |&i| {
            note_thread();
            spin(Duration::from_micros(1));
            o + i
        })
        .iter()
        .sum::<u64>()
    });
    for (o, &s) in out.iter().enumerate() {
        assert_eq!(s, o as u64 * 50 + sum_below(50));
    }
    if threads == 1 {
        assert!(
            !off_caller.load(Ordering::Relaxed),
            "a 1-thread pool ran an item of an outside call off the caller"
        );
    }
}

#[test]
fn nested_map_on_1_thread_pool() {
    watchdog(WATCHDOG_SECS, || nested_two_deep(1));
}

#[test]
fn nested_map_on_2_thread_pool() {
    watchdog(WATCHDOG_SECS, || nested_two_deep(2));
}

fn nested_three_deep(threads: usize) {
    let pool = Pool::new(threads).unwrap();
    let a: Vec<u64> = (0..6).collect();
    let b: Vec<u64> = (0..10).collect();
    let c: Vec<u64> = (0..50).collect();
    for round in 0..3 {
        let out = pool.options().chunk_size(1).map(&a, |&x| {
            pool.map(&b, |&y| {
                let inner = if round % 2 == 0 {
                    pool.map(&c, |&z| {
                        spin(Duration::from_micros(2));
                        x * 10_000 + y * 100 + z
                    })
                } else {
                    pool.options().chunk_size(5).map(&c, |&z| {
                        spin(Duration::from_micros(2));
                        x * 10_000 + y * 100 + z
                    })
                };
                inner.iter().sum::<u64>()
            })
        });
        assert_eq!(out.len(), a.len());
        for (x, row) in out.iter().enumerate() {
            assert_eq!(row.len(), b.len());
            for (y, &s) in row.iter().enumerate() {
                let expected = 50 * (x as u64 * 10_000 + y as u64 * 100) + sum_below(50);
                assert_eq!(s, expected, "round {round}, x {x}, y {y}");
            }
        }
    }
}

#[test]
fn map_in_map_in_map_on_1_thread_pool() {
    watchdog(WATCHDOG_SECS, || nested_three_deep(1));
}

#[test]
fn map_in_map_in_map_on_2_thread_pool() {
    watchdog(WATCHDOG_SECS, || nested_three_deep(2));
}

#[test]
fn map_inside_for_each() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            let outer: Vec<usize> = (0..64).collect();
            let inner: Vec<usize> = (0..200).collect();
            let sums: Vec<AtomicUsize> = (0..64).map(|_| AtomicUsize::new(0)).collect();
            let visits: Vec<AtomicU32> = (0..64).map(|_| AtomicU32::new(0)).collect();
            pool.for_each(&outer, |&o| {
                visits[o].fetch_add(1, Ordering::Relaxed);
                let v = pool.map(&inner, |&i| {
                    spin(Duration::from_micros(1));
                    o + i
                });
                let mut nested_each = 0;
                let counted = AtomicUsize::new(0);
                pool.for_each(&v, |&x| {
                    counted.fetch_add(x, Ordering::Relaxed);
                });
                nested_each += counted.load(Ordering::Relaxed);
                sums[o].store(nested_each, Ordering::Relaxed);
            });
            for o in 0..64 {
                assert_eq!(visits[o].load(Ordering::Relaxed), 1);
                assert_eq!(
                    sums[o].load(Ordering::Relaxed),
                    o * 200 + 200 * 199 / 2,
                    "{threads} threads, outer item {o}"
                );
            }
        }
    });
}

/// Eight plain threads call one pool at once, each checking its own results.
#[test]
fn eight_threads_call_one_pool_at_once() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            thread::scope(|scope| {
                for t in 0..8u64 {
                    let pool = &pool;
                    scope.spawn(move || {
                        for round in 0..20u64 {
                            let len = 500 + (t * 131 + round * 17) % 1500;
                            let input: Vec<u64> = (0..len).collect();
                            let key = t * 1_000_000 + round;
                            let out = match round % 3 {
                                0 => pool.map(&input, |&x| {
                                    spin(Duration::from_nanos(300));
                                    x + key
                                }),
                                1 => pool.options().chunk_size(37).map(&input, |&x| x + key),
                                _ => pool.try_map(&input, |&x| Ok::<u64, ()>(x + key)).unwrap(),
                            };
                            assert_eq!(out.len() as u64, len);
                            for (i, &y) in out.iter().enumerate() {
                                assert_eq!(y, i as u64 + key, "thread {t}, round {round}");
                            }
                        }
                    });
                }
            });
            // The pool still works after the storm.
            let out = pool.map(&[1, 2, 3], |x| x * 2);
            assert_eq!(out, [2, 4, 6]);
        }
    });
}

/// What the cross-pool test saw happen.
#[derive(Default)]
struct Seen {
    /// A `b.map` was called from a worker of `a` and one of its items ran
    /// on a worker of `b`.
    b_from_a_worker: AtomicBool,
    /// An `a.map` was called from a worker of `b` and one of its items ran
    /// on a worker of `a`.
    a_from_b_worker: AtomicBool,
    /// Some item ran on a worker of either pool.
    on_a_worker: AtomicBool,
}

impl Seen {
    fn both_directions(&self) -> bool {
        self.b_from_a_worker.load(Ordering::Relaxed) && self.a_from_b_worker.load(Ordering::Relaxed)
    }
}

/// `a.map` whose closure calls `b.map` whose closure calls `a.map`, every
/// level with chunks of 1 offered to the workers at once. Checks every result.
///
/// With `force_outer`, the calling thread waits (a bounded time) in its
/// outer items until a worker of `a` has started one, and the outer items it
/// runs itself make no nested calls: so the cross calls come from workers,
/// and no two threads ever wait for each other.
fn cross_calls(a: &Pool, a_names: &str, b: &Pool, b_names: &str, force_outer: bool, seen: &Seen) {
    let items: Vec<u64> = (0..4).collect();
    let note = || {
        if current_thread_named(a_names) || current_thread_named(b_names) {
            seen.on_a_worker.store(true, Ordering::Relaxed);
        }
    };
    let outer_started = AtomicBool::new(false);
    let out = a.options().chunk_size(1).map(&items, |&x| {
        note();
        let caller_is_a_worker = current_thread_named(a_names);
        if caller_is_a_worker {
            outer_started.store(true, Ordering::Release);
        } else if force_outer {
            wait_for(&outer_started, Duration::from_secs(10));
            return 16 * x * 100 + 4 * 60 + 4 * 6;
        }
        let middle = b.options().chunk_size(1).map(&items, |&y| {
            note();
            if caller_is_a_worker && current_thread_named(b_names) {
                seen.b_from_a_worker.store(true, Ordering::Relaxed);
            }
            let caller_is_b_worker = current_thread_named(b_names);
            let inner = a.options().chunk_size(1).map(&items, |&z| {
                note();
                if caller_is_b_worker && current_thread_named(a_names) {
                    seen.a_from_b_worker.store(true, Ordering::Relaxed);
                }
                spin(Duration::from_micros(20));
                x * 100 + y * 10 + z
            });
            for (z, &v) in inner.iter().enumerate() {
                assert_eq!(v, x * 100 + y * 10 + z as u64);
            }
            inner.iter().sum::<u64>()
        });
        for (y, &v) in middle.iter().enumerate() {
            assert_eq!(v, 4 * (x * 100 + y as u64 * 10) + 6);
        }
        middle.iter().sum()
    });
    for (x, &v) in out.iter().enumerate() {
        assert_eq!(v, 16 * x as u64 * 100 + 4 * 60 + 4 * 6);
    }
}

/// Two 1-thread pools, each map calling into the other three deep. A
/// 1-thread pool runs an outside call on the caller alone (`Pool::map`
/// documents at most `threads()` threads per call, the caller included), so
/// no item may run on a worker here; calls from a worker of the other pool
/// need pools of 2 threads (next test).
#[test]
fn two_1_thread_pools_call_into_each_other() {
    watchdog(WATCHDOG_SECS, || {
        let a_names = unique_prefix("xa");
        let b_names = unique_prefix("xb");
        let a = named_pool(1, &a_names);
        let b = named_pool(1, &b_names);
        let seen = Seen::default();
        for _ in 0..5 {
            cross_calls(&a, &a_names, &b, &b_names, false, &seen);
        }
        assert!(
            !seen.on_a_worker.load(Ordering::Relaxed),
            "a 1-thread pool ran an item of an outside call on its worker"
        );
    });
}

/// Two 2-thread pools whose workers call into each other: `a`'s worker
/// calls `b.map`, whose item on `b`'s worker calls `a.map`, whose item runs
/// on a worker of `a`. Which thread takes which item is up to the
/// scheduler, so the calls are repeated (up to 20 s) until both directions
/// were seen.
#[test]
fn two_2_thread_pools_call_into_each_other_from_workers() {
    watchdog(WATCHDOG_SECS, || {
        let a_names = unique_prefix("wa");
        let b_names = unique_prefix("wb");
        let a = named_pool(2, &a_names);
        let b = named_pool(2, &b_names);
        let seen = Seen::default();
        let start = Instant::now();
        while !seen.both_directions() && start.elapsed() < Duration::from_secs(20) {
            cross_calls(&a, &a_names, &b, &b_names, true, &seen);
        }
        assert!(
            seen.b_from_a_worker.load(Ordering::Relaxed),
            "pool B never ran an item of a call made from pool A's worker"
        );
        assert!(
            seen.a_from_b_worker.load(Ordering::Relaxed),
            "pool A never ran an item of a call made from pool B's worker"
        );
    });
}

/// Both directions at once, from two plain threads: `a -> b -> a` and
/// `b -> a -> b`, on 1-thread pools and on 2-thread pools (where the workers
/// do call across).
#[test]
fn two_pools_call_into_each_other_both_ways_at_once() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let a_names = unique_prefix("ya");
            let b_names = unique_prefix("yb");
            let a = named_pool(threads, &a_names);
            let b = named_pool(threads, &b_names);
            let seen_ab = Seen::default();
            let seen_ba = Seen::default();
            thread::scope(|scope| {
                scope.spawn(|| {
                    for _ in 0..10 {
                        cross_calls(&a, &a_names, &b, &b_names, false, &seen_ab);
                    }
                });
                scope.spawn(|| {
                    for _ in 0..10 {
                        cross_calls(&b, &b_names, &a, &a_names, false, &seen_ba);
                    }
                });
            });
            // Both pools still work.
            assert_eq!(a.map(&[1, 2], |x| x + 1), [2, 3]);
            assert_eq!(b.map(&[1, 2], |x| x + 1), [2, 3]);
        }
    });
}
