//! `Pool::scope` and `Scope::spawn`: tasks that borrow and mutate the caller's
//! stack data, tasks that spawn tasks, 100 000-task chains and trees of spawns
//! on small stacks, panics (a task's does not cancel the others, the first
//! payload is re-raised once all have finished, a panic of the body waits for
//! the tasks), scopes nested inside workers and scopes from several plain
//! threads at once. Everything that could hang runs under a watchdog.

mod common;

use common::{custom, payload_code, quiet_expected_panics, watchdog};
use std::panic::{catch_unwind, panic_any, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use stealpool::{current_thread_index, Pool, Scope};

const WATCHDOG_SECS: u64 = 60;

/// The stack size used to show that long chains of spawns do not recurse.
const SMALL_STACK: usize = 256 * 1024;

/// Waits (sleeping briefly) until `flag` is set; `false` after `timeout`.
fn wait_flag(flag: &AtomicBool, timeout: Duration) -> bool {
    let start = Instant::now();
    while !flag.load(Ordering::SeqCst) {
        if start.elapsed() > timeout {
            return false;
        }
        thread::sleep(Duration::from_micros(200));
    }
    true
}

#[test]
fn tasks_borrow_stack_data_and_mutate_disjoint_parts() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            let factor = 3u64; // borrowed by every task
            let mut data: Vec<u64> = (0..10_000).collect();
            let mut tally = [0usize; 2];
            let caller = thread::current().id();
            let returned = pool.scope(|s| {
                // The body runs on the calling thread.
                assert_eq!(thread::current().id(), caller);
                assert_eq!(current_thread_index(), None);
                for chunk in data.chunks_mut(97) {
                    let factor = &factor;
                    s.spawn(move || chunk.iter_mut().for_each(|x| *x *= *factor));
                }
                let [evens, odds] = &mut tally;
                s.spawn(move || *evens = (0..100).filter(|x| x % 2 == 0).count());
                s.spawn(move || *odds = (0..100).filter(|x| x % 2 == 1).count());
                "body result"
            });
            assert_eq!(returned, "body result");
            let expected: Vec<u64> = (0..10_000).map(|x| x * 3).collect();
            assert_eq!(data, expected, "{threads} threads");
            assert_eq!(tally, [50, 50]);
        }
    });
}

#[test]
fn scope_tasks_run_on_workers_and_an_empty_scope_returns() {
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(2).unwrap();
        assert_eq!(pool.scope(|_| 7), 7);
        let off_pool = AtomicUsize::new(0);
        pool.scope(|s| {
            for _ in 0..200 {
                s.spawn(|| {
                    if !current_thread_index().is_some_and(|i| i < 2) {
                        off_pool.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(off_pool.into_inner(), 0, "scope tasks ran off the pool");
    });
}

#[test]
fn tasks_spawn_tasks_through_the_scope() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2, 4] {
            let pool = Pool::new(threads).unwrap();
            let leaves = AtomicUsize::new(0);
            let mut slots = vec![0u32; 10 * 10 * 10];
            pool.scope(|s| {
                let leaves = &leaves;
                for (a, outer) in slots.chunks_mut(100).enumerate() {
                    s.spawn(move || {
                        for (b, middle) in outer.chunks_mut(10).enumerate() {
                            s.spawn(move || {
                                for (c, slot) in middle.iter_mut().enumerate() {
                                    s.spawn(move || {
                                        *slot = (a * 100 + b * 10 + c) as u32;
                                        leaves.fetch_add(1, Ordering::Relaxed);
                                    });
                                }
                            });
                        }
                    });
                }
            });
            assert_eq!(leaves.into_inner(), 1000);
            let expected: Vec<u32> = (0..1000).collect();
            assert_eq!(slots, expected);
        }
    });
}

/// One link of a chain: counts itself and spawns the next link.
fn chain<'scope, 'env>(s: &'scope Scope<'scope, 'env>, count: &'env AtomicUsize, left: usize) {
    count.fetch_add(1, Ordering::Relaxed);
    if left > 0 {
        s.spawn(move || chain(s, count, left - 1));
    }
}

