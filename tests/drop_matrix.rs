//! Values whose `Drop` panics, through every entry point: a `map_init`
//! state, a map's results, a panic payload, a closure's captures, a task's
//! result, an `imap`'s results and inputs; each on pools of 1, 2 and 4
//! threads, called from outside the pool and from one of its workers, alone
//! and together with a panic of `f`.
//!
//! For every case: the process does not abort, the panic that reaches the
//! caller is the one the rules name (the call's first panic, else the panic
//! of a drop), every value made is dropped exactly once (the values own heap
//! memory, so a double drop is also a double free that memcheck and ASan
//! report), and the pool still works afterwards.
//!
//! The first tests are the regressions of the issue that started this file:
//! a `map_init` state whose drop panics, together with a panic of `f`, made
//! the map drop a prefix of its results twice (a double free); a detached
//! task, or an in-order `Imap` dropped while its batches ran, whose results
//! panicked in `Drop` aborted the process on the worker.

mod common;

use common::{custom, panic_message, payload_code, quiet_expected_panics, watchdog};
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stealpool::Pool;

const WATCHDOG_SECS: u64 = 120;

/// The panic codes: which value's drop (or `f` itself) panicked. `NONE` in
/// a list of expected codes: no panic at all is right too.
const NONE: u32 = 0;
const F: u32 = 1;
const STATE: u32 = 2;
const RESULT: u32 = 3;
const CAPTURE: u32 = 5;
const INPUT: u32 = 6;
const ERROR: u32 = 7;

/// Counts the bombs made and dropped.
#[derive(Debug, Default)]
struct Ledger {
    made: AtomicUsize,
    dropped: AtomicUsize,
}

impl Ledger {
    fn bomb(self: &Arc<Self>, code: Option<u32>) -> Bomb {
        self.made.fetch_add(1, Ordering::SeqCst);
        Bomb {
            ledger: Arc::clone(self),
            code,
            heap: Box::new(u64::from(code.unwrap_or(0))),
        }
    }

    fn balanced(&self, case: &str) {
        let made = self.made.load(Ordering::SeqCst);
        let dropped = self.dropped.load(Ordering::SeqCst);
        assert_eq!(made, dropped, "{case}: {made} values made, {dropped} drops");
    }
}

/// A value that owns heap memory, counts its drop and, if armed with a
/// code, panics in `Drop` with that code.
#[derive(Debug)]
struct Bomb {
    ledger: Arc<Ledger>,
    code: Option<u32>,
    heap: Box<u64>,
}

impl Drop for Bomb {
    fn drop(&mut self) {
        self.ledger.dropped.fetch_add(1, Ordering::SeqCst);
        assert_eq!(*self.heap, u64::from(self.code.unwrap_or(0)));
        if let Some(code) = self.code {
            panic_any(custom(code));
        }
    }
}

/// Drops `value`, returning the code of its drop's panic (if any).
fn drop_code<T>(value: T) -> Option<u32> {
    catch_unwind(AssertUnwindSafe(move || drop(value)))
        .err()
        .map(|payload| payload_code(&*payload))
}

/// Runs `case` on a fresh pool of each size, from outside and from a worker,
/// and checks the panic code it raised (one of `codes`; none if `codes` is
/// empty or holds `NONE`),
/// the ledger, and that the pool still works.
fn matrix(name: &str, codes: &[u32], case: impl Fn(&Pool, &Arc<Ledger>) + Send + Sync + 'static) {
    quiet_expected_panics();
    let name = name.to_owned();
    let codes = codes.to_vec();
    watchdog(WATCHDOG_SECS, move || {
        for threads in [1, 2, 4] {
            for from_worker in [false, true] {
                let label = format!("{name}, {threads} thread(s), from a worker: {from_worker}");
                let pool = Pool::new(threads).unwrap();
                let ledger = Arc::new(Ledger::default());
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    if from_worker {
                        pool.apply(|| case(&pool, &ledger));
                    } else {
                        case(&pool, &ledger);
                    }
                }));
                match outcome {
                    Ok(()) => assert!(
                        codes.is_empty() || codes.contains(&NONE),
                        "{label}: no panic, expected {codes:?}"
                    ),
                    Err(payload) => {
                        let code = payload_code(&*payload);
                        assert!(
                            codes.contains(&code),
                            "{label}: panic {code}, expected {codes:?}"
                        );
                    }
                }
                assert_eq!(pool.map(&[1, 2, 3], |x| x * 2), [2, 4, 6], "{label}");
                drop(pool);
                ledger.balanced(&label);
            }
        }
    });
}

