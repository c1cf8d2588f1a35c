//! `Pool::map_init`: results in input order; `init` called at most once per
//! participating thread (at most `threads()` states for a call from outside
//! or from a worker), and only on threads that get items; each state reused
//! for many items and dropped once, when the call ends; panics of `init` and
//! of `f` re-raised with their payloads, with every state still dropped.
//! Everything that could hang runs under a watchdog.

mod common;

use common::{payload_code, quiet_expected_panics, watchdog, CustomPayload, EXPECTED};
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};
use stealpool::Pool;

const WATCHDOG_SECS: u64 = 60;

/// Busy-waits for `micros` microseconds: items worth recruiting workers for.
fn spin_us(micros: u64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_micros(micros) {
        std::hint::spin_loop();
    }
}

/// A per-thread state that counts the items it served and reports, when
/// dropped, how many that was and on which thread it lived.
struct State<'a> {
    id: usize,
    thread: thread::ThreadId,
    items: usize,
    log: &'a Mutex<Vec<(usize, usize, bool)>>,
}

impl Drop for State<'_> {
    fn drop(&mut self) {
        let same_thread = thread::current().id() == self.thread;
        self.log
            .lock()
            .unwrap()
            .push((self.id, self.items, same_thread));
    }
}

/// Runs one `map_init` call over `n` items and checks every property.
fn check_call(pool: &Pool, n: usize, item_us: u64, label: &str) {
    let input: Vec<u64> = (0..n as u64).collect();
    let inits = AtomicUsize::new(0);
    let log = Mutex::new(Vec::new());
    let out = pool.map_init(
        &input,
        || State {
            id: inits.fetch_add(1, Ordering::SeqCst),
            thread: thread::current().id(),
            items: 0,
            log: &log,
        },
        |state, &x| {
            assert_eq!(
                state.thread,
                thread::current().id(),
                "a state was used on another thread than the one that made it"
            );
            state.items += 1;
            spin_us(item_us);
            x * 2 + 1
        },
    );
    let expected: Vec<u64> = input.iter().map(|x| x * 2 + 1).collect();
    assert_eq!(out, expected, "{label}: results out of order or wrong");
    let inits = inits.into_inner();
    let log = log.into_inner().unwrap();
    if n == 0 {
        assert_eq!(inits, 0, "{label}: init ran for an empty input");
    } else {
        assert!(inits >= 1, "{label}: no state was made");
    }
    assert!(
        inits <= pool.threads(),
        "{label}: {inits} states for a pool of {} threads",
        pool.threads()
    );
    // Every state made was dropped exactly once, on its own thread, and
    // served at least one item; together they served every item once.
    assert_eq!(log.len(), inits, "{label}: states made vs. dropped");
    let mut ids: Vec<usize> = log.iter().map(|e| e.0).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..inits).collect::<Vec<_>>(),
        "{label}: a state dropped twice"
    );
    assert!(
        log.iter().all(|e| e.2),
        "{label}: a state dropped on another thread"
    );
    assert!(
        log.iter().all(|e| e.1 >= 1),
        "{label}: a state served no item: {log:?}"
    );
    assert_eq!(
        log.iter().map(|e| e.1).sum::<usize>(),
        n,
        "{label}: items served"
    );
    if n >= 1000 {
        // Reuse: far fewer states than items.
        assert!(inits * 10 <= n, "{label}: {inits} states for {n} items");
    }
}

#[test]
fn map_init_from_outside_keeps_order_and_bounds_inits() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            for (n, item_us) in [(0, 0), (1, 0), (10, 0), (5000, 0), (20_000, 5)] {
                let label = format!("outside, {threads} threads, n = {n}");
                check_call(&pool, n, item_us, &label);
            }
        }
    });
}

#[test]
fn map_init_from_a_worker_bounds_inits() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            for (n, item_us) in [(10, 0), (20_000, 5)] {
                let label = format!("on a worker, {threads} threads, n = {n}");
                pool.apply(|| check_call(&pool, n, item_us, &label));
            }
        }
    });
}

#[test]
fn map_init_from_four_plain_threads_at_once() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        thread::scope(|s| {
            for t in 0..4 {
                let pool = &pool;
                s.spawn(move || {
                    for round in 0..5 {
                        check_call(pool, 4000, 1, &format!("thread {t}, round {round}"));
                    }
                });
            }
        });
    });
}

#[test]
fn map_init_state_is_reused_as_a_buffer() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        let lines: Vec<String> = (0..10_000).map(|i| format!("line {i}")).collect();
        let inits = AtomicUsize::new(0);
        let lengths = pool.map_init(
            &lines,
            || {
                inits.fetch_add(1, Ordering::SeqCst);
                String::with_capacity(64)
            },
            |buffer, line| {
                // A reused buffer still holds the previous item's text.
                buffer.clear();
                buffer.push_str(line);
                buffer.push('!');
                buffer.len()
            },
        );
        let expected: Vec<usize> = lines.iter().map(|l| l.len() + 1).collect();
        assert_eq!(lengths, expected);
        assert!(inits.into_inner() <= 2);
    });
}

#[test]
fn a_panicking_init_is_reraised() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            let input: Vec<u32> = (0..1000).collect();
            let calls = AtomicUsize::new(0);
            let err = catch_unwind(AssertUnwindSafe(|| {
                pool.map_init(
                    &input,
                    || -> u32 {
                        panic_any(CustomPayload {
                            code: 77,
                            text: EXPECTED.to_owned(),
                        })
                    },
                    |_, x| {
                        calls.fetch_add(1, Ordering::SeqCst);
                        *x
                    },
                )
            }))
            .expect_err("the panic of init was lost");
            assert_eq!(payload_code(&*err), 77);
            assert_eq!(calls.into_inner(), 0, "f ran without a state");
            // The pool is still usable.
            let out = pool.map_init(&input, || 1u32, |one, x| x + *one);
            assert_eq!(out, input.iter().map(|x| x + 1).collect::<Vec<_>>());
        }
    });
}

#[test]
fn a_panicking_f_is_reraised_and_the_states_are_dropped() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            let input: Vec<u64> = (0..20_000).collect();
            let inits = AtomicUsize::new(0);
            let log = Mutex::new(Vec::new());
            let err = catch_unwind(AssertUnwindSafe(|| {
                pool.map_init(
                    &input,
                    || State {
                        id: inits.fetch_add(1, Ordering::SeqCst),
                        thread: thread::current().id(),
                        items: 0,
                        log: &log,
                    },
                    |state, &x| {
                        state.items += 1;
                        spin_us(2);
                        if x == 12_345 {
                            panic_any(CustomPayload {
                                code: 12,
                                text: EXPECTED.to_owned(),
                            });
                        }
                        x
                    },
                )
            }))
            .expect_err("the panic of f was lost");
            assert_eq!(payload_code(&*err), 12);
            let inits = inits.into_inner();
            let log = log.into_inner().unwrap();
            assert!(
                inits >= 1 && inits <= threads,
                "{inits} states, {threads} threads"
            );
            assert_eq!(
                log.len(),
                inits,
                "states leaked or dropped twice after a panic"
            );
        }
    });
}