/// One node of a binary tree of spawns of the given depth.
fn tree<'scope, 'env>(s: &'scope Scope<'scope, 'env>, count: &'env AtomicUsize, depth: u32) {
    count.fetch_add(1, Ordering::Relaxed);
    if depth > 0 {
        s.spawn(move || tree(s, count, depth - 1));
        s.spawn(move || tree(s, count, depth - 1));
    }
}

/// Runs `f` on a plain thread with a small stack.
fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    thread::Builder::new()
        .name("small-stack".to_owned())
        .stack_size(SMALL_STACK)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
}

#[test]
fn a_chain_of_100_000_spawns_completes_on_small_stacks() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::builder()
                .threads(threads)
                .stack_size(SMALL_STACK)
                .build()
                .unwrap();
            let count = on_small_stack(move || {
                let count = AtomicUsize::new(0);
                pool.scope(|s| chain(s, &count, 100_000 - 1));
                // Also started from a task, on a worker.
                let again = AtomicUsize::new(0);
                pool.scope(|s| s.spawn(|| chain(s, &again, 100_000 - 1)));
                (count.into_inner(), again.into_inner())
            });
            assert_eq!(count, (100_000, 100_000), "{threads} threads");
        }
    });
}

#[test]
fn a_binary_tree_of_spawns_completes_on_small_stacks() {
    watchdog(WATCHDOG_SECS, || {
        const DEPTH: u32 = 16; // 2^17 - 1 = 131 071 tasks
        for threads in [1, 2] {
            let pool = Pool::builder()
                .threads(threads)
                .stack_size(SMALL_STACK)
                .build()
                .unwrap();
            let count = on_small_stack(move || {
                let count = AtomicUsize::new(0);
                pool.scope(|s| tree(s, &count, DEPTH));
                count.into_inner()
            });
            assert_eq!(count, (1 << (DEPTH + 1)) - 1, "{threads} threads");
        }
    });
}

#[test]
fn a_panicking_task_does_not_cancel_the_others_and_the_first_payload_wins() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        // At least two threads: the second panicker waits for the first.
        for threads in [2, 4] {
            let pool = Pool::new(threads).unwrap();
            let ran = AtomicUsize::new(0);
            let first_panicked = AtomicBool::new(false);
            let slow_done = AtomicBool::new(false);
            let err = catch_unwind(AssertUnwindSafe(|| {
                pool.scope(|s| {
                    s.spawn(|| {
                        thread::sleep(Duration::from_millis(200));
                        slow_done.store(true, Ordering::SeqCst);
                    });
                    for i in 0..200 {
                        let ran = &ran;
                        let first_panicked = &first_panicked;
                        s.spawn(move || match i {
                            50 => {
                                first_panicked.store(true, Ordering::SeqCst);
                                panic_any(custom(1));
                            }
                            51 => {
                                wait_flag(first_panicked, Duration::from_secs(20));
                                thread::sleep(Duration::from_millis(50));
                                panic_any(custom(2));
                            }
                            _ => {
                                thread::sleep(Duration::from_micros(500));
                                ran.fetch_add(1, Ordering::SeqCst);
                            }
                        });
                    }
                });
            }))
            .expect_err("the tasks' panics were lost");
            assert_eq!(payload_code(&*err), 1, "the first panic must be re-raised");
            assert_eq!(
                ran.load(Ordering::SeqCst),
                198,
                "a panic cancelled other tasks, or the scope returned before they ran"
            );
            assert!(
                slow_done.load(Ordering::SeqCst),
                "the scope re-raised before its slow task finished"
            );
            // The pool is still usable.
            let n = AtomicUsize::new(0);
            pool.scope(|s| {
                for _ in 0..10 {
                    s.spawn(|| {
                        n.fetch_add(1, Ordering::SeqCst);
                    });
                }
            });
            assert_eq!(n.into_inner(), 10);
        }
    });
}