/// Busy-waits a little: items worth recruiting helpers for.
fn spin_us(micros: u64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_micros(micros) {
        std::hint::spin_loop();
    }
}

/// Spawns 8 tasks running `make` and drops their handles before any of them
/// runs `make`, so that the workers, not this thread, drop what the tasks
/// leave (a handle dropped after its task finished drops the result itself,
/// on the dropping thread, as dropping any value would).
fn spawn_detached<R: Send + 'static>(
    pool: &Pool,
    ledger: &Arc<Ledger>,
    make: fn(&Arc<Ledger>) -> R,
) {
    let detached = Arc::new(AtomicBool::new(false));
    for _ in 0..8 {
        let (ledger, detached) = (Arc::clone(ledger), Arc::clone(&detached));
        drop(pool.spawn(move || {
            while !detached.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            make(&ledger)
        }));
    }
    detached.store(true, Ordering::Release);
}

const N: u32 = 64;

fn input() -> Vec<u32> {
    (0..N).collect()
}

/// Drops every result of a successful call, one at a time; returns the
/// codes of the drops that panicked.
fn drop_all<T>(results: Vec<T>) -> Vec<u32> {
    results.into_iter().filter_map(drop_code).collect()
}

// ---- the regressions ----

/// The reproduction from the issue: a state whose drop panics, a panic of
/// `f` at index 2, boxed results. Before the fix: a double free.
#[test]
fn state_drop_panic_with_f_panic_frees_each_result_once() {
    for at in [0, 2, 7] {
        matrix("state drop + f panic", &[F, STATE], move |pool, ledger| {
            let input = input();
            let out = pool.map_init(
                &input,
                || ledger.bomb(Some(STATE)),
                |_, &x| {
                    spin_us(5);
                    if x == at {
                        panic_any(custom(F));
                    }
                    ledger.bomb(None)
                },
            );
            drop(out);
        });
    }
}

/// On one thread the order of the two panics is fixed: `f`'s comes first
/// and is the one re-raised.
#[test]
fn state_drop_panic_after_f_panic_reraises_f_on_one_thread() {
    quiet_expected_panics();
    let pool = Pool::new(1).unwrap();
    let ledger = Arc::new(Ledger::default());
    let input = input();
    let payload = catch_unwind(AssertUnwindSafe(|| {
        pool.map_init(
            &input,
            || ledger.bomb(Some(STATE)),
            |_, &x| {
                if x == 2 {
                    panic_any(custom(F));
                }
                ledger.bomb(None)
            },
        )
    }))
    .expect_err("the map must panic");
    assert_eq!(payload_code(&*payload), F);
    drop(pool);
    ledger.balanced("one thread");
}

/// A detached task whose result panics in `Drop`: the worker reports it and
/// carries on. Before the fix: the process aborted.
#[test]
fn detached_task_result_drop_panic_is_contained() {
    matrix("detached task result", &[], |pool, ledger| {
        spawn_detached(pool, ledger, |ledger| ledger.bomb(Some(RESULT)));
    });
}

/// An in-order `Imap` dropped while its batches run, whose results panic in
/// `Drop`. Before the fix: the process aborted.
#[test]
fn imap_dropped_while_batches_run_contains_result_drop_panics() {
    matrix("imap dropped early", &[RESULT, NONE], |pool, ledger| {
        let ledger = Arc::clone(ledger);
        let mut iter = pool.imap(0..N, move |_| {
            spin_us(200);
            ledger.bomb(Some(RESULT))
        });
        let first = iter.next().expect("a first result");
        assert_eq!(drop_code(first), Some(RESULT));
        // Dropping the iterator may drop finished results here, on the
        // caller (the first drop's panic is raised, after all are dropped).
        drop(iter);
    });
}

// ---- the map family ----

#[test]
fn map_state_drop_panic_alone() {
    matrix("state drop", &[STATE], |pool, ledger| {
        let input = input();
        let out = pool.map_init(
            &input,
            || ledger.bomb(Some(STATE)),
            |_, &x| {
                spin_us(5);
                ledger.bomb(None).heap.as_ref() + u64::from(x)
            },
        );
        drop(out);
    });
}

/// Results that panic in `Drop`, with `f` panicking at several places: the
/// finished results and the prefix of a failing chunk are dropped by the
/// caller, one at a time, and `f`'s payload is the one raised.
#[test]
fn map_result_drop_panics_with_f_panic() {
    for chunk in [None, Some(1), Some(5)] {
        matrix("results drop + f panic", &[F], move |pool, ledger| {
            let input = input();
            let f = |&x: &u32| {
                spin_us(5);
                if x == 13 || x == 40 {
                    panic_any(custom(F));
                }
                ledger.bomb(Some(RESULT))
            };
            let out = match chunk {
                None => pool.map(&input, f),
                Some(n) => pool.options().chunk_size(n).map(&input, f),
            };
            drop_all(out);
        });
    }
}

/// A successful map of results that panic in `Drop`: the caller gets them
/// all, and dropping them is the caller's business.
#[test]
fn map_result_drop_panics_after_success() {
    matrix("results returned", &[], |pool, ledger| {
        let input = input();
        let out = pool.map(&input, |_| ledger.bomb(Some(RESULT)));
        assert_eq!(drop_all(out), vec![RESULT; N as usize]);
    });
}

/// `try_map` with an error and results that panic in `Drop`: no `f` panic,
/// so the first drop's panic is raised (as dropping a `Vec` of them would).
/// With an `f` panic as well, `f`'s wins.
#[test]
fn try_map_result_drop_panics_with_error() {
    matrix("try_map error + results drop", &[RESULT], |pool, ledger| {
        let input = input();
        let out = pool.try_map(&input, |&x| {
            spin_us(5);
            if x == 30 {
                return Err(custom(ERROR));
            }
            Ok(ledger.bomb(Some(RESULT)))
        });
        if let Ok(out) = out {
            drop_all(out);
        }
    });
    // The panic at 31 runs only if another thread claimed it before the
    // error at 30 stopped the call; if it ran, it wins.
    matrix(
        "try_map error + f panic + results drop",
        &[F, RESULT],
        |pool, ledger| {
            let input = input();
            let out = pool.try_map(&input, |&x| {
                spin_us(5);
                match x {
                    30 => Err(custom(ERROR)),
                    31 => panic_any(custom(F)),
                    _ => Ok(ledger.bomb(Some(RESULT))),
                }
            });
            if let Ok(out) = out {
                drop_all(out);
            }
        },
    );
}

/// `f` panics with payloads that panic in `Drop`: one payload reaches the
/// caller; the others are dropped by the engine, which contains their
/// panics.
#[test]
fn map_panic_payloads_that_panic_in_drop() {
    matrix("payload drop", &[F], |pool, ledger| {
        let input = input();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            pool.for_each(&input, |&x| {
                spin_us(5);
                if x % 8 == 3 {
                    panic_any(ledger.bomb(Some(F)));
                }
            })
        }));
        let payload = caught.expect_err("for_each must panic");
        let bomb = payload.downcast::<Bomb>().expect("a Bomb payload");
        // Re-raise the payload's drop panic (code F) to the matrix.
        drop(bomb);
    });
}

/// A state, results, and `f` all panicking: every value dropped once.
#[test]
fn map_state_results_and_f_together() {
    matrix("state + results + f", &[F, STATE], |pool, ledger| {
        let input = input();
        let out = pool.map_init(
            &input,
            || ledger.bomb(Some(STATE)),
            |_, &x| {
                spin_us(5);
                if x == 50 {
                    panic_any(custom(F));
                }
                ledger.bomb(Some(RESULT))
            },
        );
        drop_all(out);
    });
}