#[test]
fn a_panicking_task_on_a_one_thread_pool() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        let pool = Pool::new(1).unwrap();
        let ran = AtomicUsize::new(0);
        let err = catch_unwind(AssertUnwindSafe(|| {
            pool.scope(|s| {
                for i in 0..100 {
                    let ran = &ran;
                    s.spawn(move || {
                        if i == 30 {
                            panic_any(custom(30));
                        }
                        ran.fetch_add(1, Ordering::SeqCst);
                    });
                }
            })
        }))
        .expect_err("the task's panic was lost");
        assert_eq!(payload_code(&*err), 30);
        assert_eq!(ran.into_inner(), 99);
    });
}

#[test]
fn a_panic_in_the_body_waits_for_the_tasks() {
    quiet_expected_panics();
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            let finished = AtomicUsize::new(0);
            let err = catch_unwind(AssertUnwindSafe(|| {
                pool.scope(|s| -> u32 {
                    for _ in 0..5 {
                        s.spawn(|| {
                            thread::sleep(Duration::from_millis(50));
                            finished.fetch_add(1, Ordering::SeqCst);
                        });
                    }
                    panic_any(custom(99))
                })
            }))
            .expect_err("the body's panic was lost");
            assert_eq!(payload_code(&*err), 99);
            assert_eq!(
                finished.load(Ordering::SeqCst),
                5,
                "the body's panic escaped before the tasks finished ({threads} threads)"
            );
        }
    });
}

#[test]
fn scope_nested_inside_a_worker() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            // A scope whose caller is the pool's (only) worker.
            let sum = pool.apply(|| {
                let data: Vec<u64> = (0..1000).collect();
                let total = AtomicUsize::new(0);
                pool.scope(|s| {
                    for chunk in data.chunks(10) {
                        let total = &total;
                        s.spawn(move || {
                            total.fetch_add(chunk.iter().sum::<u64>() as usize, Ordering::SeqCst);
                        });
                    }
                });
                total.into_inner()
            });
            assert_eq!(sum, 999 * 1000 / 2);

            // Scopes inside scope tasks, three deep.
            let count = AtomicUsize::new(0);
            pool.scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        pool.scope(|s2| {
                            for _ in 0..4 {
                                s2.spawn(|| {
                                    pool.scope(|s3| {
                                        for _ in 0..4 {
                                            s3.spawn(|| {
                                                count.fetch_add(1, Ordering::SeqCst);
                                            });
                                        }
                                    });
                                });
                            }
                        });
                    });
                }
            });
            assert_eq!(count.into_inner(), 64, "{threads} threads");

            // map and join inside scope tasks.
            let mut results = vec![Vec::new(); 8];
            pool.scope(|s| {
                for (i, out) in results.iter_mut().enumerate() {
                    let pool = &pool;
                    s.spawn(move || {
                        let (a, b) = pool.join(|| i * 2, || i * 3);
                        *out = pool.map(&[1usize, 2, 3], |x| x * (a + b));
                    });
                }
            });
            for (i, out) in results.iter().enumerate() {
                assert_eq!(out, &[5 * i, 10 * i, 15 * i]);
            }
        }
    });
}

#[test]
fn scope_from_four_plain_threads_at_once() {
    watchdog(WATCHDOG_SECS, || {
        for threads in [1, 2] {
            let pool = Pool::new(threads).unwrap();
            let barrier = std::sync::Barrier::new(4);
            thread::scope(|ts| {
                for t in 0..4usize {
                    let pool = &pool;
                    let barrier = &barrier;
                    ts.spawn(move || {
                        barrier.wait();
                        for round in 0..20usize {
                            let mut out = vec![0usize; 200];
                            pool.scope(|s| {
                                for (i, slot) in out.iter_mut().enumerate() {
                                    s.spawn(move || *slot = t * 1_000_000 + round * 1000 + i);
                                }
                            });
                            for (i, v) in out.iter().enumerate() {
                                assert_eq!(*v, t * 1_000_000 + round * 1000 + i);
                            }
                        }
                    });
                }
            });
        }
    });
}