// ---- closures, tasks, scopes, joins ----

/// A captured value that panics when the closure is dropped after running:
/// the closure's panic, raised by `apply`, `Task::join` and `scope`.
#[test]
fn captures_that_panic_in_drop() {
    matrix("apply capture", &[CAPTURE], |pool, ledger| {
        let bomb = ledger.bomb(Some(CAPTURE));
        let value = pool.apply(move || *bomb.heap);
        assert_eq!(value, u64::from(CAPTURE));
    });
    matrix("spawn capture, joined", &[CAPTURE], |pool, ledger| {
        let bomb = ledger.bomb(Some(CAPTURE));
        pool.spawn(move || *bomb.heap).join();
    });
    matrix("spawn capture, detached", &[], |pool, ledger| {
        for _ in 0..8 {
            let bomb = ledger.bomb(Some(CAPTURE));
            drop(pool.spawn(move || *bomb.heap));
        }
    });
    matrix("scope capture", &[CAPTURE], |pool, ledger| {
        pool.scope(|s| {
            for _ in 0..4 {
                let bomb = ledger.bomb(Some(CAPTURE));
                s.spawn(move || spin_us(*bomb.heap * 10));
            }
        });
    });
    matrix("join capture in b", &[CAPTURE], |pool, ledger| {
        let bomb = ledger.bomb(Some(CAPTURE));
        pool.join(|| spin_us(100), move || *bomb.heap);
    });
}

/// `a` panics while `b`, not run, holds a value that panics in `Drop`: `b`
/// is dropped unrun, its panic contained, and `a`'s payload raised.
#[test]
fn join_a_panics_and_b_capture_panics_in_drop() {
    matrix("join a panic + b capture", &[F], |pool, ledger| {
        let bomb = ledger.bomb(Some(CAPTURE));
        pool.join(|| panic_any(custom(F)), move || *bomb.heap);
    });
    matrix(
        "nested joins, a panics + b captures",
        &[F],
        |pool, ledger| {
            // The leftmost leaf panics; every `b` one level above the leaves
            // holds a bomb, dropped unrun (its `a` panicked) or when it has run
            // (then its drop's panic is `b`'s, and loses to `a`'s above it).
            fn tree(pool: &Pool, ledger: &Arc<Ledger>, depth: u32, spine: bool) {
                if depth == 0 {
                    spin_us(20);
                    if spine {
                        panic_any(custom(F));
                    }
                    return;
                }
                let bomb = (depth == 1).then(|| ledger.bomb(Some(CAPTURE)));
                pool.join(
                    || tree(pool, ledger, depth - 1, spine),
                    move || {
                        let _keep = &bomb;
                        tree(pool, ledger, depth - 1, false)
                    },
                );
            }
            tree(pool, ledger, 6, true);
        },
    );
}

/// Task results and payloads that panic in `Drop`: joined, the result is
/// returned (dropping it is the caller's business); detached, the worker
/// drops the payload and contains its panic.
#[test]
fn task_results_and_payloads() {
    matrix("task result joined", &[RESULT], |pool, ledger| {
        let ledger = Arc::clone(ledger);
        let bomb = pool.spawn(move || ledger.bomb(Some(RESULT))).join();
        drop(bomb);
    });
    matrix("task payload detached", &[], |pool, ledger| {
        spawn_detached(pool, ledger, |ledger| -> () {
            panic_any(ledger.bomb(Some(F)))
        });
    });
}

/// `a` returns a value that panics in `Drop` and `b` panics: `a`'s result
/// is dropped while `b`'s panic unwinds, with its panic contained, on every
/// path of the join (`b` run inline, taken back after a promotion, stolen).
/// The same for a scope whose body returns such a value while a task
/// panics. Before the fix: "panic in a destructor during cleanup", an abort.
#[test]
fn a_result_dropped_while_b_panics() {
    matrix("join: a's result + b panic", &[F], |pool, ledger| {
        for _ in 0..16 {
            let (_a, _b): (Bomb, ()) = pool.join(
                || ledger.bomb(Some(RESULT)),
                || {
                    spin_us(30);
                    panic_any(custom(F))
                },
            );
        }
    });
    matrix(
        "in_worker join: a's result + b panic",
        &[F],
        |pool, ledger| {
            pool.in_worker(|w| {
                for _ in 0..16 {
                    let (_a, _b): (Bomb, ()) = w.join(
                        |_| {
                            spin_us(200);
                            ledger.bomb(Some(RESULT))
                        },
                        |_| panic_any(custom(F)),
                    );
                }
            });
        },
    );
    matrix("scope: body's value + task panic", &[F], |pool, ledger| {
        let _value: Bomb = pool.scope(|s| {
            s.spawn(|| panic_any(custom(F)));
            ledger.bomb(Some(RESULT))
        });
    });
}

// ---- imap ----

/// Inputs that panic in `Drop` (moved into `f` and dropped there, or
/// dropped unmapped when the iterator is dropped) and results that do too.
#[test]
fn imap_inputs_and_results_that_panic_in_drop() {
    for unordered in [false, true] {
        matrix("imap inputs consumed", &[INPUT], move |pool, ledger| {
            let inputs: Vec<Bomb> = (0..16).map(|_| ledger.bomb(Some(INPUT))).collect();
            let f = |bomb: Bomb| *bomb.heap;
            // Each item's drop panics inside `f`'s turn: the first `next()`
            // raises it.
            if unordered {
                pool.imap_unordered(inputs, f).for_each(drop);
            } else {
                pool.imap(inputs, f).for_each(drop);
            }
        });
        matrix("imap inputs skipped", &[], move |pool, ledger| {
            // Only the first window's items (those pulled by the first
            // `next()`) can panic; the rest stay in the input iterator, whose
            // drop (the user's `vec::IntoIter`) is plain.
            let inputs: Vec<Bomb> = (0..256)
                .map(|i| ledger.bomb((i < 32).then_some(INPUT)))
                .collect();
            let f = |bomb: Bomb| {
                spin_us(100);
                *bomb.heap
            };
            // The first item's drop panics in `f`: the first `next()`
            // raises it (in input order; unordered, whichever item finished
            // first). The items pulled after it are dropped unmapped when
            // the iterator is dropped.
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                if unordered {
                    let mut iter = pool.imap_unordered(inputs, f).window(32);
                    let _ = iter.next();
                } else {
                    let mut iter = pool.imap(inputs, f).window(32);
                    let _ = iter.next();
                }
            }));
            let payload = outcome.expect_err("the first item panics");
            assert_eq!(
                payload_code(&*payload),
                INPUT,
                "{:?}",
                panic_message(&*payload)
            );
        });
        matrix("imap results + f panic", &[], move |pool, ledger| {
            let ledger = Arc::clone(ledger);
            let f = move |x: u32| {
                spin_us(20);
                if x == 5 {
                    panic_any(custom(F));
                }
                ledger.bomb(Some(RESULT))
            };
            let mut codes = Vec::new();
            let drain = |next: &mut dyn FnMut() -> Option<Bomb>, codes: &mut Vec<u32>| loop {
                match catch_unwind(AssertUnwindSafe(&mut *next)) {
                    Ok(Some(bomb)) => codes.extend(drop_code(bomb)),
                    Ok(None) => break,
                    Err(payload) => codes.push(payload_code(&*payload)),
                }
            };
            if unordered {
                let mut iter = pool.imap_unordered(0..32, f);
                drain(&mut || iter.next(), &mut codes);
            } else {
                let mut iter = pool.imap(0..32, f);
                drain(&mut || iter.next(), &mut codes);
            }
            codes.sort_unstable();
            let mut expected = vec![F];
            expected.extend([RESULT; 31]);
            assert_eq!(codes, expected);
        });
    }
}
